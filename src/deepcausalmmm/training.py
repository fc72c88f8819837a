"""Loss and training loop. The loop owns no model: ``train(net, batch, target, spec)``."""

from __future__ import annotations

import copy
import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from .config import MMMConfig

__all__ = ["Target", "LiftTerm", "RoiPriorTerm", "History", "data_loss", "total_loss", "train", "polish", "full_precision"]


@contextmanager
def full_precision() -> Iterator[None]:
    """Run CUDA matrix products and cuDNN recurrences in true float32 (no TF32).

    PyTorch lets cuDNN (the GRUs) use TF32, about three significant digits, by
    default, so GPU fits would differ from CPU fits by more than float32
    rounding. The models here are small, so full precision costs little (a
    190-region fit on an H200: 7.5 s, against 7.8 s with TF32 allowed). The
    previous settings are restored on exit; on the CPU this changes nothing.
    """
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


@dataclass(frozen=True)
class LiftTerm:
    """Lift tests as a loss term: the model's lift for each test against the measured one.

    All tests run in one counterfactual batch: for each test, its regions'
    inputs with the channel switched off in the test cells (and the activity
    it induced in other channels removed). ``rows`` are those rows' regions
    in the fitted batch, ``test`` the test each row belongs to, and ``cells``
    ``[rows,T']`` converts scaled KPI to KPI units inside the row's test
    window (0 outside it). The batch runs from the first week to the last
    window's end (``T'``); the model is causal in time.
    """

    batch: Any
    rows: Tensor  # [M] region row in the fitted batch
    test: Tensor  # [M] test index of each row
    cells: Tensor  # [M,T'] KPI units per scaled unit inside the window
    lift: Tensor  # [N] measured lift, KPI units
    se: Tensor  # [N] its standard error
    weight: float  # calibration.weight
    n_cells: float  # number of fitted KPI cells (the data term is a mean over them)

    def model_lift(self, net: nn.Module, dec: Any) -> Tensor:
        """``[N]`` the model's lift for each test, KPI units (differentiable)."""
        observed = dec.channels.sum(dim=-1)  # [R,T]
        switched_off = net(self.batch).channels.sum(dim=-1)  # [M,T']
        per_row = ((observed[self.rows, : self.cells.shape[1]] - switched_off) * self.cells).sum(dim=1)  # [M]
        return torch.zeros_like(self.lift).index_add(0, self.test, per_row)

    def penalty(self, net: nn.Module, dec: Any, noise_var: Tensor, persistence: Tensor | float = 0.0) -> Tensor:
        """Gaussian lift likelihood on the data term's scale.

        The data term is a mean squared (Huber) error, about the noise variance
        ``s2`` of one cell; a measured lift with standard error ``se`` counts as
        ``s2 / n_eff * ((model - measured) / se)^2``, so one test weighs as
        much as the data would if they measured the same quantity that
        precisely. ``n_eff`` is the number of fitted cells discounted for the
        residuals' persistence ``rho`` (see :func:`effective_cells`).
        """
        z = (self.model_lift(net, dec) - self.lift) / self.se
        return self.weight * noise_var.detach() / effective_cells(self.n_cells, persistence) * (z**2).sum()


@dataclass(frozen=True)
class RoiPriorTerm:
    """ROI priors (``calibration.roi_priors``) as a loss term, weighed as lift tests are.

    Prior ``p`` on channel ``channel[p]`` counts as a measurement of the
    channel's total effect over the fitted (observed) cells, ``target[p]`` =
    mean x spend with standard error ``se[p]`` = sd x spend. A channel without
    descendants in the channel graph has total == direct: its contribution,
    read from the fitted decomposition at no extra cost. Channels with
    descendants run in one counterfactual batch over every region (the
    channel switched off everywhere, the activity it induced removed):
    ``rows`` are those rows' regions in the fitted batch, ``prior`` the prior
    each belongs to. ``cells`` ``[R,T]`` converts scaled KPI to KPI units on
    observed cells (0 elsewhere), as ``get_channel_effects`` sums them.
    """

    channel: Tensor  # [P] channel index of each prior
    cells: Tensor  # [R,T] KPI units per scaled unit on observed cells, 0 elsewhere
    batch: Any  # counterfactual inputs [M,T,...], or None when no prior channel has descendants
    rows: Tensor  # [M] region row in the fitted batch
    prior: Tensor  # [M] prior index of each counterfactual row
    mediated: Tensor  # [P] bool: the channel has descendants (total from the counterfactual)
    target: Tensor  # [P] prior mean x spend, KPI units
    se: Tensor  # [P] prior sd x spend
    n_cells: float  # number of fitted KPI cells (the data term is a mean over them)

    def model_total(self, net: nn.Module, dec: Any) -> Tensor:
        """``[P]`` each prior channel's total effect over the fitted cells, KPI units (differentiable)."""
        cells = self.cells.double()
        direct = (dec.channels[:, :, self.channel].double() * cells[:, :, None]).sum(dim=(0, 1))  # [P]
        if self.batch is None:
            return direct
        observed = dec.channels.sum(dim=-1)  # [R,T]
        switched_off = net(self.batch).channels.sum(dim=-1)  # [M,T]
        per_row = ((observed[self.rows] - switched_off).double() * cells[self.rows]).sum(dim=1)  # [M]
        total = torch.zeros_like(direct).index_add(0, self.prior, per_row)
        return torch.where(self.mediated, total, direct)

    def penalty(self, net: nn.Module, dec: Any, noise_var: Tensor, persistence: Tensor | float = 0.0) -> Tensor:
        """Gaussian likelihood of the priors on the data term's scale (see ``LiftTerm.penalty``)."""
        z = (self.model_total(net, dec) - self.target.double()) / self.se.double()
        n_eff = effective_cells(self.n_cells, persistence)
        return (noise_var.detach().double() / n_eff * (z**2).sum()).to(noise_var.dtype)


PERSISTENCE_MAX = 0.95  # the residual persistence counted at most (n_eff at least 1/39 of the cells)


def effective_cells(n_cells: float, persistence: Tensor | float) -> Tensor | float:
    """Fitted cells discounted for residual persistence: ``n (1 - rho) / (1 + rho)``.

    With AR(1) residuals of coefficient ``rho`` the data say about a channel's
    level (a slowly moving contribution) what ``n (1 - rho) / (1 + rho)``
    independent cells would: the variance of a mean of such residuals is
    ``(1 + rho) / (1 - rho)`` times that of independent ones. A lift test or
    ROI prior is weighed against that, not against every cell as if
    independent, which on a panel whose residuals persist (the MMM panel: about
    0.8) let the data outweigh any experiment.
    """
    return n_cells * (1 - persistence) / (1 + persistence)


def pooled_persistence(err: Tensor, weight: Tensor) -> Tensor:
    """Pooled AR(1) coefficient ``[]`` of residuals ``err`` ``[R,T]``, clipped to ``[0, PERSISTENCE_MAX]``
    (no gradient): the least-squares slope of each week's residual on the previous week's, each pair
    weighted as the loss weighs its cells (the geometric mean of the two ``weight``s; 0 leaves it out)."""
    with torch.no_grad():
        w = weight.double().clamp_min(0.0)
        e = err.double() * (w > 0)
        pair = (w[:, 1:] * w[:, :-1]).sqrt()  # [R,T-1]
        den = (e[:, :-1] ** 2 * pair).sum()
        rho = (e[:, 1:] * e[:, :-1] * pair).sum() / den.clamp_min(1e-30)
        return rho.clamp(0.0, PERSISTENCE_MAX)


HUBER_K = 1.345  # Huber's constant: 95% efficiency under Gaussian noise
HUBER_MIN = 0.005  # floor of a region's threshold (scaled units): a near-constant KPI is not all outliers


def region_huber_delta(y: np.ndarray) -> np.ndarray:
    """Per-region Huber threshold ``[R]`` from scaled KPI ``[R,T]`` (NaN where not fitted).

    ``HUBER_K`` times a robust scale of each region's week-to-week noise: the
    median absolute deviation (x 1.4826) of the KPI around its centred 5-week
    running median. Regions with too few weeks get the median of the others.
    """
    frame = pd.DataFrame(y.T)  # [T,R]
    dev = (frame - frame.rolling(5, center=True, min_periods=3).median()).to_numpy().T  # [R,T]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows handled below
        centre = np.nanmedian(dev, axis=1, keepdims=True)
        scale = np.nanmedian(np.abs(dev - centre), axis=1) * 1.4826  # [R]
    ok = np.isfinite(scale)
    scale = np.where(ok, scale, np.median(scale[ok]) if ok.any() else 0.05 / HUBER_K)
    return np.maximum(HUBER_K * scale, HUBER_MIN)


@dataclass(frozen=True)
class Target:
    """What the loss compares against: KPI and per-cell weights, ``[R,T]`` each."""

    y: Tensor  # [R,T] scaled KPI (0 where unobserved)
    weight_train: Tensor  # [R,T] loss weight of cells used for fitting
    weight_val: Tensor  # [R,T] loss weight of the temporal validation slice (may be all 0)
    lift: LiftTerm | None = None  # lift tests to calibrate to (fit(lift_tests=...))
    roi: RoiPriorTerm | None = None  # ROI priors (calibration.roi_priors)
    delta: Tensor | None = None  # [R,1] per-region Huber threshold (None: from config.huber_delta)


@dataclass
class History:
    """Per-epoch losses and the stopping decision."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = 0
    epochs_run: int = 0
    refit_epochs: int = 0
    polish_evals: int = 0
    stopped_early: bool = False
    seconds: float = 0.0

    def __repr__(self) -> str:  # the per-epoch lists summarised: a fit's run hundreds of entries
        def losses(values: list[float]) -> str:
            return f"[{len(values)} values, last {values[-1]:.6g}]" if values else "[]"
        return (f"History(train_loss={losses(self.train_loss)}, val_loss={losses(self.val_loss)}, "
                f"best_epoch={self.best_epoch}, epochs_run={self.epochs_run}, refit_epochs={self.refit_epochs}, "
                f"polish_evals={self.polish_evals}, stopped_early={self.stopped_early}, seconds={self.seconds:.2f})")


def data_loss(pred: Tensor, y: Tensor, weight: Tensor, kind: str, delta: float | Tensor) -> Tensor:
    """Weighted mean of squared or Huber error over cells (``[R,T]`` each; ``delta`` a float or ``[R,1]``).

    Computed and summed in float64 (the model itself runs in float32). Near the
    optimum the L-BFGS polish asks for loss decreases of about 1e-7 of the loss,
    the resolution of a float32 sum over a panel's cells: with the sum in
    float32 its line search found no lower point and stopped, after 21 of 500
    steps (90 evaluations) on a 190-region panel with 2 CPU threads but ran all
    500 with 1 (a different summation order), and the two fits' channel shares
    differed by up to 1.8 percentage points. In float64 both run every step and
    agree within 0.15 points; the cost is one [R,T] cast per evaluation.
    """
    pred, y, weight = pred.double(), y.double(), weight.double()
    if isinstance(delta, Tensor):
        delta = delta.double()
    err = pred - y
    if kind == "huber" and isinstance(delta, Tensor):
        a = err.abs()
        per = torch.where(a <= delta, a**2, 2 * delta * a - delta**2)  # 2 x Huber
    elif kind == "huber":
        per = nn.functional.huber_loss(pred, y, reduction="none", delta=float(delta)) * 2.0
    else:
        per = err**2
    return (per * weight).sum() / weight.sum().clamp_min(1e-12)


def with_huber_delta(target: Target, config: MMMConfig) -> Target:
    """``target`` with per-region Huber thresholds filled in under ``huber_delta: auto``.

    The estimator builds targets that carry them; a target built elsewhere gets
    them here from its own training cells (scaled KPI where ``weight_train > 0``).
    """
    if target.delta is not None or config.loss != "huber" or config.huber_delta != "auto":
        return target
    y = target.y.detach().cpu().numpy()
    fitted = np.where(target.weight_train.detach().cpu().numpy() > 0, y, np.nan)  # [R,T]
    delta = torch.tensor(region_huber_delta(fitted)[:, None], dtype=target.y.dtype, device=target.y.device)
    return dataclasses.replace(target, delta=delta)


def total_loss(net: nn.Module, batch: object, target: Target, config: MMMConfig) -> tuple[Tensor, Tensor]:
    """(fitting loss incl. penalties, validation data loss) for one forward pass."""
    dec = net(batch)
    target = with_huber_delta(target, config)  # no-op when it carries thresholds (train, polish)
    delta: float | Tensor
    if target.delta is not None:
        delta = target.delta
    else:  # a number, or unused (mse)
        delta = 0.0 if config.huber_delta == "auto" else float(config.huber_delta)
    fit = data_loss(dec.prediction, target.y, target.weight_train, config.loss, delta)
    with torch.no_grad():
        val = data_loss(dec.prediction, target.y, target.weight_val, config.loss, delta)
    penalty = net.penalty(config, dec)  # type: ignore[operator]
    if target.lift is not None or target.roi is not None:
        rho = pooled_persistence(dec.prediction - target.y, target.weight_train)
        if target.lift is not None:
            penalty = penalty + target.lift.penalty(net, dec, fit, rho)
        if target.roi is not None:
            penalty = penalty + target.roi.penalty(net, dec, fit, rho)
    return fit + penalty, val


def train(
    net: nn.Module,
    batch: object,
    target: Target,
    config: MMMConfig,
    callback: Callable[[int, float, float], None] | None = None,
    epochs: int | None = None,
    learning_rate: float | None = None,
) -> History:
    """Fit ``net`` in place by full-batch Adam; return the loss history.

    With a validation slice (``target.weight_val`` not all zero) training stops
    when the validation loss has not improved by ``training.min_delta`` for
    ``training.patience`` epochs and the best epoch's weights are restored.
    Without one it stops when the training loss plateaus the same way.
    """
    start = time.perf_counter()
    target = with_huber_delta(target, config)  # once, not per epoch
    tr = config.training
    n_epochs = tr.epochs if epochs is None else epochs
    lr = tr.learning_rate if learning_rate is None else learning_rate
    params = [p for p in net.parameters() if p.requires_grad]
    lbfgs = tr.optimizer == "lbfgs"
    opt: torch.optim.Optimizer
    if lbfgs:
        opt = torch.optim.LBFGS(params, lr=1.0, max_iter=tr.lbfgs_steps, history_size=20,
                                line_search_fn="strong_wolfe", tolerance_grad=1e-9,
                                tolerance_change=1e-12)
    else:
        opt = torch.optim.Adam(params, lr=lr)
    history = History()
    use_val = bool(target.weight_val.sum() > 0)
    best, best_state, since = float("inf"), None, 0
    scale = 1.0  # L-BFGS sees the loss over its starting value (see ``polish``)
    if lbfgs:
        with torch.no_grad():
            scale = _lbfgs_scale(float(total_loss(net, batch, target, config)[0]))

    def closure() -> Tensor:
        opt.zero_grad(set_to_none=True)
        loss = total_loss(net, batch, target, config)[0] / scale
        loss.backward()
        return loss

    for epoch in range(n_epochs):
        if lbfgs:
            opt.step(closure)  # type: ignore[arg-type]
            with torch.no_grad():
                loss, val = total_loss(net, batch, target, config)
        else:
            opt.zero_grad(set_to_none=True)
            loss, val = total_loss(net, batch, target, config)
            loss.backward()
            nn.utils.clip_grad_norm_(params, tr.max_grad_norm)
        lv, vv = float(loss.detach()), float(val)
        if not math.isfinite(lv):
            raise FloatingPointError(
                f"training loss became {lv} at epoch {epoch}; lower training.learning_rate"
            )
        history.train_loss.append(lv)
        if use_val:
            history.val_loss.append(vv)
        if callback is not None:
            callback(epoch, lv, vv)
        monitor = vv if use_val else lv
        if monitor < best - tr.min_delta:
            best, since, history.best_epoch = monitor, 0, epoch
            if use_val:
                best_state = copy.deepcopy(net.state_dict())
        else:
            since += 1
        if since >= tr.patience:
            history.stopped_early = True
            break
        if not lbfgs:
            opt.step()  # type: ignore[call-arg]
    if best_state is not None:
        net.load_state_dict(best_state)
    history.epochs_run = len(history.train_loss)
    history.seconds = time.perf_counter() - start
    return history


def _lbfgs_scale(start: float) -> float:
    """What L-BFGS divides the objective by: its starting value (1 where that is not positive)."""
    return start if math.isfinite(start) and start > 0 else 1.0


def polish(
    net: nn.Module,
    batch: object,
    target: Target,
    config: MMMConfig,
    steps: int,
    frozen: tuple[str, ...] = (),
) -> int:
    """Refine ``net`` in place with up to ``steps`` L-BFGS iterations; return evaluations used.

    Adam stops when the loss plateaus, but directions the loss barely feels,
    such as how a channel's effect splits between its level and the baseline
    level, are still moving then; a quasi-Newton method settles them in a few
    hundred iterations. Parameters whose names start with a prefix in
    ``frozen`` keep their values. The parameters end at the lowest objective
    any L-BFGS run reached (the starting point if none went lower or all were
    not finite).
    """
    params = [
        p for name, p in net.named_parameters()
        if p.requires_grad and not name.startswith(frozen)
    ]
    if steps <= 0 or not params:
        return 0
    target = with_huber_delta(target, config)
    start = copy.deepcopy(net.state_dict())
    # tolerance_change=0: near Adam's end point one L-BFGS step can change the
    # float32 loss by less than its rounding, and with a positive tolerance
    # L-BFGS reads that tie as convergence and stops. On an H200 that happened
    # after 4 of 300 steps in every full fit (its summation order), on the CPU
    # in a few fits; without it the run is bounded by ``steps`` (at most
    # 1.25 x steps evaluations).
    evals = 0

    def closure() -> Tensor:
        nonlocal evals
        evals += 1
        net.zero_grad(set_to_none=True)  # frozen parameters too: their gradients are unused
        loss = total_loss(net, batch, target, config)[0] / scale
        loss.backward()
        return loss

    def current() -> float:
        with torch.no_grad():
            return float(total_loss(net, batch, target, config)[0])

    before = current()
    # L-BFGS sees the objective over its starting value. Its first step (the
    # negative gradient, at most unit length) and its test for keeping a
    # curvature pair (y's > 1e-10) are absolute, so with the loss itself (about
    # 1e-3 on a panel with 6% noise, gradients about 1e-5) the first steps moved
    # the parameters by about 1e-5, where the float32 model's rounding hides the
    # change; no pair was kept and the polish stopped after 4 of 500 steps (a
    # simulated panel whose budget season peaks with the KPI's). Divided by its
    # starting value the objective is of order 1 at any noise level or scale.
    scale = _lbfgs_scale(before)
    # L-BFGS also stops when its line search finds no lower point or its
    # direction is not a descent direction, which float32 rounding in the
    # model's gradients can cause long before ``steps``. (With the loss summed
    # in float32 the line search failed after 18 evaluations in a 2000 x 156 x 20
    # fit on an H200 and after 90 in a 190 x 109 x 13 fit on 2 CPU threads;
    # see ``data_loss``.) A fresh optimizer (a new curvature history)
    # then starts again from the point reached, as long as the last run
    # lowered the loss; all runs share one budget of ``steps`` iterations and
    # 1.25 x ``steps`` evaluations, so the first run is the single run of before.
    used, level, best = 0, before, start
    # torch's default max_eval for one run of ``steps`` iterations; at least one step's
    # evaluation and one line-search evaluation
    budget = max(steps * 5 // 4, 2)
    while used < steps and evals < budget - 1:  # a line search needs 2 evaluations
        opt = torch.optim.LBFGS(params, lr=1.0, max_iter=steps - used, max_eval=budget - evals,
                                history_size=20, line_search_fn="strong_wolfe",
                                tolerance_grad=1e-10, tolerance_change=0.0)
        opt.step(closure)  # type: ignore[arg-type]
        used += max(int(opt.state[params[0]].get("n_iter", 0)), 1)
        now = current()
        if not (math.isfinite(now) and now <= level):
            break
        improved = now < level
        level, best = now, copy.deepcopy(net.state_dict())
        if not improved:
            break
    net.zero_grad(set_to_none=True)
    net.load_state_dict(best)
    return evals
