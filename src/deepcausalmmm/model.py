"""The network: an additive, identifiable MMM with GRU-shaped carryover and effectiveness.

For channel c, region r, week t (scaled units, region mean KPI = 1)::

    contribution = beta_c * exp(u_rc) * m_rc(t) * Hill_c(carryover_c(x_rc[..t]))
    prediction   = baseline_r(t) + sum_c contribution + sum_k gamma_k * z_rk(t)

Each channel's contribution depends only on that channel's own history; the
GRUs see calendar features and controls, never spend (invariant 7).
``forward`` is pure and returns a :class:`Decomposition`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
from torch import Tensor, nn

from .components.carryover import GatedCarryover
from .components.saturation import HillSaturation, hill
from .components.temporal import Baseline, CalendarContext, Effectiveness
from .config import MMMConfig

__all__ = ["Batch", "Decomposition", "MMMNet"]


@dataclass(frozen=True)
class Batch:
    """Model inputs for a set of fitted regions over one time grid."""

    media: Tensor  # [R,T,C] scaled activity
    controls: Tensor  # [R,T,K] standardised controls
    calendar: Tensor  # [T,F] calendar features for the GRUs
    basis: Tensor  # [T,J] trend basis
    fourier: Tensor  # [T,P2] seasonality terms
    region_idx: Tensor  # [R] index of each row among the fitted regions

    def to(self, device: torch.device | str) -> Batch:
        """Copy to ``device``."""
        return Batch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


@dataclass(frozen=True)
class Decomposition:
    """Additive decomposition in scaled KPI units; ``prediction`` is their sum."""

    baseline: Tensor  # [R,T]
    channels: Tensor  # [R,T,C]
    controls: Tensor  # [R,T,K]
    prediction: Tensor  # [R,T]
    effectiveness: Tensor  # [R,T,C] multiplier in the configured band


class MMMNet(nn.Module):
    """The MMM as a torch module (see module docstring)."""

    negative: Tensor  # [C] buffer: channels allowed a signed effect
    control_signs: Tensor  # [K] buffer: +1, -1 or 0 (free)
    prior_weight: Tensor  # [C] buffer: multiplier on each channel's coefficient prior
    free: Tensor  # [C] buffer: 1, or 0 for channels whose coefficient is fixed at 0

    def __init__(
        self,
        n_regions: int,
        n_channels: int,
        n_controls: int,
        n_calendar: int,
        n_knots: int,
        n_fourier: int,
        config: MMMConfig,
        negative_mask: list[bool] | None = None,
        control_signs: list[int] | None = None,
        prior_weight: list[float] | None = None,
        fixed_zero: list[bool] | None = None,
    ) -> None:
        super().__init__()
        co, sa, ef, cf = config.carryover, config.saturation, config.effectiveness, config.coefficients
        hidden = config.context.hidden
        self.context = CalendarContext(n_calendar, n_controls, hidden)
        self.carryover = GatedCarryover(
            n_channels,
            hidden,
            stages=co.stages,
            gate_min=co.gate_min,
            gate_max=co.gate_max,
            max_lag=co.max_lag,
            context_scale=co.context_scale,
        )
        self.saturation = HillSaturation(
            n_channels, sa.half_sat_min, sa.half_sat_max, sa.slope_min, sa.slope_max
        )
        self.effectiveness = (
            Effectiveness(hidden, n_channels, ef.low, ef.high)
            if ef.enabled
            else None
        )
        self.baseline = Baseline(n_regions, n_knots, n_fourier)
        self.beta_max = cf.beta_max
        self.log_expansion = math.log(cf.bound_max_expansion)
        self.learnable_bound = cf.learnable_bound
        self.bound_raw = nn.Parameter(torch.zeros(()))
        neg = torch.tensor(negative_mask or [False] * n_channels, dtype=torch.bool)
        self.register_buffer("negative", neg)
        p0 = min(0.4 / max(n_channels, 1) / cf.beta_max, 0.5)
        self.beta_raw = nn.Parameter(torch.full((n_channels,), math.log(p0 / (1 - p0))))
        self.region_dev = nn.Parameter(torch.zeros(n_regions, n_channels))  # [R,C]
        self.gamma_raw = nn.Parameter(torch.zeros(n_controls))  # [K]
        signs = torch.tensor(control_signs or [0] * n_controls, dtype=torch.float32)
        self.register_buffer("control_signs", signs)
        # Multiplier on each channel's coefficient prior (calibration.tested_prior for channels
        # with a lift test). Used only while fitting, so not saved with the weights.
        weight = torch.tensor(prior_weight or [1.0] * n_channels, dtype=torch.float32)
        self.register_buffer("prior_weight", weight, persistent=False)
        # Channels whose effect the data cannot show (no variation within any region, no lift
        # test): coefficient fixed at 0. Derived from the panel, so not saved with the weights.
        free = [0.0 if z else 1.0 for z in (fixed_zero or [False] * n_channels)]
        self.register_buffer("free", torch.tensor(free, dtype=torch.float32), persistent=False)

    # -- parameters in interpretable form -------------------------------------------------
    def coefficient_bound(self) -> Tensor:
        """Learnable upper bound of |beta| (scalar)."""
        if not self.learnable_bound:
            return torch.tensor(self.beta_max)
        return self.beta_max * torch.exp(self.log_expansion * torch.tanh(self.bound_raw))

    def beta(self) -> Tensor:
        """Channel coefficients ``[C]``: in (0, bound), or (-bound, bound) where allowed."""
        pos = torch.sigmoid(self.beta_raw)
        signed = torch.tanh(self.beta_raw)
        return self.coefficient_bound() * torch.where(self.negative, signed, pos) * self.free

    def gamma(self) -> Tensor:
        """Control coefficients ``[K]`` with the configured signs."""
        sp = nn.functional.softplus(self.gamma_raw)
        s = self.control_signs
        return torch.where(s == 0, self.gamma_raw, s * sp)

    # -- forward ---------------------------------------------------------------------------
    def contexts(self, batch: Batch) -> tuple[Tensor, Tensor | None]:
        """The national context ``[T,H]`` (it shifts the carryover gates) and the regional one
        ``[R,T,H]`` (effectiveness; None when that is off)."""
        if self.effectiveness is None and self.carryover.context_scale == 0:
            # nothing reads the context: constant gates, no effectiveness (same result, no GRU run)
            return batch.calendar.new_zeros(batch.calendar.shape[0], self.context.gru.hidden_size), None
        return self.context(batch.calendar, batch.controls, regional=self.effectiveness is not None)

    def forward(self, batch: Batch) -> Decomposition:
        """Decompose the KPI for ``batch`` (scaled units)."""
        national, regional = self.contexts(batch)  # [T,H], [R,T,H] or None
        carried = self.carryover(batch.media, national)  # [R,T,C] -> [R,T,C]
        sat = self.saturation(carried)  # [R,T,C]
        scale = self.beta()[None, :] * torch.exp(self.region_dev[batch.region_idx])  # [R,C]
        if self.effectiveness is not None and regional is not None:
            eff = self.effectiveness(regional)  # [R,T,H] -> [R,T,C]
        else:
            eff = torch.ones_like(sat)
        channels = scale[:, None, :] * eff * sat  # [R,1,C] * [R,T,C] -> [R,T,C]
        controls = batch.controls * self.gamma()  # [R,T,K] * [K] -> [R,T,K]
        base = self.baseline(batch.basis, batch.fourier, batch.region_idx)  # [R,T]
        prediction = base + channels.sum(dim=-1) + controls.sum(dim=-1)  # [R,T]
        return Decomposition(base, channels, controls, prediction, eff)

    # -- penalties -------------------------------------------------------------------------
    def prior_coefficients(self, kind: str = "ceiling") -> Tensor:
        """The channel quantities that ``l1``/``l2`` shrink, ``[C]``.

        ``ceiling``: the coefficients (the response curve's ceiling). Shrinking
        them favours concave curves, whose level per unit of marginal effect is
        larger. ``marginal``: each channel's marginal effect at its typical
        activity (x = 1 in region-mean units), ``4 beta s h (1 - h)`` with
        ``h = Hill(1)``: equal to ``beta`` for half-saturation 1 and slope 1,
        and blind to how much level a curve carries per unit of slope.
        """
        beta = self.beta()
        if kind == "ceiling":
            return beta
        if kind != "marginal":
            raise ValueError(f"coefficient prior must be 'ceiling' or 'marginal', found {kind!r}")
        slope = self.saturation.slope()
        h = hill(torch.ones_like(beta), self.saturation.half_saturation(), slope)  # Hill(1) [C]
        return 4 * beta * slope * h * (1 - h)

    def penalty(self, config: MMMConfig, decomposition: Decomposition) -> Tensor:
        """All regularisation terms of the configuration, as one scalar."""
        reg = config.regularization
        b, g, w = self.prior_coefficients(reg.coefficient_prior), self.gamma(), self.prior_weight
        # w * |b| and w * b^2, summed with the controls' terms as one vector (bit-identical to the
        # unweighted prior when every w is 1)
        pen = reg.l1 * torch.cat([w * b.abs(), g.abs()]).sum()
        pen = pen + reg.l2 * (torch.cat([torch.sqrt(w) * b, g]) ** 2).sum()
        pen = pen + reg.region_shrinkage * (self.region_dev**2).sum(dim=1).mean()
        pen = pen + self.baseline.penalty(reg.smoothness, reg.region_shrinkage, reg.season_shrinkage)
        pen = pen + reg.bound * self.bound_raw**2
        if reg.carryover_pooling > 0:
            logit = self.carryover.gate_logit  # [S,C]
            pen = pen + reg.carryover_pooling * ((logit - logit.mean(dim=1, keepdim=True)) ** 2).sum()
        pen = pen + reg.hill_slope * (torch.log(self.saturation.slope()) ** 2).sum()
        if self.effectiveness is not None:
            pen = pen + reg.effectiveness * ((decomposition.effectiveness - 1) ** 2).mean()
        return pen
