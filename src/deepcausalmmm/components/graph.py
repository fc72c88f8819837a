"""Channel graph: a linear structural equation model among channel activities.

Each channel's activity (region-scaled) is its exogenous part plus induced
parts from its parents, contemporaneous (``W0``, a DAG) and lagged
(``W1..WL``, any direction, time order keeps it causal)::

    a_t = a_t W0 + a_{t-1} W1 + ... + a_{t-L} WL + e_t

Structure is learned with NOTEARS (Zheng et al. 2018): least squares + L1,
subject to ``h(W0) = tr(exp(W0 * W0)) - d = 0`` by an augmented Lagrangian,
then thresholded. On standardised data least squares cannot tell an edge's
direction, so each kept contemporaneous edge is oriented by a pairwise
non-Gaussian likelihood-ratio score (Hyvarinen & Smith 2013) unless roots,
required or forbidden edges fix it. Where that score is unsettled over region
resamples (near-Gaussian activity), directions are chosen per linked group
of channels by an equal-variance rule (Peters & Buhlmann 2014) in relative
units: the orientation under which every channel's exogenous part has the
same coefficient of variation fits best, kept only if the CVs it implies are
alike; where they are not, the same rule on log activity (equal log
variances), for channels that lift each other in proportion, re-deciding the
group's settled edges too. The result is checked acyclic (weakest
cycle edges dropped) and refit by unpenalised least squares on the kept edges. It runs on
within-region, de-trended, de-seasonalised activity: with three or more
regions, each week's cross-region mean is removed per channel (national
budget cycles, trend and season), then each region's mean; with fewer, a
linear trend and yearly Fourier terms are regressed out.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.linalg import expm
from scipy.optimize import Bounds, linprog, minimize
from scipy.sparse.csgraph import connected_components
from threadpoolctl import threadpool_limits

__all__ = [
    "ChannelGraph",
    "prepare_activity",
    "regional_cycles",
    "remove_shared_driver",
    "dense_graph_message",
    "edge_mask",
    "notears",
    "learn_graph",
    "topological_order",
    "orientation_score",
    "direction_support",
    "equal_cv_loglik",
    "equal_log_variance_loglik",
    "implied_cvs",
    "log_residual_sds",
]


@dataclass(frozen=True)
class ChannelGraph:
    """Learned (or given) channel graph in region-scaled activity units.

    Attributes
    ----------
    weights : ndarray ``[L+1, C, C]``
        ``weights[l, i, j]``: change in channel j's activity (in units of its
        regional mean) per unit of channel i's activity ``l`` weeks earlier.
        ``l = 0`` is the contemporaneous DAG. Diagonals are 0.
    roots : list of int
        Channels that may not have parents.
    direction : ndarray ``[C, C]`` or None
        For each learned contemporaneous edge i -> j, the share of region
        bootstrap resamples whose orientation score also points i -> j (near
        1: the data support the direction; near 0.5: a coin flip, as with
        Gaussian disturbances). NaN where the direction was not learned from
        the data (lagged edges, required or constrained edges, fixed graphs).
    assumed : ndarray ``[C, C]`` of bool or None
        True for the learned contemporaneous edges whose direction support was
        below ``DIRECTION_SETTLED`` (0.95) and whose direction was then chosen by
        :func:`equal_cv_loglik` (the orientation under which the channels'
        exogenous parts vary most alike relative to their means); False where
        the CVs that orientation implies were unlike, so the score's direction
        stayed.
    national : ndarray ``[C]`` of bool or None
        Channels bought nationally (:func:`national_channels`): their edges to
        channels with regional movements were learned from the week-to-week
        national series, where a coordinated media plan looks the same as
        influence. None where the graph was not learned (``mode="none"``, one
        channel, too few region-weeks), so nothing was checked.
    dark : ndarray ``[C, C]`` of bool or None
        True for the learned contemporaneous edges whose direction their dark
        weeks set (:func:`dark_weeks_settle`: the parent is dark in weeks the
        child runs, never the reverse, and the child's activity moves with the
        parent's dark weeks as the edge implies). None for files saved before
        session 33.
    ordered : ndarray ``[C, C]`` of bool or None
        True for the learned contemporaneous edges whose direction the score
        left open (support below ``DIRECTION_SETTLED``, no other rule settling
        it) and that were turned to run as the same pair's lagged edges do
        (:func:`_time_order`). None for files saved before session 34.
    persistent_driver : bool or None
        Whether the activity showed a driver every channel shares that lasts
        into the following weeks (the shared-driver step found one whose
        lagged correlations are beyond noise, :func:`shared_driver_designs`):
        the learned edges are then hypotheses (``PERSISTENT_DRIVER_MESSAGE``). None where it was not checked (graph
        not learned by NOTEARS) and for files saved before session 35.
    """

    weights: np.ndarray
    roots: tuple[int, ...] = ()
    direction: np.ndarray | None = None  # [C,C] support of i -> j over region resamples
    assumed: np.ndarray | None = None  # [C,C] bool: direction from the equal-CV rule
    national: np.ndarray | None = None  # [C] bool: bought nationally; edges from them learned nationally
    dark: np.ndarray | None = None  # [C,C] bool: direction set by the dark weeks
    ordered: np.ndarray | None = None  # [C,C] bool: direction from the pair's lagged edges
    persistent_driver: bool | None = None  # a shared driver lasting into the following weeks

    @property
    def n_channels(self) -> int:
        """C."""
        return int(self.weights.shape[1])

    def h_func(self) -> float:
        """NOTEARS acyclicity of the contemporaneous part: 0 iff it is a DAG."""
        return acyclicity(self.weights[0])[0]

    def edges(self) -> list[tuple[int, int, int, float]]:
        """(parent, child, lag, weight) for every non-zero cross-channel weight."""
        L, C, _ = self.weights.shape
        return [(i, j, lag, float(self.weights[lag, i, j]))
                for lag in range(L) for i in range(C) for j in range(C)
                if i != j and self.weights[lag, i, j] != 0]

    @classmethod
    def empty(cls, n_channels: int, max_lag: int = 0) -> ChannelGraph:
        """A graph without edges."""
        return cls(np.zeros((max_lag + 1, n_channels, n_channels)))


def acyclicity(W: np.ndarray) -> tuple[float, np.ndarray]:
    """``h(W) = tr(exp(W * W)) - d`` and its gradient.

    Each entry of ``W * W`` is capped at ``min(25, 500 / d)`` (the gradient is 0 past the cap), so
    that ``h`` stays finite: an optimiser's trial step far out (standardised weights near 180, tried
    by a line search on a random-design panel) made ``exp`` overflow, with numpy's overflow warnings
    reaching the user and a NaN handed to the line search. Weights on standardised activity never
    come near the cap (about 5 in absolute value for up to 20 channels), so ``h`` is unchanged
    wherever a graph is learned.
    """
    cap = min(25.0, 500.0 / max(W.shape[0], 1))
    sq = W * W
    E = expm(np.minimum(sq, cap))
    return float(np.trace(E) - W.shape[0]), np.where(sq < cap, E.T * W * 2, 0.0)


def topological_order(adj: np.ndarray) -> list[int] | None:
    """Kahn's algorithm on ``adj != 0``; None if there is a cycle."""
    a = adj != 0
    np.fill_diagonal(a, False)
    indeg = a.sum(axis=0)
    order, ready = [], [i for i in range(len(a)) if indeg[i] == 0]
    while ready:
        i = ready.pop(0)
        order.append(i)
        for j in np.flatnonzero(a[i]):
            indeg[j] -= 1
            if indeg[j] == 0:
                ready.append(int(j))
    return order if len(order) == len(a) else None


def _break_cycles(W: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Drop the weakest non-required edge until ``W`` is a DAG."""
    W = W.copy()
    while topological_order(W) is None:
        cand = np.argwhere((W != 0) & ~keep)
        if len(cand) == 0:
            raise ValueError("graph.required edges form a cycle; required edges must be acyclic")
        i, j = min(cand, key=lambda ij: abs(W[ij[0], ij[1]]))
        W[i, j] = 0.0
    return W


def smooth_basis(T: int, phase: np.ndarray, spacing: int = 13, harmonics: int = 2) -> np.ndarray:
    """``[T, J]`` basis of slow movements: level, piecewise-linear trend (knots every
    ``spacing`` steps) and the first ``harmonics`` yearly harmonics."""
    t = np.arange(T, dtype=float)
    knots = np.arange(0, T - 1, spacing, dtype=float)
    hinges = [np.maximum(t - k, 0.0) / max(T - 1, 1) for k in knots[1:]]
    ang = 2 * np.pi * phase
    waves = [f(h * ang) for h in range(1, harmonics + 1) for f in (np.sin, np.cos)]
    return np.column_stack([np.ones(T), t / max(T - 1, 1), *hinges, *waves])


CYCLE_HARMONICS = 4  # with regional budget cycles: yearly harmonics up to the 4th (13-week cycles)
CYCLE_P = 1e-4  # significance of the pooled F-test for them


def regional_cycles(a: np.ndarray, observed: np.ndarray, phase: np.ndarray) -> bool:
    """Whether regions' channels share cycles faster than half a year (e.g. quarterly budgets).

    Pooled F-test, over regions, of yearly harmonics 3..``CYCLE_HARMONICS``
    added to :func:`smooth_basis` in each region's cross-channel mean of
    ``a`` ``[R,T,C]`` (already without each week's cross-region mean). A
    budget cycle with its own phase in every region moves all of a region's
    channels together; left in the activity it links every channel to every
    other (40 x 156 x 8 panels with a 13-week regional cycle gave 42-50 false
    edges), so :func:`prepare_activity` then removes it with the other slow
    movements. Without such cycles the extra terms only cost degrees of
    freedom, so they are added only when the test rejects at ``CYCLE_P``.
    """
    from scipy.stats import f as f_dist

    T = a.shape[1]
    D0, D1 = smooth_basis(T, phase), smooth_basis(T, phase, harmonics=CYCLE_HARMONICS)
    extra = D1.shape[1] - D0.shape[1]
    def rss(D: np.ndarray, m: np.ndarray) -> float:
        coef, *_ = np.linalg.lstsq(D, m, rcond=None)
        return float(((m - D @ coef) ** 2).sum())

    rss0 = rss1 = 0.0
    dof = groups = 0
    for r in range(a.shape[0]):
        ok = observed[r]
        if ok.sum() <= D1.shape[1] + 2:
            continue
        m = np.nanmean(a[r, ok], axis=1)  # [T_r] cross-channel mean
        if not np.isfinite(m).all():
            continue
        rss0 += rss(D0[ok], m)
        rss1 += rss(D1[ok], m)
        dof += int(ok.sum()) - D1.shape[1]
        groups += 1
    if groups == 0 or dof <= 0 or rss1 <= 0:
        return False
    F = ((rss0 - rss1) / (extra * groups)) / (rss1 / dof)
    return bool(f_dist.sf(F, extra * groups, dof) < CYCLE_P)


def _nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    """``np.nanmean(a, axis, keepdims=True)`` (the same sums), 0 where every value is NaN and
    without the warning (weeks no region observes, e.g. log activity of a channel dark
    nationally)."""
    count = (~np.isnan(a)).sum(axis=axis, keepdims=True)
    return np.nansum(a, axis=axis, keepdims=True) / np.maximum(count, 1)


def prepare_activity(
    scaled: np.ndarray, observed: np.ndarray, phase: np.ndarray, cycle_test: bool = True
) -> np.ndarray:
    """Within-region, de-trended, de-seasonalised activity ``[R,T,C]`` (see :func:`_prepare`)."""
    return _prepare(scaled, observed, phase, cycle_test)[0]


def absorbed_dof(observed: np.ndarray, n_basis: int) -> int:
    """Degrees of freedom the preparation takes from each channel's series: one per week
    observed somewhere (its cross-region mean, with 3 or more regions) and ``n_basis``
    slow-movement terms per region (its mean alone where it has no more cells than that), less
    the ``n_basis`` national terms both of those hold. A residual variance over the cells
    without them understates the noise: on 5 regions x 60 weeks over a third of the cells."""
    R = observed.shape[0]
    n_r = observed.sum(axis=1)  # [R]
    regional = int(np.where(n_r > n_basis, n_basis, np.minimum(n_r, 1)).sum())
    if R < 3:
        return regional
    return max(int(observed.any(axis=0).sum()) + regional - n_basis, 0)


def _prepare(
    scaled: np.ndarray, observed: np.ndarray, phase: np.ndarray, cycle_test: bool = True,
    controls: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """Within-region, de-trended, de-seasonalised activity ``[R,T,C]``, and the degrees of
    freedom that took from each channel (:func:`absorbed_dof`).

    Each week's cross-region mean is removed (national budget seasons, bursts
    and launches that move every region's channels together), then every
    region's slow movements are regressed out (its own level, a
    piecewise-linear trend and yearly harmonics: regional budget cycles and
    growth move all of a region's channels together without one causing
    another; harmonics up to 13-week cycles when :func:`regional_cycles`
    finds such cycles). What is left is the week-to-week variation in which one
    channel's activity can drive another's.

    Parameters
    ----------
    scaled : ``[R,T,C]`` activity divided by its region-channel mean
    observed : ``[R,T]`` cells that hold data
    phase : ``[T]`` yearly phase in cycles
    cycle_test : run :func:`regional_cycles` (False: two yearly harmonics only)
    controls : ``[R,T,K]`` controls to partial out (see :func:`_prepare_both`)
    """
    act, absorbed, _ = _prepare_both(scaled, observed, phase, cycle_test, with_full=False, controls=controls)
    return act, absorbed


def _prepare_both(
    scaled: np.ndarray, observed: np.ndarray, phase: np.ndarray, cycle_test: bool = True,
    with_full: bool = True, controls: np.ndarray | None = None,
) -> tuple[np.ndarray, int, np.ndarray | None]:
    """:func:`_prepare`'s activity and degrees of freedom, and (``with_full``) the same
    preparation without the week-mean step ``[R,T,C]``, every region's slow terms the ones
    chosen for the activity (the national movements kept: :func:`national_channels` and
    the national pass of :func:`learn_graph`), from the same regressions.

    ``controls`` ``[R,T,K]`` (the fit's controls: price, promotions, weather...) are prepared
    alike and partialled out of both (:func:`_partial_out`): a control that moves two channels
    together (a regional promotion raising search and social) is a common cause, not one
    channel driving the other. The degrees of freedom count its coefficients."""
    R, T, C = scaled.shape
    K = 0 if controls is None else controls.shape[2]
    a0 = np.where(observed[:, :, None], scaled, np.nan)  # [R,T,C]
    a = a0 - _nanmean(a0, axis=0) if R >= 3 else a0.copy()  # remove each week's cross-region mean
    cycles = cycle_test and regional_cycles(a, observed, phase)
    D = smooth_basis(T, phase, harmonics=CYCLE_HARMONICS if cycles else 2)  # [T,J]
    parts = [a] + ([a0] if with_full else [])
    if K:
        assert controls is not None
        z0 = np.where(observed[:, :, None], controls, np.nan)  # [R,T,K]
        parts += [z0 - _nanmean(z0, axis=0) if R >= 3 else z0.copy()] + ([z0] if with_full else [])
    both = np.concatenate(parts, axis=2)  # [R,T,C (+C) (+K (+K))]
    for r in range(R):
        ok = observed[r]
        if ok.sum() <= D.shape[1]:
            both[r] = np.where(ok[:, None], both[r] - _nanmean(both[r], axis=0), np.nan)
            continue
        coef, *_ = np.linalg.lstsq(D[ok], both[r, ok], rcond=None)  # [J, columns]
        both[r] = both[r] - D @ coef
    both = np.nan_to_num(both, nan=0.0)
    act = both[:, :, :C]
    full = both[:, :, C : 2 * C] if with_full else None
    if K:
        z = both[:, :, C * (2 if with_full else 1):]
        act = _partial_out(act, z[:, :, :K], observed)
        if full is not None:
            full = _partial_out(full, z[:, :, K:], observed)
    return act, absorbed_dof(observed, D.shape[1]) + K, full


def _control_terms(controls: np.ndarray | None) -> np.ndarray | None:
    """The controls ``[R,T,K]`` the graph partials out, with the square of each one that takes
    more than two values (a control that scales channels, e.g. ``exp(0.5 z)`` of a weather
    index, moves them together beyond its linear part: 4 false pairs over 4 panels with the
    linear term alone, 0 with the square); None without controls."""
    if controls is None or controls.shape[2] == 0:
        return None
    terms = [controls]
    for k in range(controls.shape[2]):
        v = controls[:, :, k]
        if len(np.unique(v[np.isfinite(v)])) > 2:
            centred = v - np.nanmean(v)
            terms.append((centred * centred)[:, :, None])
    return np.concatenate(terms, axis=2)


def _partial_out(a: np.ndarray, z: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """``a`` ``[R,T,C]`` less its least-squares fit on ``z`` ``[R,T,K]`` over the observed cells
    (one coefficient per channel and control, pooled over regions and weeks)."""
    Z = z[observed]  # [N,K]
    if not len(Z) or not np.any(Z):
        return a
    coef, *_ = np.linalg.lstsq(Z, a[observed], rcond=None)  # [K,C]
    out = a.copy()
    out[observed] = a[observed] - Z @ coef
    return out


NATIONAL_SHARE = 0.05  # regional share of a channel's movements under which it counts as bought nationally


def national_channels(act: np.ndarray, full: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """``[C]`` True for channels bought nationally: under ``NATIONAL_SHARE`` (5%) of their
    within-region movements (de-trended, de-seasonalised: ``full``) is left once each week's
    cross-region mean is removed (``act``). Such a channel moves alike in every region (national
    TV flights scaled to each region), so the regional graph has nothing of it to learn from.
    On the MMM panel 5 of its 13 channels are (0.1-4.6% regional), on the simulators none (11% or
    more)."""
    if not observed.any():
        return np.zeros(act.shape[2], dtype=bool)
    v_full, v_act = full[observed].var(axis=0), act[observed].var(axis=0)  # [C]
    return (v_full > 1e-12) & (v_act < NATIONAL_SHARE * v_full)


def _relative_to_cells(scaled: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Each region's activity ``[R,T,C]`` over its mean on the cells ``observed`` (the graph leaves
    out filled gaps, and a region dark for most of its weeks would otherwise weigh in at many
    times its size)."""
    mean = (np.where(observed[:, :, None], scaled, 0.0).sum(axis=1)
            / np.maximum(observed.sum(axis=1), 1)[:, None])  # [R,C]
    return scaled / np.where(mean > 0, mean, 1.0)[:, None, :]


def bought_nationally(scaled: np.ndarray, observed: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """``[C]``: :func:`national_channels` of region-scaled activity ``[R,T,C]`` (none with
    fewer than 3 regions, where there is no cross-region mean to remove)."""
    if scaled.shape[0] < 3:
        return np.zeros(scaled.shape[2], dtype=bool)
    act, _, full = _prepare_both(_relative_to_cells(scaled, observed), observed, phase, cycle_test=True)
    assert full is not None
    return national_channels(act, full, observed)


NATIONAL_INNOVATION = 0.4  # share of a national plan its own past weeks leave unexplained, below which it is smooth


def national_innovation(series: np.ndarray, weeks: np.ndarray, lags: int) -> np.ndarray:
    """``[C]``: the share of each channel's national series ``[T,C]`` (over the ``weeks`` ``[T]``
    observed) that a regression on its own past ``lags`` weeks leaves unexplained. A plan of
    flights or week-to-week buys keeps much of it (simulated flighted TV and radio 0.53-0.60, TV
    and radio on or off in runs 0.71-0.88; the MMM panel's national channels 0.09-0.89); a smooth
    cycle little (the package's simulator's always-on plans, a budget season times a cycle of
    8-30 weeks, 0.001-0.29: a few kinks where the slow terms' knots cut the cycle), and two
    smooth cycles correlate by coincidence over a few years of weeks, so such a channel's edges
    cannot be learned. The bound, 0.4, sits between the two groups."""
    T, C = series.shape
    ok = weeks[lags:].copy()
    for k in range(1, lags + 1):
        ok &= weeks[lags - k : T - k]
    out = np.zeros(C)
    if ok.sum() <= lags + 2:
        return out
    for c in range(C):
        y = series[lags:, c][ok]
        X = np.column_stack([series[lags - k : T - k, c][ok] for k in range(1, lags + 1)] + [np.ones(len(y))])
        coef, *_ = np.linalg.lstsq(X, y, rcond=None)
        v = float(y.var())
        out[c] = float((y - X @ coef).var()) / v if v > 1e-300 else 0.0
    return out


def _national_series(full: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each week's mean over the regions observing it of ``full`` ``[R,T,C]``: ``[1,T,C]``, and
    the weeks some region observes ``[1,T]``."""
    count = observed.sum(axis=0)  # [T]
    series = np.where(observed[:, :, None], full, 0.0).sum(axis=0) / np.maximum(count, 1)[:, None]
    return series[None], (count > 0)[None]


DIRECTION_SETTLED = 0.95  # direction support at which the non-Gaussian orientation is taken as settled
TIE_BREAK_MAX = 8  # unsettled same-week edges whose directions are searched jointly
CV_SPREAD_MAX = 1.25  # largest / smallest implied exogenous CV under which equal CVs are plausible
MIN_DOF = 50  # residual degrees of freedom each channel's equation needs before edges are learned
DARK_LEVEL = 0.02  # activity under this share of its region's mean counts as dark
DARK_SHARE = 0.1  # share of a channel's active cells in which its candidate parent must be dark
DARK_BREACH = 0.01  # share of the parent's active cells in which its child may be dark
DARK_SHIFT = 0.5  # the child's shift with the parent's dark weeks, as a share of what its slope implies
DARK_T = 3.0  # t value that shift needs
DARK_MIN_CELLS = 30  # cells of each kind (parent dark, parent active) the rule needs


def _slope(x: np.ndarray, y: np.ndarray) -> float | None:
    """Least-squares slope of ``y`` on ``x`` (with an intercept); None where ``x`` does not vary."""
    var = float(x.var())
    if var <= 1e-12:
        return None
    return float(np.mean((x - x.mean()) * (y - y.mean()))) / var


def dark_weeks_settle(raw: np.ndarray, Y: np.ndarray, a: int, b: int) -> bool:
    """Whether the dark weeks settle the same-week edge ``a -> b``.

    Under the structural model each channel's activity is its exogenous part (never negative)
    plus what its parents induce, so a child ``b`` of ``a`` is active whenever ``a`` is: weeks
    in which ``a`` is dark while ``b`` runs say nothing against ``a -> b``, but rule out
    ``b -> a`` (``a`` would carry ``b``'s induced part). The pattern alone also fits ``b``
    lifting a flighted ``a`` in proportion (a child dark whenever its own exogenous part is),
    so the edge is settled only where ``b`` also moves with ``a``'s dark weeks as ``a -> b``
    implies: ``b``'s mean (``Y``: within-region, de-trended activity rows ``[N,C]``) differs
    between ``a``'s active and dark weeks by at least ``DARK_SHIFT`` of what its slope on ``a``
    over the active weeks predicts, with ``|t| >= DARK_T``. ``raw`` ``[N,C]``: the same rows'
    activity over each region's mean (darkness is read there)."""
    a_on, b_on = raw[:, a] > DARK_LEVEL, raw[:, b] > DARK_LEVEL
    off = ~a_on & b_on  # a dark while b runs
    n_on, n_off = int(a_on.sum()), int(off.sum())
    if n_off < max(DARK_SHARE * b_on.sum(), DARK_MIN_CELLS) or n_on < DARK_MIN_CELLS:
        return False
    if (a_on & ~b_on).sum() > DARK_BREACH * n_on:
        return False
    slope = _slope(Y[a_on, a], Y[a_on, b])
    if slope is None:
        return False
    ya, yb = Y[:, a], Y[:, b]
    yb_on = yb[a_on]
    implied = slope * float(ya[a_on].mean() - ya[off].mean())
    shift = float(yb_on.mean() - yb[off].mean())
    se = float(np.sqrt(yb_on.var() / n_on + yb[off].var() / n_off))
    return implied > 0 and se > 0 and shift / se >= DARK_T and shift >= DARK_SHIFT * implied


def _without_lagged_parents(Xs: np.ndarray, Ys: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Each channel's activity ``Ys`` ``[N,C]`` less its least-squares fit on the lagged activity
    (``Xs`` ``[N, C(P+1)]``, lag-major) of the other channels ``support`` ``[P+1,C,C]`` links to
    it at lags 1..P; unchanged where none is."""
    C = Ys.shape[1]
    out = Ys.copy()
    for j in range(C):
        cols = [lag * C + k for lag in range(1, support.shape[0]) for k in range(C) if k != j and support[lag, k, j]]
        if cols:
            out[:, j] = Ys[:, j] - Xs[:, cols] @ np.linalg.lstsq(Xs[:, cols], Ys[:, j], rcond=None)[0]
    return out


def _dark_weeks(W0: np.ndarray, raw: np.ndarray, Y: np.ndarray, free: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Same-week edges of ``W0`` ``[C,C]`` whose direction their dark weeks settle
    (:func:`dark_weeks_settle`), turned where they run the other way and the turns leave the
    graph acyclic (tried again after other turns, which can open the way); ``free`` ``[C,C]``:
    pairs whose direction is not given. Applied after the other orientation rules: the pattern
    is a constraint of the structural model, which the non-Gaussian score (a child lifted in
    proportion reads as the cause) and the equal-CV and log rules (a flighted parent's exogenous
    part varies far more than an always-on child's) can contradict. Returns the graph and the
    settled edges (as they run in it)."""
    W = W0.copy()
    want: list[tuple[int, int]] = []
    for i, j in zip(*np.nonzero(W0), strict=True):
        i, j = int(i), int(j)
        if not (free[i, j] and free[j, i]):
            continue
        if dark_weeks_settle(raw, Y, i, j):
            want.append((i, j))
        elif dark_weeks_settle(raw, Y, j, i):
            want.append((j, i))
    pending = [(i, j) for i, j in want if W[i, j] == 0]
    while pending:
        left = []
        for i, j in pending:
            turned = W.copy()
            turned[i, j], turned[j, i] = W[j, i], 0.0
            if topological_order(turned) is not None:
                W = turned
            else:
                left.append((i, j))
        if len(left) == len(pending):
            break
        pending = left
    return W, [(i, j) for i, j in want if W[i, j] != 0]


DARK_ADDED = 1.25  # a child's residual variance in its parent's active weeks over its dark weeks, at most


def added_part(raw: np.ndarray, Y: np.ndarray, p: int, c: int) -> bool:
    """Whether parent ``p`` adds to child ``c`` rather than lifting it in proportion: the child's
    variance left by its slope on ``p`` in ``p``'s active weeks (``raw`` over ``DARK_LEVEL``) is at
    most ``DARK_ADDED`` times its variance in ``p``'s dark weeks (``Y``: prepared rows ``[N,C]``).
    A lift multiplies the child's own movements in the active weeks (simulated: 1.8-2.2 times;
    added parts 0.5-0.75)."""
    on = raw[:, p] > DARK_LEVEL
    if on.sum() < DARK_MIN_CELLS or (~on).sum() < DARK_MIN_CELLS:
        return False
    yp, yc = Y[on, p], Y[on, c]
    slope = _slope(yp, yc)
    return slope is not None and float((yc - slope * yp).var()) <= DARK_ADDED * float(Y[~on, c].var())


def _time_order(support0: np.ndarray, lagged: np.ndarray, open_: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Same-week support ``support0`` ``[C,C]`` (bool) with each ``open_`` edge ``i -> j`` turned
    to ``j -> i`` where the same pair has a lagged edge ``j -> i`` (``lagged`` ``[L,C,C]``: edges
    at lags 1..L) and none ``i -> j``, and the turn keeps the same-week graph acyclic; and the
    turned pairs, as they now run.

    A parent whose influence reaches its child over several weeks (a lag kernel: searches
    that follow a TV spot for a month) shows the pair's direction by time order in its
    lagged weeks, while its same-week part may be too small for the non-Gaussian score to
    orient: with kernels over 3-6 weeks whose same-week weight is 0.2-0.25, the pair score
    left such edges near a coin flip (support 0.55-0.64) and picked the wrong way beside
    right lagged edges (``benchmarks/kernel_simulator.py --graph-only --seeds 0-23``: 5 of 24
    panels with ``--kernel delayed``, 1 with ``long``; none with this rule). Only edges no other rule
    settled are turned: a settled score, dark weeks, the equal-CV rule and given edges keep
    their direction, and a pair with lagged edges both ways says nothing.
    """
    out = support0.copy()
    later: np.ndarray = np.any(lagged, axis=0)  # [C,C] parent -> child at some lag
    turned: list[tuple[int, int]] = []
    for i, j in zip(*np.nonzero(open_ & out), strict=True):
        if not (later[j, i] and not later[i, j]):
            continue
        out[i, j], out[j, i] = False, True
        if topological_order(out.astype(float)) is None:
            out[i, j], out[j, i] = True, False
            continue
        turned.append((int(j), int(i)))
    return out, turned


def _rescore_without(
    Ys: np.ndarray, group: np.ndarray, W: np.ndarray, settled: Sequence[tuple[int, int]], free: np.ndarray,
    raw: np.ndarray, Y: np.ndarray, regional: bool = True,
) -> dict[tuple[int, int], float]:
    """Direction support ``{(i, j): s, (j, i): 1 - s}`` of the same-week edges of ``W`` ``[C,C]``
    (``free`` pairs, not ``settled``) between channels with parents the dark weeks ``settled``
    that add to them (:func:`added_part`; ``raw``, ``Y``: the rows' activity over each region's
    mean and prepared): the pair score (:class:`_PairMoments`) on both channels' activity ``Ys``
    ``[N,C]`` less its pooled least-squares fit on those parents' (the pairwise score assumes no
    common cause, and a flighted parent of both would be one; a lift in proportion leaves its
    product in the residuals, and the log rule decides those)."""
    parents: dict[int, set[int]] = {}
    for p, c in settled:
        if added_part(raw, Y, p, c):
            parents.setdefault(c, set()).add(p)
    out: dict[tuple[int, int], float] = {}
    for i, j in zip(*np.nonzero(W), strict=True):
        i, j = int(i), int(j)
        if (i, j) in settled or not free[i, j]:
            continue
        P = sorted((parents.get(i, set()) | parents.get(j, set())) - {i, j})
        if not P:
            continue
        Z = Ys[:, [i, j]] - Ys[:, P] @ np.linalg.lstsq(Ys[:, P], Ys[:, [i, j]], rcond=None)[0]
        pm = _PairMoments(Z, group, regional)
        share = pm.support(0, 1) if pm.score(0, 1) >= 0 else 1.0 - pm.support(1, 0)
        out[i, j], out[j, i] = share, 1.0 - share
    return out




def _residual_dof(observed: np.ndarray, lags: int, n_channels: int) -> int:
    """Rows with ``lags`` observed lags, less the columns of one channel's equation."""
    T = observed.shape[1]
    if T <= lags:
        return -n_channels * (lags + 1)
    ok = np.ones((observed.shape[0], T - lags), dtype=bool)
    for lag in range(lags + 1):
        ok &= observed[:, lags - lag : T - lag]
    return int(ok.sum()) - n_channels * (lags + 1)


def _design_rows(observed: np.ndarray, max_lag: int) -> np.ndarray:
    """``[R,T-max_lag]``: the cells from week ``max_lag`` on whose lags are all observed (the rows of
    :func:`_design`, in its order)."""
    T = observed.shape[1]
    ok = observed[:, max_lag:].copy()
    for lag in range(1, max_lag + 1):
        ok &= observed[:, max_lag - lag : T - lag]
    return ok


def _design(
    act: np.ndarray, observed: np.ndarray, max_lag: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Targets ``[N,C]``, lagged design ``[N, C*(L+1)]`` and region of each row ``[N]``,
    over cells whose lags are observed."""
    T = act.shape[1]
    L = max_lag
    ok = _design_rows(observed, L)  # [R,T-L]
    cols = [act[:, L - lag : T - lag] for lag in range(L + 1)]  # [R,T-L,C] each
    Y = act[:, L:][ok]  # [N,C]
    X = np.concatenate(cols, axis=-1)[ok]  # [N,C*(L+1)]
    return Y, X, np.nonzero(ok)[0]


def notears(
    X: np.ndarray,
    Y: np.ndarray,
    max_lag: int,
    lambda1: float,
    allowed: np.ndarray,
    max_iter: int = 100,
    h_tol: float = 1e-8,
    rho_max: float = 1e16,
    signed: np.ndarray | None = None,
    start: np.ndarray | None = None,
) -> np.ndarray:
    """NOTEARS with lags: weights ``[L+1, C, C]`` on standardised data.

    ``X`` is ``[N, C*(L+1)]`` (lag 0 first), ``Y`` is ``[N, C]``; ``allowed``
    ``[L+1, C, C]`` masks the admissible edges (the others are not optimised and stay 0).
    ``signed`` ``[L+1, C, C]`` marks the admissible entries that may be
    negative (default: all); the others are bounded below by 0. ``start``
    ``[L+1, C, C]``: weights to start from (e.g. an earlier run's), clipped to
    the bounds; default 0.
    """
    N, C = Y.shape
    P = X.shape[1]
    XtX, XtY, YtY = X.T @ X / N, X.T @ Y / N, float((Y * Y).sum()) / N  # [P,P], [P,C]
    mask = allowed.reshape(P, C).reshape(-1)
    neg = mask & (signed.reshape(-1) if signed is not None else True)
    # Only admissible entries are optimised: the positive parts where allowed, the negative parts
    # where also signed (each >= 0); the rest stay 0. Pinning them with (0, 0) bounds instead
    # gives the same minimiser at up to twice the cost (lags beyond max_lag hold persistence only).
    pos_idx, neg_idx = np.flatnonzero(mask), np.flatnonzero(neg)
    n_pos = len(pos_idx)

    def unpack(w: np.ndarray) -> np.ndarray:
        flat = np.zeros(P * C)
        flat[pos_idx] = w[:n_pos]
        flat[neg_idx] -= w[n_pos:]
        return flat.reshape(P, C)

    def objective(w: np.ndarray, rho: float, alpha: float) -> tuple[float, np.ndarray]:
        Wf = unpack(w)  # [P,C]
        loss = 0.5 * (YtY - 2 * np.sum(Wf * XtY) + np.sum(Wf * (XtX @ Wf)))
        g_loss = XtX @ Wf - XtY  # [P,C]
        h, g_h = acyclicity(Wf[:C])
        obj = loss + 0.5 * rho * h * h + alpha * h + lambda1 * w.sum()
        g = g_loss.copy()
        g[:C] += (rho * h + alpha) * g_h
        flat = g.reshape(-1)
        return obj, np.concatenate([flat[pos_idx] + lambda1, -flat[neg_idx] + lambda1])

    bounds = Bounds(np.zeros(n_pos + len(neg_idx)), np.full(n_pos + len(neg_idx), np.inf))
    w = np.zeros(n_pos + len(neg_idx))
    if start is not None:
        w0 = np.asarray(start, dtype=float).reshape(-1)
        w = np.concatenate([np.maximum(w0[pos_idx], 0.0), np.maximum(-w0[neg_idx], 0.0)])
    rho, alpha, h = 1.0, 0.0, np.inf
    for _ in range(max_iter):
        while rho < rho_max:
            sol = minimize(objective, w, args=(rho, alpha), jac=True, method="L-BFGS-B", bounds=bounds)
            h_new = acyclicity(unpack(sol.x)[:C])[0]
            if h_new > 0.25 * h:
                rho *= 10
            else:
                break
        w, h = sol.x, h_new
        alpha += rho * h
        if h <= h_tol or rho >= rho_max:
            break
    return unpack(w).reshape(max_lag + 1, C, C)


def _notears_signed(
    Xs: np.ndarray, Ys: np.ndarray, P: int, lambda1: float, allowed: np.ndarray, signed: np.ndarray,
    threshold: float,
) -> tuple[np.ndarray, bool]:
    """:func:`notears` with every entry free, learned again with the entries outside ``signed``
    bounded at 0 when the free run gives one of them below ``-threshold``; the two joined, and
    whether the bounded run was needed."""
    W = notears(Xs, Ys, P, lambda1, allowed)
    bounded = bool(((W < -threshold) & allowed & ~signed).any())
    if bounded:
        # Learned again with the sign constraint, and the two supports joined: the constrained
        # run finds positive edges that negative ones stood in for, while the L1 and
        # acyclicity terms can leave a true positive edge negative in the free run (-0.06
        # where the refit gives 0.23) and out of the constrained one. The unpenalised refit
        # decides the sign and drops every edge left negative.
        positive = notears(Xs, Ys, P, lambda1, allowed, signed=signed)
        W = np.where(np.abs(W) > threshold, W, positive)
    return W, bounded


def _standardise(v: np.ndarray) -> np.ndarray:
    sd = float(v.std())
    return (v - v.mean()) / sd if sd > 0 else v - v.mean()


def _standardise_within(v: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``v`` standardised within each group (its own mean and standard deviation; 0 where a
    group does not vary)."""
    n = np.maximum(np.bincount(groups), 1).astype(float)
    d = v - (np.bincount(groups, weights=v) / n)[groups]
    sd = np.sqrt(np.bincount(groups, weights=d * d) / n)[groups]
    return np.divide(d, sd, out=np.zeros_like(d), where=sd > 0)


def _moment_rows(x: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """Per-row terms ``[N, 8]`` of the negentropies behind :func:`orientation_score`:
    ``log cosh u`` and ``u exp(-u^2/2)`` for u = x, y, the residual of x -> y and of y -> x.

    With ``groups`` (regions) each variable is standardised, and each regression run, within
    its group: a region's own scales and its own coefficient of one channel on the other."""
    if groups is None:
        x, y = _standardise(x), _standardise(y)
        rho: float | np.ndarray = float(np.mean(x * y))
        std = _standardise
    else:
        x, y = _standardise_within(x, groups), _standardise_within(y, groups)
        n = np.maximum(np.bincount(groups), 1).astype(float)
        rho = (np.bincount(groups, weights=x * y) / n)[groups]

        def std(v: np.ndarray) -> np.ndarray:
            return _standardise_within(v, groups)
    cols = []
    for u in (x, y, std(y - rho * x), std(x - rho * y)):
        cols += [np.log(np.cosh(u)), u * np.exp(-(u**2) / 2)]
    return np.column_stack(cols)


def _score_from_moments(m: np.ndarray) -> np.ndarray:
    """Likelihood-ratio score from mean moments ``[..., 8]`` (see :func:`_moment_rows`).

    Negentropy approximation (Hyvarinen, 1998) of a standardised sample:
    ``k1 (E[log cosh u] - gamma)^2 + k2 (E[u exp(-u^2/2)])^2``, 0 for a Gaussian and
    positive for sub- and super-Gaussian alike.
    """
    k1, k2, gamma = 79.047, 7.4129, 0.37457
    gap = k1 * (m[..., 0::2] - gamma) ** 2 + k2 * m[..., 1::2] ** 2  # [...,4]: x, y, r_y, r_x
    return gap[..., 0] + gap[..., 2] - gap[..., 1] - gap[..., 3]


def orientation_score(x: np.ndarray, y: np.ndarray) -> float:
    """Pairwise likelihood ratio of x -> y over y -> x (Hyvarinen & Smith, 2013); > 0 suggests x -> y.

    Under a linear model with independent non-Gaussian disturbances, the true
    direction leaves the cause and the effect's residual least Gaussian. The
    log-likelihood ratio is approximated with negentropies, so it holds for
    skewed, heavy-tailed (typical of media) and light-tailed activity alike.
    """
    return float(_score_from_moments(_moment_rows(x, y).mean(axis=0)))


@lru_cache(maxsize=8)
def _region_draws(G: int, n_boot: int, seed: int) -> np.ndarray:
    """How often each of ``G`` regions is drawn in each of ``n_boot`` resamples ``[B,G]`` (the same
    for every edge of a panel, so drawn once; read-only)."""
    draws = np.random.default_rng(seed).multinomial(G, np.full(G, 1.0 / G), size=n_boot).astype(float)
    draws.flags.writeable = False
    return draws


def direction_support(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, n_boot: int = 200, seed: int = 0
) -> float:
    """Share of resamples of ``groups`` (regions) in which the score still says x -> y.

    Regions are resampled with replacement; moments are summed per region
    once, so each resample costs one small matrix product.
    """
    rows = _moment_rows(x, y)  # [N,8]
    return _support_from_sums(_region_sums(rows, groups), groups, n_boot, seed)


def _region_sums(rows: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Moment rows ``[N,8]`` summed per region ``[G,8]``."""
    G = int(groups.max()) + 1
    return np.column_stack([np.bincount(groups, weights=col, minlength=G) for col in rows.T])


def _support_from_sums(sums: np.ndarray, groups: np.ndarray, n_boot: int = 200, seed: int = 0) -> float:
    """:func:`direction_support` from the pair's moments summed per region ``[G,8]``."""
    G = sums.shape[0]
    counts = np.bincount(groups, minlength=G).astype(float)  # [G]
    draws = _region_draws(G, n_boot, seed)  # [B,G]
    m = (draws @ sums) / np.maximum(draws @ counts, 1.0)[:, None]  # [B,8]
    return float(np.mean(_score_from_moments(m) > 0))


class _PairMoments:
    """The mean moments (:func:`_moment_rows`) of channel pairs of ``Z`` ``[N,C]`` and their sums
    per region, computed once per pair: the orientation and its region bootstrap read the same
    moments. Only ``[G+1, 8]`` numbers are kept per pair, never the rows.

    The direction of a pair is the pooled score's (:func:`orientation_score` on ``Z`` as a
    whole) unless the score on each region's own standardised activity
    (:func:`_moment_rows` with the regions) is settled the other way (its region-bootstrap
    support at least ``DIRECTION_SETTLED``). Regions differ in their channel mix: where one
    region's TV drives a larger part of its search than another's, the pooled child is a
    mixture of scales, heavier-tailed than its parent, and the pooled score reads it as the
    cause (docs/graph.md, session 26). The region-standardised score does not replace the
    pooled one: its bootstrap is tighter, and on Gaussian activity it settled directions that
    the equal-CV rule gets right."""

    SWAP = [2, 3, 0, 1, 6, 7, 4, 5]  # the moments of (y, x) from those of (x, y)

    def __init__(self, Z: np.ndarray, groups: np.ndarray, regional: bool = True) -> None:
        self.Z, self.groups = Z, groups
        # with fewer than 3 regions a region bootstrap has too few distinct resamples to settle
        # anything, and the pooled activity still holds each week's national pattern
        self.use_regional = regional and len(np.unique(groups)) >= 3
        self.cache: dict[tuple[int, int, bool], tuple[np.ndarray, np.ndarray]] = {}  # a, b, regional
        self.regional_cache: dict[tuple[int, int], tuple[float, float]] = {}  # i -> j: score, support

    def _moments(self, i: int, j: int, regional: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Mean moments ``[8]`` and their sums per region ``[G,8]`` of ``i`` -> ``j``, on the pooled
        or (``regional``) the region-standardised activity."""
        a, b = min(i, j), max(i, j)
        if (a, b, regional) not in self.cache:
            rows = _moment_rows(self.Z[:, a], self.Z[:, b], self.groups if regional else None)
            self.cache[a, b, regional] = rows.mean(axis=0), _region_sums(rows, self.groups)
        mean, sums = self.cache[a, b, regional]
        return (mean, sums) if i < j else (mean[self.SWAP], sums[:, self.SWAP])

    def pooled_score(self, i: int, j: int) -> float:
        """:func:`orientation_score` of channel ``i`` -> ``j``."""
        return float(_score_from_moments(self._moments(i, j)[0]))

    def pooled_support(self, i: int, j: int) -> float:
        """:func:`direction_support` of channel ``i`` -> ``j`` over the regions ``groups``."""
        return _support_from_sums(self._moments(i, j)[1], self.groups)

    def regional(self, i: int, j: int) -> tuple[float, float]:
        """Score and region-bootstrap support of ``i`` -> ``j`` on region-standardised activity
        (kept: ``score`` and ``support`` both ask whether it overrides)."""
        if (i, j) not in self.regional_cache:
            mean, sums = self._moments(i, j, regional=True)
            self.regional_cache[i, j] = float(_score_from_moments(mean)), _support_from_sums(sums, self.groups)
        return self.regional_cache[i, j]

    def _overridden(self, i: int, j: int) -> bool:
        """Whether the region-standardised score is settled against the pooled one's direction."""
        if not self.use_regional:
            return False
        forward = self.pooled_score(i, j) >= 0
        support = self.regional(i, j)[1]
        return support <= 1.0 - DIRECTION_SETTLED if forward else support >= DIRECTION_SETTLED

    def score(self, i: int, j: int) -> float:
        """Orientation score of ``i`` -> ``j`` (> 0: i -> j): the pooled one, or the
        region-standardised one where that overrides it (see the class)."""
        if not self._overridden(i, j):
            return self.pooled_score(i, j)
        magnitude = abs(self.regional(i, j)[0])
        return -magnitude if self.pooled_score(i, j) >= 0 else magnitude

    def support(self, i: int, j: int) -> float:
        """Region-bootstrap support of ``i`` -> ``j`` of the score that sets the direction."""
        return self.regional(i, j)[1] if self._overridden(i, j) else self.pooled_support(i, j)


def _orient(W0: np.ndarray, pairs: _PairMoments, allowed: np.ndarray, required: np.ndarray) -> np.ndarray:
    """Re-orient contemporaneous edges by :func:`orientation_score` where both directions are allowed."""
    W = W0.copy()
    C = W.shape[0]
    for i in range(C):
        for j in range(i + 1, C):
            if W[i, j] == 0 and W[j, i] == 0:
                continue
            if required[i, j] or required[j, i] or not (allowed[i, j] and allowed[j, i]):
                if W[i, j] != 0 and not allowed[i, j]:
                    W[j, i], W[i, j] = W[i, j], 0.0
                elif W[j, i] != 0 and not allowed[j, i]:
                    W[i, j], W[j, i] = W[j, i], 0.0
                continue
            w = W[i, j] if W[i, j] != 0 else W[j, i]
            if pairs.score(i, j) >= 0:
                W[i, j], W[j, i] = w, 0.0
            else:
                W[i, j], W[j, i] = 0.0, w
    return W


def _exogenous(Y: np.ndarray, parents: dict[int, list[int]]) -> dict[int, tuple[float, float]]:
    """Each node's exogenous (residual standard deviation, mean) under ``parents``; see
    :func:`implied_cvs`."""
    N = len(Y)
    mean, cross = Y.mean(axis=0), Y.T @ Y / N  # [C], [C,C]: one pass over the rows for all nodes
    out = {}
    for n, pa in parents.items():
        m1, m2, share = mean[n], cross[n, n], 1.0  # residual's mean and mean square
        if pa:
            beta = np.linalg.pinv(cross[np.ix_(pa, pa)]) @ cross[pa, n]
            m1 -= float(mean[pa] @ beta)
            m2 -= float(2 * beta @ cross[pa, n] - beta @ cross[np.ix_(pa, pa)] @ beta)
            share = 1.0 - float(beta.sum())
        out[n] = (float(np.sqrt(max(m2 - m1 * m1, 0.0))), share)
    return out


def implied_cvs(Y: np.ndarray, parents: dict[int, list[int]]) -> dict[int, float]:
    """Each node's exogenous coefficient of variation under ``parents`` (node -> its same-week
    parents), or NaN where its exogenous mean would not be positive (at most 0.05).

    ``Y`` is within-region activity in region-scaled units (each channel's
    mean 1 before the preparation), so a node's exogenous part has mean
    ``1 - sum(beta)`` over its parents' least-squares coefficients and its CV
    is the residual standard deviation over that mean.
    """
    return {n: sd / share if share > 0.05 else np.nan for n, (sd, share) in _exogenous(Y, parents).items()}


def equal_cv_loglik(Y: np.ndarray, parents: dict[int, list[int]]) -> float:
    """Per-row Gaussian log-likelihood of ``parents`` (node -> its same-week parents) when every
    node's exogenous part has the same coefficient of variation (:func:`implied_cvs`): a node's
    exogenous part has standard deviation ``cv (1 - sum(beta))``. Minus infinity when a node's
    exogenous mean would not be positive.
    """
    ex = _exogenous(Y, parents)
    if min(share for _, share in ex.values()) <= 0.05:
        return -np.inf
    cv2 = [(sd / share) ** 2 for sd, share in ex.values()]
    logs = sum(np.log(share) for _, share in ex.values())
    # sum over nodes of -log(cv share) - resid^2 / (2 cv^2 share^2), at the common cv^2 that
    # maximises it (the mean of the nodes' cv^2), less the constant K / 2
    return float(-len(cv2) / 2 * np.log(np.mean(cv2)) - logs)


def log_residual_sds(Z: np.ndarray, parents: dict[int, list[int]]) -> dict[int, float]:
    """Each node's residual standard deviation in log activity ``Z`` ``[N,K]`` (within-region,
    de-trended logs) given its same-week ``parents`` (node -> parents): under a multiplicative
    structural model the log of a node's exogenous part, whose standard deviation is about its
    coefficient of variation (the residual standard deviation of :func:`_exogenous`)."""
    return {n: sd for n, (sd, _) in _exogenous(Z, parents).items()}


def equal_log_variance_loglik(Z: np.ndarray, parents: dict[int, list[int]]) -> float:
    """Per-row Gaussian log-likelihood of ``parents`` in log activity ``Z`` when every node's
    exogenous part has the same variance there (:func:`log_residual_sds`): the equal-CV
    assumption of :func:`equal_cv_loglik` for channels that lift each other in proportion
    (a child's activity its exogenous part times a factor of its parents') instead of adding
    to each other. Less the constant ``K / 2``."""
    sds = np.array(list(log_residual_sds(Z, parents).values()))
    return float(-len(sds) / 2 * np.log(np.mean(sds**2)))


LogRows = Callable[[np.ndarray], "tuple[np.ndarray, int] | None"]  # rows and absorbed dof


def _tie_break(
    W0: np.ndarray, Y: np.ndarray, ambiguous: list[tuple[int, int]], log_rows: LogRows | None = None,
    free: Sequence[tuple[int, int]] = (), allowed0: np.ndarray | None = None, min_t: float = 4.0,
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Re-decide the direction of ``ambiguous`` same-week edges by :func:`equal_cv_loglik`,
    one linked group of channels at a time (:func:`_orient_group`; ``free``: every same-week
    edge whose direction is not constrained, for its log-activity step); returns the graph and
    the edges whose direction the rule set."""
    W = W0.copy()
    _, label = connected_components((W0 != 0) | (W0.T != 0), directed=False)
    applied: list[tuple[int, int]] = []
    for group in sorted({int(label[i]) for i, _ in ambiguous}):
        edges = [e for e in ambiguous if label[e[0]] == group]
        settled = [e for e in free if label[e[0]] == group and e not in edges]
        W, done = _orient_group(W, Y, edges, np.flatnonzero(label == group), log_rows, settled, allowed0, min_t)
        applied += done
    return W, applied


def _orient_group(
    W0: np.ndarray, Y: np.ndarray, ambiguous: list[tuple[int, int]], members: np.ndarray,
    log_rows: LogRows | None = None, settled: Sequence[tuple[int, int]] = (),
    allowed0: np.ndarray | None = None, min_t: float = 4.0,
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Directions of the unsettled edges of one linked group of channels (``members``).

    Every combination of their directions that leaves the group acyclic is
    scored (the rest of the graph as it stands; other groups' cycles are
    broken later, see :func:`_break_cycles`) when there are at most ``TIE_BREAK_MAX`` of them, else
    one edge at a time, most settled first. The best combination is kept if
    the exogenous CVs it implies (:func:`implied_cvs`) are alike, the largest
    within ``CV_SPREAD_MAX`` (1.25) times the smallest.

    Where they are not, the channels may lift each other in proportion (a
    child's activity its exogenous part times a factor of its parents'): the
    product makes a child the more skewed channel, which the non-Gaussian
    score reads as a cause, so the score's directions are no evidence there.
    The same search then runs on log activity (``log_rows(members)``: the
    group's within-region, de-trended log activity ``[N, len(members)]`` with the degrees of
    freedom its preparation took, or None where the members are active together in under a quarter of the cells) by
    :func:`equal_log_variance_loglik`, over the unsettled edges, the
    ``settled`` ones (the group's other unconstrained same-week edges) and the
    pairs the levels left unlinked that the logs link (:func:`_log_links`,
    ``|t| >= min_t``, both directions ``allowed0``), unless one of the edges is
    negative (substitution, not a lift), and its best is kept if the log
    residual standard deviations are alike by the same bound; else the data
    contradict the assumption and ``W0`` is returned.
    Returns the graph and the edges whose direction the rule set.
    """
    W, ok = _search_directions(W0, ambiguous, members, lambda pa: equal_cv_loglik(Y, pa),
                               lambda pa: implied_cvs(Y, pa))
    if ok:
        return W, list(ambiguous)
    edges = [*ambiguous, *settled]
    if log_rows is None or any(W0[i, j] + W0[j, i] < 0 for i, j in edges):
        return W, []  # a negative edge is substitution, not a lift
    prepared = log_rows(members)
    if prepared is None:
        return W, []
    Z, absorbed = prepared
    local = {int(m): k for k, m in enumerate(members)}  # channel -> column of Z

    def to_local(parents: dict[int, list[int]]) -> dict[int, list[int]]:
        return {local[n]: [local[k] for k in pa] for n, pa in parents.items()}

    W1 = W0.copy()
    if allowed0 is not None:
        for i, j, w in _log_links(Z, W0, members, allowed0, min_t, absorbed):
            W1[i, j] = w
            edges.append((i, j))
    W, ok = _search_directions(W1, edges, members, lambda pa: equal_log_variance_loglik(Z, to_local(pa)),
                               lambda pa: log_residual_sds(Z, to_local(pa)))
    return (W, edges) if ok else (W0.copy(), [])


def _log_links(
    Z: np.ndarray, W0: np.ndarray, members: np.ndarray, allowed0: np.ndarray, min_t: float,
    absorbed: int = 0,
) -> list[tuple[int, int, float]]:
    """Same-week pairs of a group that the levels left unlinked and its log activity ``Z`` links:
    ``(i, j, coefficient)`` where the log regression of ``j`` on ``i`` and ``j``'s parents in the
    group gives ``i`` a positive coefficient with ``|t| >= min_t`` (a lift of a child that is
    often dark shows in its active weeks, which the levels dilute)."""
    out = []
    local = {int(m): k for k, m in enumerate(members)}
    for a, i in enumerate(members):
        for j in members[a + 1 :]:
            i, j = int(i), int(j)
            if W0[i, j] or W0[j, i] or not (allowed0[i, j] and allowed0[j, i]):
                continue
            cols = [local[i]] + [local[int(k)] for k in np.flatnonzero(W0[:, j]) if int(k) in local]
            coef, t = _CrossProducts(Z[:, cols], Z[:, [local[j]]], absorbed).ols_t(range(len(cols)), 0)
            if coef[0] > 0 and t[0] >= min_t:
                out.append((i, j, float(coef[0])))
    return out


def _search_directions(
    W0: np.ndarray, ambiguous: list[tuple[int, int]], members: np.ndarray,
    loglik: Callable[[dict[int, list[int]]], float], spread: Callable[[dict[int, list[int]]], dict[int, float]],
) -> tuple[np.ndarray, bool]:
    """The search of :func:`_orient_group` under one likelihood (``loglik`` of node -> same-week
    parents) and its check (``spread``: each node's implied exogenous CV or log standard
    deviation, alike within ``CV_SPREAD_MAX``)."""
    W = W0.copy()
    weight = {(i, j): W0[i, j] if W0[i, j] != 0 else W0[j, i] for i, j in ambiguous}
    nodes = sorted({n for e in ambiguous for n in e})

    def parents() -> dict[int, list[int]]:
        return {n: [int(k) for k in np.flatnonzero(W[:, n])] for n in nodes}

    def score(flips: Sequence[bool]) -> float:
        for (i, j), f in zip(ambiguous, flips, strict=True):
            a, b = (j, i) if f else (i, j)
            W[a, b], W[b, a] = weight[(i, j)], 0.0
        if topological_order(W[np.ix_(members, members)]) is None:
            return -np.inf
        return loglik(parents())

    current = [W0[i, j] == 0 for i, j in ambiguous]  # True where the edge now runs j -> i
    if len(ambiguous) <= TIE_BREAK_MAX:
        combos = [[bool(b >> k & 1) for k in range(len(ambiguous))] for b in range(2 ** len(ambiguous))]
        fits = [score(c) for c in combos]
        best = combos[int(np.argmax(fits))] if np.isfinite(max(fits)) else current
    else:
        best = list(current)
        for k in range(len(ambiguous)):
            trial = [list(best), list(best)]
            trial[1][k] = not trial[1][k]
            fits = [score(t) for t in trial]
            if np.isfinite(max(fits)):
                best = trial[int(np.argmax(fits))]
    score(best)
    cv = np.array(list(spread(parents()).values()))
    if not np.isfinite(cv).all() or cv.max() > CV_SPREAD_MAX * cv.min():
        return W0.copy(), False  # the assumption does not hold here: keep the score's directions
    return W, True


class _CrossProducts:
    """``X'X``, ``X'Y`` and ``Y'Y`` of a design ``X`` ``[N,K]`` and targets ``Y`` ``[N,C]``, so
    that each of the many small regressions of the pruning loops costs a ``k x k`` solve, not a
    pass over the ``N`` rows. ``absorbed``: degrees of freedom the rows' preparation already
    took (:func:`absorbed_dof`), left out of the residual variance behind the t values."""

    def __init__(self, X: np.ndarray, Y: np.ndarray, absorbed: int = 0) -> None:
        self.n = len(Y) - absorbed
        self.xx, self.xy, self.yy = X.T @ X, X.T @ Y, (Y * Y).sum(axis=0)

    def ols_t(self, cols: Sequence[int] | Sequence[np.integer], j: int) -> tuple[np.ndarray, np.ndarray]:
        """Least-squares coefficients of target ``j`` on the design columns ``cols`` and their
        t values (the minimum-norm solution where the columns are collinear)."""
        idx = np.asarray(cols, dtype=int)
        G = self.xx[np.ix_(idx, idx)]
        b = self.xy[idx, j]
        inv = np.linalg.pinv(G)
        coef = inv @ b
        rss = max(float(self.yy[j] - 2 * coef @ b + coef @ G @ coef), 0.0)
        sigma2 = rss / max(self.n - len(cols), 1)
        return coef, coef / np.sqrt(np.maximum(sigma2 * np.diag(inv), 1e-300))


def _refit(
    X: np.ndarray, Y: np.ndarray, support: np.ndarray, keep: np.ndarray, min_t: float,
    signed: np.ndarray | None = None, absorbed: int = 0,
) -> np.ndarray:
    """Unpenalised least squares of each child on its parents: ``[L+1,C,C]``.

    Parents whose coefficient has ``|t| < min_t`` are dropped one at a time
    (weakest first) unless ``keep`` marks them (required edges, persistence).
    Where ``signed`` ``[L+1,C,C]`` is False, a negative coefficient is dropped
    first (most negative t first), whatever its t, except a lagged one whose parent
    also has a positive coefficient at an earlier lag: with the child's own past in the
    equation, a same-week edge ``w`` into a persistent child (own weight ``a``) shows a
    lagged term near ``-a w`` (the common factor of the child's persistence). That term
    stays in the regression, so the earlier lag's t is judged in the right equation, and
    comes out as 0. Dropped first, it had left the same-week t of national flight plans
    below ``min_t`` (random designs: 2 of 142 true edges; no other benchmark graph moved).
    """
    Lp1, C, _ = support.shape
    flat_support = support.reshape(Lp1 * C, C)
    flat_keep = keep.reshape(Lp1 * C, C)
    flat_signed = np.ones_like(flat_support) if signed is None else signed.reshape(Lp1 * C, C)
    W = np.zeros((Lp1 * C, C))
    cp = _CrossProducts(X, Y, absorbed)
    for j in range(C):
        parents = list(np.flatnonzero(flat_support[:, j]))
        while parents:
            coef, t = cp.ols_t(parents, j)
            lag, source = np.array(parents) // C, np.array(parents) % C
            free = [k for k in range(len(parents)) if not flat_keep[parents[k], j]]
            negative = [k for k in free if t[k] < 0 and not flat_signed[parents[k], j]]
            factor = {k for k in negative if lag[k] >= 1 and source[k] != j
                      and ((source == source[k]) & (lag < lag[k]) & (coef > 0)).any()}
            weak = sorted((k for k in negative if k not in factor), key=lambda k: t[k])
            weak += [k for k in np.argsort(np.abs(t))
                     if abs(t[k]) < min_t and k in free and k not in weak and k not in factor]
            if not weak:
                coef = np.array(coef)
                coef[list(factor)] = 0.0
                W[parents, j] = coef
                break
            parents.pop(int(weak[0]))
    return W.reshape(Lp1, C, C)


def _complete_lags(
    X: np.ndarray, Y: np.ndarray, W: np.ndarray, allowed: np.ndarray, keep: np.ndarray, L: int,
    lag_t: float, signed: np.ndarray, absorbed: int = 0,
) -> np.ndarray:
    """``W`` ``[P+1,C,C]`` with the learned pairs' other lags 1..``L`` added where their
    coefficient has ``|t| >= lag_t`` (refit with the entries of ``W`` and ``keep`` kept).

    The pairs are decided by :func:`_refit` at ``min_t``; a lag kernel spreads a pair's
    influence over weeks whose weights are each too weak for ``min_t`` (decay 0.5 gives lag 1
    half the same-week weight), and those weeks are part of the same edge.
    """
    C = W.shape[1]
    pair = (W[: L + 1] != 0).any(axis=0) & ~np.eye(C, dtype=bool)  # [C,C]
    if not pair.any():
        return W
    candidate = W != 0
    candidate[1 : L + 1] |= pair[None] & allowed[1 : L + 1]
    return _refit(X, Y, candidate, keep | (W != 0), lag_t, signed, absorbed)


def _kernel_weights(
    X: np.ndarray, Y: np.ndarray, W: np.ndarray, signed: np.ndarray, lag_t: float | None = None,
    absorbed: int = 0,
) -> np.ndarray:
    """Cross-channel weights ``[L+1,C,C]`` of the kept edges of ``W`` estimated again without
    the children's own past: each child on its parents' activity at the kept lags alone.

    With its own past in the equation, a child's lagged parent weights describe the parent's
    influence given the child's previous weeks, which already hold the parent's earlier
    influence: a same-week edge then shows lagged weights of the opposite sign to the child's
    own persistence (negative persistence, positive lagged weights), and a lag kernel shows
    only its part that the persistence does not carry. Interventions pass a change on through
    the cross-channel weights alone, so they need each lag's whole influence, which is what
    the regression on the parents alone estimates (the exogenous part of a child is
    independent of its parents). One entry at a time is dropped and the rest estimated again:
    first entries outside ``signed`` that come out negative, then, with ``lag_t``, lags with
    ``|t| < lag_t`` (never a pair's last one: the pair was decided before), weakest first.
    """
    Lp1, C, _ = W.shape
    out = np.zeros_like(W)
    flat = W.reshape(Lp1 * C, C)
    flat_signed = signed[:Lp1].reshape(Lp1 * C, C)
    cp = _CrossProducts(X[:, : Lp1 * C], Y, absorbed)
    for j in range(C):
        parents = [k for k in np.flatnonzero(flat[:, j]) if k % C != j]
        while parents:
            coef, t = cp.ols_t(parents, j)
            source = np.array(parents) % C
            bad = [k for k in range(len(parents)) if coef[k] < 0 and not flat_signed[parents[k], j]]
            if lag_t is not None:  # weak lags go, but never a pair's last one (the pair is decided)
                bad += [k for k in range(len(parents)) if abs(t[k]) < lag_t and (source == source[k]).sum() > 1]
            if not bad:
                out.reshape(Lp1 * C, C)[parents, j] = coef
                break
            parents.pop(min(bad, key=lambda k: (coef[k] >= 0, abs(t[k]))))
    return out


def learn_graph(
    scaled: np.ndarray,
    observed: np.ndarray,
    phase: np.ndarray,
    *,
    mode: str,
    max_lag: int,
    lambda1: float,
    threshold: float,
    forbidden: np.ndarray,
    required: np.ndarray,
    roots: tuple[int, ...],
    fixed: np.ndarray | None = None,
    min_t: float = 4.0,
    lag_min_t: float | None = None,
    own_lags: int = 0,
    cycle_test: bool = True,
    shared_driver: bool = True,
    equal_cv: bool = True,
    negative_edges: bool = False,
    national: bool = True,
    names: Sequence[str] | None = None,
    controls: np.ndarray | None = None,
    regional_orientation: bool = True,
    dark_weeks: bool = True,
    time_order: bool = True,
) -> ChannelGraph:
    """Learn (``mode="notears"``) or estimate (``"fixed"``) the channel graph.

    ``forbidden``/``required``/``fixed`` are ``[C,C]`` boolean masks over
    parent -> child at any lag. Kept edges whose refit coefficient has
    ``|t| < min_t`` are pruned; then a learned pair's other lags 1..``max_lag``
    are added where ``|t| >= lag_min_t`` (:func:`_complete_lags`; None: none
    added), and the kept edges' weights are estimated again from the parents'
    activity alone (:func:`_kernel_weights`), the weights interventions
    need. Each channel's own past up to
    ``max(max_lag, own_lags)`` weeks is always in its equation (persistence,
    never an edge), so that a channel's own dynamics cannot pass for an
    influence of another channel's lagged activity that tracks them.
    ``cycle_test`` runs :func:`regional_cycles` in the preparation;
    ``shared_driver`` learns a second graph without a driver every channel
    shares (:func:`remove_shared_driver`) and keeps the sparser. ``equal_cv``
    orients same-week edges the non-Gaussian score leaves unsettled by
    :func:`equal_cv_loglik`, or where the levels contradict it by
    :func:`equal_log_variance_loglik` on log activity (:func:`_orient_group`). Learned edges have positive weights unless
    ``negative_edges`` (a negative link between activities is budget
    substitution, not influence); required and fixed edges keep whichever sign
    the data give. Region-weeks dark in every channel are either chance (channels
    flighted on their own) or a switch all channels share (a region pausing its media), which
    links every pair alike; where there are any, the graph is learned with and without them and
    the sparser kept (leaving them out always would select on the outcome: weights of channels
    that are all flighted came out 18% low). Channels bought nationally
    (:func:`national_channels`) have nothing left in the regional activity: their edges are
    learned (``national``; required and fixed ones estimated there too, unless the national
    parent's plan is smooth) from the national series by :func:`_national_pass`, and the graph
    marks them (``ChannelGraph.national``). ``controls`` ``[R,T,K]``: the fit's controls, with
    the squares of continuous ones partialled out of the activity (:func:`_prepare_both`; None:
    none). ``regional_orientation``: the score on region-standardised activity may set a
    same-week direction (:class:`_PairMoments`). ``dark_weeks``: a same-week edge whose parent is
    dark in weeks its child runs, never the reverse, is oriented by that (:func:`_dark_weeks`,
    after the other rules and over them). ``time_order``: a same-week edge whose direction none of
    those settled runs as the same pair's lagged edges do (:func:`_time_order`). ``names``:
    channel names for warnings. Returns
    weights in region-scaled activity units, lags 0..``max_lag``.
    """
    for what, mask in (("graph.required", required), ("graph.edges (mode='fixed')", fixed)):
        if mask is not None and topological_order(mask.astype(float)) is None:
            raise ValueError(
                f"{what} edges form a cycle; same-week influence must be acyclic: drop one edge of "
                "the cycle (or, for a fixed graph, give the structure without it)"
            )
    opt = _GraphOptions(mode, max_lag, lambda1, threshold, forbidden, required, roots, fixed, min_t,
                        lag_min_t, own_lags, cycle_test, shared_driver, equal_cv, negative_edges, national,
                        tuple(names) if names is not None else None,
                        _control_terms(controls), regional_orientation, dark_weeks, time_order)
    dark = observed & ~(scaled != 0).any(axis=2)  # [R,T]
    if mode != "notears" or not dark.any() or scaled.shape[2] < 2:
        return _learn_graph_on(scaled, observed, phase, opt)
    graphs = []  # with the dark weeks, then without them; each with the warnings it gave
    for cells in (observed, observed & ~dark):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            graphs.append((_learn_graph_on(scaled, cells, phase, opt), caught))
    (with_dark, said), (without, said_without) = graphs
    if _linked_pairs(without.weights, required) < _linked_pairs(with_dark.weights, required):
        with_dark, said = without, said_without
    for w in said:
        warnings.warn(w.message, w.category, stacklevel=4)
    return with_dark


@dataclass(frozen=True)
class _GraphOptions:
    """The options of :func:`learn_graph`, passed on to each of its learns."""

    mode: str
    max_lag: int
    lambda1: float
    threshold: float
    forbidden: np.ndarray
    required: np.ndarray
    roots: tuple[int, ...]
    fixed: np.ndarray | None
    min_t: float
    lag_min_t: float | None
    own_lags: int
    cycle_test: bool
    shared_driver: bool
    equal_cv: bool
    negative_edges: bool
    national: bool = True
    names: tuple[str, ...] | None = None  # channel names for messages (positions when None)
    controls: np.ndarray | None = None  # [R,T,K] the fit's controls, partialled out
    regional_orientation: bool = True  # the region-standardised score may override (_PairMoments)
    dark_weeks: bool = True  # dark weeks may settle same-week directions (dark_weeks_settle)
    time_order: bool = True  # open same-week directions follow the pair's lagged edges (_time_order)


def _learn_graph_on(scaled: np.ndarray, observed: np.ndarray, phase: np.ndarray, opt: _GraphOptions) -> ChannelGraph:
    """:func:`learn_graph` on the cells ``observed`` (see there)."""
    mode, max_lag, lambda1, threshold = opt.mode, opt.max_lag, opt.lambda1, opt.threshold
    forbidden, required, roots, fixed = opt.forbidden, opt.required, opt.roots, opt.fixed
    min_t, lag_min_t, own_lags, cycle_test = opt.min_t, opt.lag_min_t, opt.own_lags, opt.cycle_test
    shared_driver, equal_cv, negative_edges = opt.shared_driver, opt.equal_cv, opt.negative_edges
    # Small dense algebra (NOTEARS on a C(L+1) x C problem, many k x k regressions): BLAS threads
    # cost more in synchronisation than they save (MMM panel: 1.6 s on two threads, 1.1 s on one).
    with threadpool_limits(limits=1, user_api="blas"):
        R, T, C = scaled.shape
        L = max_lag
        if mode == "none" or C < 2:
            return ChannelGraph.empty(C, L)
        scaled = _relative_to_cells(scaled, observed)  # each region over its mean on the cells used
        P = max(L, own_lags)  # lags in the design; beyond L only a channel's own (persistence)
        # the preparation's week means and regional slow terms take degrees of freedom too
        taken = absorbed_dof(observed, smooth_basis(T, phase).shape[1]) + (
            0 if opt.controls is None else opt.controls.shape[2])
        while P > 0 and _residual_dof(observed, P, C) - taken < MIN_DOF:  # short panels: fewer lags
            P -= 1
        if _residual_dof(observed, P, C) - taken < MIN_DOF and mode == "notears":
            warnings.warn(
                f"graph: {R} regions x {T} weeks are too few region-weeks to learn a graph among {C} "
                f"channels (each channel's equation needs {MIN_DOF} residual degrees of freedom); no "
                "edges are learned. Give the structure with graph.mode='fixed', or more data",
                UserWarning,
                stacklevel=5,
            )
            return ChannelGraph.empty(C, L)
        if P < L:
            warnings.warn(
                f"graph: {R} regions x {T} weeks are too few region-weeks for lags up to {L} among {C} "
                f"channels; edges are learned at lags 0..{P} only (graph.max_lag)",
                UserWarning,
                stacklevel=5,
            )
            L = P
        if R < 3 and mode == "notears":
            warnings.warn(
                f"graph: with {R} region(s) each week's national pattern (budget seasons, flight "
                "plans, channels' own cycles) stays in the activity the graph is learned from, and "
                "channels that merely share a calendar can be linked, mostly at lags 1-2 (simulated "
                "national panels without true edges: 4 false pairs over 8 panels of 156 weeks x 8 "
                "channels). Read the learned edges as hypotheses; give the structure with "
                "graph.roots, graph.forbidden or graph.mode='fixed', or fit regional data",
                UserWarning,
                stacklevel=5,
            )
        act, absorbed, full_or_none = _prepare_both(scaled, observed, phase, cycle_test, with_full=R >= 3,
                                                     controls=opt.controls)
        full = act if full_or_none is None else full_or_none
        national = np.zeros(C, dtype=bool) if full_or_none is None else national_channels(act, full, observed)
        # A channel bought nationally has (next to) nothing left once each week's cross-region
        # mean is removed: its pairs are learned from the national series instead (below).
        involve = (national[:, None] | national[None, :]) & ~np.eye(C, dtype=bool)  # [C,C]
        national_spec = (forbidden, required, fixed)
        forbidden = forbidden | involve
        required = required & ~involve
        fixed = None if fixed is None else fixed & ~involve
        Y, X, group = _design(act, observed, P)
        prepared_logs: dict[tuple[int, ...], tuple[np.ndarray, int] | None] = {}  # both learns ask alike

        def log_rows(members: np.ndarray) -> tuple[np.ndarray, int] | None:
            """The members' within-region, de-trended log activity over the cells where each is
            positive, with the degrees of freedom that took (None when those cells are under a
            quarter of the observed cells)."""
            key = tuple(int(m) for m in members)
            if key not in prepared_logs:
                sub = scaled[..., members]
                pos = observed & (sub > 0).all(axis=2)
                logs = np.log(np.where(pos[..., None], sub, 1.0))
                if pos.sum() < 0.25 * observed.sum():
                    prepared_logs[key] = None
                else:
                    z, taken_logs = _prepare(logs, pos, phase, cycle_test=cycle_test, controls=opt.controls)
                    prepared_logs[key] = (z[pos], taken_logs)
            return prepared_logs[key]

        spec = (group, P, L, lambda1, threshold, forbidden, required, roots, fixed, min_t, mode, equal_cv,
                negative_edges, lag_min_t, log_rows, absorbed, opt.regional_orientation)
        # the same rows' activity over each region's mean, where dark weeks are read
        raw = scaled[:, P:][_design_rows(observed, P)] if opt.dark_weeks else None
        weights, direction, assumed, dark, ordered = _learn(Y, X, *spec, raw=raw, time_order=opt.time_order)
        persistent = False  # a shared driver that lasts into the following weeks (shared_driver_designs)
        if mode == "notears":
            # A driver every channel shares (a regional budget) links every pair alike. When the
            # data show one, the graph learned without it is kept if it is the sparser one (on
            # real panels channels can share several drivers, and taking out one factor can
            # create as many links as it removes).
            designs = _without_shared_driver(X, C, national) if shared_driver else []
            candidates = [_learn(d[:, :C], d, *spec, raw=raw, time_order=opt.time_order) for d in designs]
            persistent = len(candidates) == 2
            if persistent:
                # Two maps, each wrong in its own way. The map over all lags takes no account of
                # the share of the driver a child inherits through its parent's past weeks, and
                # it spreads a strong lagged edge over every channel at that lag. The same-week
                # map alone leaves the driver's past in the lagged columns. An edge stands when
                # both designs learn it (session 35: lag-kernel edges under a persistent budget,
                # 57 false pairs over 8 panels to 2).
                candidates = [candidates[0], _edges_in_both(*candidates)]
            for again in candidates:
                if _linked_pairs(again[0], required) < _linked_pairs(weights, required):
                    weights, direction, assumed, dark, ordered = again
        if involve.any():
            weights = weights + _national_pass(full, observed, phase, national, national_spec, opt, P, L)
            # the two passes' same-week edges together could close a cycle: drop its weakest
            weights[0] = _break_cycles(weights[0], national_spec[1])
        if mode == "notears":
            message = dense_graph_message(weights, national_spec[1])
            if message:
                warnings.warn(f"graph: {message}", UserWarning, stacklevel=5)
            if persistent and _linked_pairs(weights, national_spec[1]) > 0:
                warnings.warn(f"graph: {PERSISTENT_DRIVER_MESSAGE}", UserWarning, stacklevel=5)
        return ChannelGraph(weights, tuple(roots), direction, assumed, national, dark, ordered,
                            persistent if mode == "notears" else None)


Learned = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # what _learn returns


def _edges_in_both(first: Learned, second: Learned) -> Learned:
    """``second`` (:func:`_learn`'s weights ``[L+1,C,C]``, direction support and the masks of
    same-week edges set by each rule) with only the parent-child pairs that ``first`` also
    links in the same direction, at any lag."""
    linked = (first[0] != 0).any(axis=0)  # [C,C]
    weights, direction, assumed, dark, ordered = second
    return (np.where(linked[None], weights, 0.0), np.where(linked, direction, np.nan), assumed & linked,
            dark & linked, ordered & linked)


def _without_shared_driver(X: np.ndarray, C: int, national: np.ndarray) -> list[np.ndarray]:
    """:func:`shared_driver_designs` on the design columns of the channels not bought nationally
    (those have next to nothing left in the regional activity and would stop the step: with
    one in a panel whose other channels shared a weekly regional budget, 3-9 false edges over
    4 panels, none without it); national columns are left as they are."""
    if not national.any():
        return shared_driver_designs(X, C)
    regional = np.flatnonzero(~national)
    cols = np.concatenate([regional + k * C for k in range(X.shape[1] // C)])
    designs = []
    for sub in shared_driver_designs(X[:, cols], len(regional)):
        out = X.copy()
        out[:, cols] = sub
        designs.append(out)
    return designs


def _national_pass(
    full: np.ndarray, observed: np.ndarray, phase: np.ndarray, national: np.ndarray,
    spec: tuple[np.ndarray, np.ndarray, np.ndarray | None], opt: _GraphOptions, P: int, L: int,
) -> np.ndarray:
    """Weights ``[L+1,C,C]`` of the edges out of channels bought nationally (``national``),
    learned from the national series: each week's mean over regions of the within-region,
    de-trended, de-seasonalised activity (week means kept).

    Learned edges (``opt.national``) run from a national channel to a channel with regional
    movements (search responding to national TV), from national channels whose plans move week
    to week (:func:`national_innovation` at least ``NATIONAL_INNOVATION``). Required edges and,
    in ``fixed`` mode, the given edges that involve a national channel are estimated here
    whatever their direction and whatever ``opt.national``, since the regional activity holds
    nothing of a national channel, except those out of a smooth national plan, which the data
    cannot weigh: left at 0 with a warning. ``spec``: the caller's forbidden, required and
    fixed masks ``[C,C]``. The national series cannot tell a plan that moves channels together
    from influence: get_dag_edges marks these edges (``direction_basis`` ``"national"``).
    """
    forbidden, required, fixed = spec
    C = len(national)
    T = observed.shape[1]
    involve = (national[:, None] | national[None, :]) & ~np.eye(C, dtype=bool)
    series, weeks = _national_series(full, observed)
    moving = national & (national_innovation(series[0], weeks[0], max(P, 1)) >= NATIONAL_INNOVATION)
    smooth = national & ~moving

    def named(idx: np.ndarray) -> list[str]:
        return [opt.names[int(i)] if opt.names else f"#{int(i)}" for i in idx]

    given = (fixed if opt.mode == "fixed" and fixed is not None else required) & involve
    unweighable = given & smooth[:, None]  # given edges out of a smooth national plan
    if unweighable.any():
        pairs = [f"{a} -> {b}" for a, b in zip(*(named(ix) for ix in np.nonzero(unweighable)), strict=True)]
        warnings.warn(
            f"graph: the given edge(s) {pairs} leave channels bought nationally on smooth plans "
            f"(their national series follows its own past {max(P, 1)} weeks to within "
            f"{NATIONAL_INNOVATION:.0%}); the data cannot weigh them (estimates swung from -17 to "
            "+4 on simulated panels), so they are left at 0 and pass no effect on",
            UserWarning,
            stacklevel=6,
        )
    if opt.mode == "fixed":
        allowed = given & ~unweighable
    elif opt.national:
        if smooth.any():
            warnings.warn(
                f"graph: channel(s) {named(np.flatnonzero(smooth))} are bought nationally on smooth "
                f"plans (their national series follows its own past {max(P, 1)} weeks to within "
                f"{NATIONAL_INNOVATION:.0%}): too few independent movements to tell their influence "
                "on other channels from a coincidence of cycles, so no edges from them are learned",
                UserWarning,
                stacklevel=6,
            )
        allowed = (moving[:, None] & ~national[None, :] & ~forbidden) | (given & ~unweighable)
    else:
        allowed = given & ~unweighable
    required = required & ~unweighable
    n_parents = int(allowed.sum(axis=0).max()) if allowed.any() else 0
    if n_parents == 0:
        return np.zeros((L + 1, C, C))
    Y, X, group = _design(series, weeks, P)
    K = 0 if opt.controls is None else opt.controls.shape[2]
    taken = smooth_basis(T, phase).shape[1] + K  # each region's slow terms, in the national mean too
    dof = len(Y) - n_parents * (L + 1) - P - 1 - taken
    if dof < MIN_DOF:
        warnings.warn(
            f"graph: channel(s) {named(np.flatnonzero(national))} are bought nationally (under "
            f"{NATIONAL_SHARE:.0%} of their movements differ between regions), so their edges can "
            f"only be learned from the national series, and its {len(Y)} weeks leave {dof} degrees "
            f"of freedom (under {MIN_DOF}): no edges from them are learned. Give known ones with "
            "graph.required, or fit more weeks",
            UserWarning,
            stacklevel=6,
        )
        return np.zeros((L + 1, C, C))
    forbid = ~allowed & ~np.eye(C, dtype=bool)
    weights, *_ = _learn(
        Y, X, group, P, L, opt.lambda1, opt.threshold, forbid, required & involve, opt.roots,
        None if fixed is None else allowed, opt.min_t, opt.mode, False, opt.negative_edges,
        opt.lag_min_t if opt.mode == "notears" else None, None, taken,
    )
    return np.where(involve[None], weights, 0.0)


def _learn(
    Y: np.ndarray, X: np.ndarray, group: np.ndarray, P: int, L: int, lambda1: float, threshold: float,
    forbidden: np.ndarray, required: np.ndarray, roots: tuple[int, ...], fixed: np.ndarray | None,
    min_t: float, mode: str, equal_cv: bool, negative_edges: bool = False, lag_min_t: float | None = None,
    log_rows: LogRows | None = None, absorbed: int = 0, regional: bool = True, raw: np.ndarray | None = None,
    time_order: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Weights ``[L+1,C,C]`` (region-scaled units), direction support, the same-week edges
    oriented by the equal-CV rule, those oriented by their dark weeks (``raw``: the rows'
    activity over each region's mean, None to skip that rule, :func:`_dark_weeks`) and those
    turned to run as their pair's lagged edges (``time_order``, :func:`_time_order`) (``[C,C]``
    bool each), from the lagged design (targets ``Y``
    ``[N,C]`` in region-scaled units, ``X`` ``[N,C*(P+1)]``, region of each row ``group``;
    ``absorbed``: degrees of freedom the preparation took, out of the t values' variance;
    ``regional``: the region-standardised orientation score may override the pooled one,
    see :class:`_PairMoments`)."""
    C = Y.shape[1]
    sd = Y.std(axis=0)
    sd = np.where(sd > 1e-12, sd, 1.0)  # [C]
    Ys = Y / sd
    Xs = X / np.tile(sd, P + 1)
    allowed = np.ones((P + 1, C, C), dtype=bool)
    allowed[0][np.diag_indices(C)] = False
    allowed[L + 1 :] &= np.eye(C, dtype=bool)[None]  # own persistence only
    allowed &= ~forbidden[None]
    for r in roots:
        allowed[:, :, r] = False
        allowed[:, r, r] = P > 0  # a root keeps its own persistence
        allowed[0, r, r] = False
    # entries that may be negative: own persistence (lagged diagonal), required edges, or all
    signed = np.zeros((P + 1, C, C), dtype=bool) | np.eye(C, dtype=bool)[None] | required[None]
    signed[0][np.diag_indices(C)] = False
    if negative_edges or mode == "fixed":
        signed[:] = True
    assumed = np.zeros((C, C), dtype=bool)  # same-week pairs oriented by the equal-CV rule
    dark = np.zeros((C, C), dtype=bool)  # same-week pairs oriented by their dark weeks
    agree: dict[tuple[int, int], float] = {}  # direction support of each free same-week edge
    if mode == "fixed":
        assert fixed is not None
        support = allowed & (fixed[None] | np.eye(C, dtype=bool)[None])
        support[0][np.diag_indices(C)] = False
    else:
        W, bounded = _notears_signed(Xs, Ys, P, lambda1, allowed, signed, threshold)
        support = (np.abs(W) > threshold) & allowed
        # own persistence (lagged diagonal) is kept so it cannot masquerade as cross edges
        for lag in range(1, P + 1):
            support[lag][np.diag_indices(C)] = allowed[lag][np.diag_indices(C)]
        support[0] |= required & allowed[0]  # required edges are contemporaneous
        W0 = np.where(support[0], W[0], 0.0)
        W0 = np.where(required & (W0 == 0), 1e-6, W0)
        # same-week directions are read from what the lagged parents leave (as in VAR-LiNGAM):
        # a flighted parent acting on two channels at lags is otherwise the least Gaussian part
        # of both, and the pair score reads its share in them
        pairs = _PairMoments(_without_lagged_parents(Xs, Ys, support), group, regional)
        W0 = _orient(W0, pairs, allowed[0], required)
        flipped = (W0 != 0) & (support[0].T) & ~support[0]
        if flipped.any():
            # NOTEARS had these same-week edges the other way round, and with them it may have
            # explained a true parent's share of a child through that child's child (the parent
            # tv, its children search and social, social -> search learned as search -> social:
            # tv -> social then looks redundant). Learned again with every oriented edge's
            # reverse forbidden; the supports are joined, new same-week edges oriented alike.
            again_allowed = allowed.copy()
            again_allowed[0] &= ~(W0.T != 0)
            # from the first result; sign-bounded at once where the first run needed the bounds
            W2 = notears(Xs, Ys, P, lambda1, again_allowed, signed=signed if bounded else None, start=W)
            extra = (np.abs(W2) > threshold) & again_allowed & ~support
            extra[0] &= (W0 == 0) & (W0.T == 0)
            support |= extra
            if extra[0].any():
                W0 = _orient(np.where(extra[0], W2[0], W0), pairs, allowed[0], required)
        unconstrained = allowed[0] & allowed[0].T & ~required & ~required.T  # [C,C]

        rescored: dict[tuple[int, int], float] = {}  # support of pairs scored again without dark-settled parents

        def support_of(e: tuple[int, int]) -> float:
            return rescored[e] if e in rescored else pairs.support(*e)

        def settle(W: np.ndarray, given: Sequence[tuple[int, int]] = ()) -> tuple[np.ndarray, list[tuple[int, int]]]:
            """The equal-CV and log rules (:func:`_tie_break`) on the same-week edges of ``W``
            whose direction neither the score settled nor ``given`` (dark weeks) fixes."""
            free = [(int(i), int(j)) for i, j in zip(*np.nonzero(W), strict=True) if unconstrained[i, j]]
            undecided = [e for e in free if e not in given]
            agree.update({e: support_of(e) for e in free})
            ambiguous = sorted((e for e in undecided if equal_cv and agree[e] < DIRECTION_SETTLED),
                               key=lambda e: agree[e], reverse=True)
            if not ambiguous:
                return W, []
            return _tie_break(W, Y, ambiguous, log_rows, undecided, allowed[0] & ~required.T, min_t)

        scored = W0  # the non-Gaussian score's directions
        W0, applied = settle(scored)
        if raw is not None:
            turned, settled = _dark_weeks(W0, raw, Y, unconstrained)
            set_by_rules = {e for e in applied if W0[e] != 0}
            coin_flips = [(int(i), int(j)) for i, j in zip(*np.nonzero(W0 * unconstrained), strict=True)
                          if (i, j) not in set_by_rules and agree.get((int(i), int(j)), 1.0) < DIRECTION_SETTLED]
            start = scored.copy()
            for i, j in settled:
                start[i, j], start[j, i] = start[i, j] + start[j, i], 0.0
            # A flighted parent's activity is the least Gaussian part of each child's, so the pair
            # score of two of its children reads its share in them, not how they relate: score
            # their pairs again with their dark-settled parents partialled out.
            rescored.update(_rescore_without(pairs.Z, group, start, settled, unconstrained, raw, Y, regional))
            changed = False
            for (i, j), share in rescored.items():
                if start[i, j] != 0 and share < 0.5:
                    start[j, i], start[i, j] = start[i, j], 0.0
                changed |= bool(start[i, j] != 0 and W0[i, j] == 0)
            if settled and (any(W0[i, j] == 0 for i, j in settled) or changed or (equal_cv and coin_flips)):
                # the dark weeks turned an edge the other rules had set (and with it those rules
                # may have set the rest of its group), a pair scored without its dark-settled
                # parents turned, or the rules left unsettled edges to the score's coin flip (a
                # flighted channel's exogenous part varies far more than the rest, so the group's
                # CVs were unlike): decide those again with the dark weeks' directions given
                W0, applied = settle(start, settled) if topological_order(start) is not None else (turned, applied)
            for i, j in settled:
                dark[i, j] = dark[j, i] = True
        for i, j in applied:
            assumed[i, j] = assumed[j, i] = not dark[i, j]
        support[0] = _break_cycles(W0, required) != 0
    keep = np.zeros_like(support)
    keep[0] = required
    for lag in range(1, P + 1):
        keep[lag][np.diag_indices(C)] = True
    if mode == "fixed":
        keep = support.copy()
    Ws = _refit(Xs, Ys, support, keep, min_t, signed, absorbed)
    lag_t = lag_min_t if mode == "notears" else None
    if lag_t is not None:
        Ws = _complete_lags(Xs, Ys, Ws, allowed, keep, L, lag_t, signed, absorbed)
    ordered = np.zeros((C, C), dtype=bool)  # same-week pairs turned to run as their lagged edges
    if time_order and mode == "notears" and L > 0:
        # open: learned same-week edges the score left unsettled and no rule set
        open_ = (Ws[0] != 0) & unconstrained & ~assumed & ~dark
        for i, j in zip(*np.nonzero(open_), strict=True):
            e = (int(i), int(j))
            open_[i, j] = (agree[e] if e in agree else support_of(e)) < DIRECTION_SETTLED
        # each open pair's lags 1..L both ways, beside the rest of the graph without the open
        # edge itself (in the wrong direction its parent would take lagged terms that correct
        # for it): which way do they run?
        # A turn needs a lag as strong as a pair's first edge (min_t) one way and none as strong
        # the other way.
        lagged = np.zeros((L, C, C), dtype=bool)
        for i, j in zip(*np.nonzero(open_), strict=True):
            both = np.zeros_like(keep)
            both[1 : L + 1, i, j] = allowed[1 : L + 1, i, j]
            both[1 : L + 1, j, i] = allowed[1 : L + 1, j, i]
            held = keep | ((Ws != 0) & ~both)  # the rest of the graph as it is
            held[0, i, j] = False
            probe = _refit(Xs, Ys, held | both, held, min_t, signed, absorbed)
            lagged[:, i, j] = probe[1 : L + 1, i, j] > 0
            lagged[:, j, i] = probe[1 : L + 1, j, i] > 0
        by_lags, turned_pairs = _time_order(support[0], lagged, open_)
        if turned_pairs:
            support[0] = by_lags
            Ws = _refit(Xs, Ys, support, keep, min_t, signed, absorbed)
            # the turned pairs were decided at min_t the other way round: their entries now (the
            # same week and its lags) are judged as a pair's other lags are
            entries = np.zeros_like(keep)
            for i, j in turned_pairs:
                entries[0, i, j] = True
                entries[1 : L + 1, i, j] = allowed[1 : L + 1, i, j]
            Ws = _refit(Xs, Ys, (Ws != 0) | entries, keep | (Ws != 0), min_t if lag_t is None else lag_t,
                        signed, absorbed)
            if lag_t is not None:
                Ws = _complete_lags(Xs, Ys, Ws, allowed, keep, L, lag_t, signed, absorbed)
            for i, j in turned_pairs:
                ordered[i, j] = ordered[j, i] = True
    Ws = Ws[: L + 1]  # standardised units; persistence beyond L dropped
    Ws = _kernel_weights(Xs, Ys, Ws, signed, lag_t, absorbed)  # each lag's whole influence (interventions)
    ratio = sd[None, :] / sd[:, None]  # [C,C]: sd_child / sd_parent
    weights = Ws * ratio[None]
    for lag in range(L + 1):
        np.fill_diagonal(weights[lag], 0.0)  # persistence is not an edge
    direction = np.full((C, C), np.nan)
    if mode == "notears":
        for i, j in zip(*np.nonzero(weights[0]), strict=True):
            if allowed[0][i, j] and allowed[0][j, i] and not (required[i, j] or required[j, i]):
                e = (int(i), int(j))  # same resamples as before the refit: reuse what was computed
                direction[i, j] = agree[e] if e in agree else support_of(e)
    return weights, direction, assumed & (weights[0] != 0), dark & (weights[0] != 0), ordered & (weights[0] != 0)


def edge_mask(channels: Sequence[str], pairs: Sequence[tuple[str, str]]) -> np.ndarray:
    """``[C,C]`` boolean mask, True at (parent, child) for each named pair of ``channels``."""
    idx = {c: i for i, c in enumerate(channels)}
    m = np.zeros((len(idx), len(idx)), dtype=bool)
    for parent, child in pairs:
        m[idx[parent], idx[child]] = True
    return m


def _linked_pairs(weights: np.ndarray, required: np.ndarray) -> int:
    """Channel pairs linked by a learned (not required) edge at any lag."""
    C = weights.shape[1]
    linked = (weights != 0).any(axis=0) & ~required  # [C,C]
    return int((linked | linked.T)[np.triu_indices(C, 1)].sum())


DRIVER_THRESHOLD = 2.0  # median pair correlation, in units of 1 / sqrt(rows), that reads as a driver (or its persistence)
MIN_CHANNELS_ROBUST = 6  # fewest channels for the robust (unequal) loadings; see remove_shared_driver


PERSISTENT_DRIVER_MESSAGE = (
    "each region's channels move together from week to week and into the following weeks, as "
    "under a regional budget every channel shares. That driver is taken out before edges are "
    "learned, but a strong one that persists leaves false edges on simulated panels (README, "
    "'Known limits'). Read the learned edges as hypotheses; give the structure with graph.roots, "
    "graph.forbidden or graph.mode='fixed'"
)


def remove_shared_driver(X: np.ndarray, C: int) -> np.ndarray | None:
    """The first of :func:`shared_driver_designs` (the design without the driver), or None
    where there is no driver."""
    designs = shared_driver_designs(X, C)
    return designs[0] if designs else None


def shared_driver_designs(X: np.ndarray, C: int) -> list[np.ndarray]:
    """Lagged design ``[N, C*(P+1)]`` without a driver every channel shares: none (no driver),
    one design, or two when the driver persists (see ``same week`` below).

    A driver that moves every channel of a region together week to week (a
    regional budget split across channels) correlates every pair of channels,
    now and, if it persists, across weeks; influence among channels
    correlates only the pairs it links, and true mediation graphs are sparse.
    When the median same-week correlation between different channels is
    positive beyond sampling noise (``DRIVER_THRESHOLD / sqrt(N)``, 2 / sqrt(N):
    twice one pair's standard error with independent rows, and the median over
    pairs is steadier than one pair; the second graph is kept only if it is
    sparser), it is taken for a factor. Each channel's loading comes from a rank-one fit of the
    same-week correlations by least absolute deviations on the log scale
    (:func:`_robust_loadings`: the few pairs true edges link are outliers to
    it; budgets are rarely split in equal shares). With fewer than
    ``MIN_CHANNELS_ROBUST`` (6) channels a mediation triangle links half of
    each member's pairs and such a fit takes the triangle for the driver, so
    there each loading is the channel's median correlation with the others,
    shrunk halfway to equal loadings. The factor's correlation at each lag
    ``k`` comes from the median over channel pairs ``k`` weeks apart, scaled
    by the loadings. The factor's part is removed from
    every block of the lagged design's correlations, a channel's own lagged
    correlation included (left in, a persistent driver's share of a child's
    persistence would be explained by its parent's past with a negative sign:
    false lagged edges). The design (lag 0 first) is mapped linearly (the
    Gaussian optimal-transport map, the one closest to the identity) to one
    with those correlations: block by block with the same-week map when the
    lagged medians are noise (within the same threshold), over all lags at
    once when the driver persists.
    Limitation: the map over all lags mixes them a little, so a true edge can
    gain a weak lagged copy.

    Same week: when the driver persists, a second design maps the same-week
    block (the targets) alone and leaves the lagged columns as observed. Any
    map of the columns changes the
    regression of a child on its parent's lags: a strong lagged edge is spread
    over every channel at that lag, in proportion to the map's mixing. The map
    over all lags also takes no account of the share of the driver that a
    child inherits through its parent's past weeks. With lag-kernel edges
    under a persistent budget (``kernel_simulator.py --kernel delayed
    --shared-budget 0.3``), what it leaves need not be a valid covariance, and
    it learned 57 false pairs over 8 panels. :func:`learn_graph` therefore
    learns from both designs and keeps the edges that both learn, which gave
    2 false pairs on those panels.
    """
    N, K = X.shape
    P1 = K // C
    if C < 4 or N < 10 * K:
        return []
    sd = X.std(axis=0)
    if (sd <= 1e-12).any():
        return []
    S = np.corrcoef(X, rowvar=False)  # [K,K]
    off = ~np.eye(C, dtype=bool)
    median0 = float(np.median(S[:C, :C][off]))
    if not median0 > DRIVER_THRESHOLD / np.sqrt(N):
        return []
    if C >= MIN_CHANNELS_ROBUST:
        load = _robust_loadings(S[:C, :C])  # [C]
    else:
        # Too few channels to tell a driver with unequal loadings from a cluster of linked
        # channels: each channel's median correlation with the others, shrunk halfway to equal.
        rows = np.array([np.median(np.delete(S[i, :C], i)) for i in range(C)])  # [C]
        load = np.sqrt(rows / median0) if np.all(rows > 0) else np.ones(C)
    outer = np.outer(load, load)
    shared = [float(np.median(S[:C, k * C:(k + 1) * C][off] / outer[off])) for k in range(P1)]  # by lag
    lag = np.abs(np.subtract.outer(np.arange(P1), np.arange(P1)))  # [P1,P1] lag between blocks
    factor = np.kron(np.asarray(shared)[lag], outer)  # [K,K]
    same_week = _transport(S[:C, :C], S[:C, :C] - factor[:C, :C])  # [C,C]
    centred = (X - X.mean(axis=0)) / sd
    if all(abs(v) * np.sqrt(N) < DRIVER_THRESHOLD for v in shared[1:]):
        # Not persistent: the same-week map on every lag block (a map over all lags would mix
        # a same-week edge into lagged copies).
        return [centred @ np.kron(np.eye(P1), same_week) * sd]
    targets_only = np.eye(K)
    targets_only[:C, :C] = same_week  # the lagged columns as observed
    return [centred @ _transport(S, S - factor) * sd, centred @ targets_only * sd]


def _robust_loadings(R: np.ndarray) -> np.ndarray:
    """Loadings ``l`` ``[C]`` of the rank-one fit ``R_ij ~ l_i l_j`` (``i != j``), geometric mean 1.

    Fitted on the log scale, ``log R_ij = log l_i + log l_j + e_ij``, by least
    absolute deviations (a linear programme): the few pairs that true edges
    link are outliers to it, however large their loadings, and every pair
    counts alike. Correlations below 0.001 are taken as 0.001. The log
    loadings are then shrunk toward equal ones by the share of their spread
    that the fit's residual scale puts down to noise (none on exact
    rank-one correlations).
    """
    C = R.shape[0]
    iu, ju = np.triu_indices(C, 1)
    y = np.log(np.clip(R[iu, ju], 1e-3, None))  # [P]
    P = len(y)
    design = np.zeros((P, C))
    design[np.arange(P), iu] = 1.0
    design[np.arange(P), ju] = 1.0
    # y = design @ a + up - down, minimise sum(up + down), up, down >= 0
    res = linprog(
        np.concatenate([np.zeros(C), np.ones(2 * P)]),
        A_eq=np.hstack([design, np.eye(P), -np.eye(P)]),
        b_eq=y,
        bounds=[(None, None)] * C + [(0, None)] * (2 * P),
        method="highs",
    )
    if not res.success:  # pragma: no cover - a feasible bounded LP; kept as a guard
        return np.ones(C)
    a = res.x[:C] - res.x[:C].mean()  # log loadings, mean 0
    # Shrunk toward equal loadings by the share of their spread that sampling noise explains
    # (on small panels with equally shared drivers the fitted spread is mostly noise).
    scale = 1.4826 * float(np.median(np.abs(y - design @ res.x[:C])))  # robust sd of one pair
    noise = np.pi / 2 * scale**2 / (C - 1)  # variance of a median-type estimate from C-1 pairs
    spread = float(np.mean(a**2))
    if spread > 0:
        a = a * max(0.0, 1.0 - noise / spread)
    return np.exp(a)


def _transport(S: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Symmetric ``A`` with ``A' S A = target``: the Gaussian optimal-transport map, closest to I."""
    vals, vecs = np.linalg.eigh(S)
    vals = np.clip(vals, 1e-12, None)
    root = vecs @ np.diag(np.sqrt(vals)) @ vecs.T  # S^(1/2)
    inv_root = vecs @ np.diag(1 / np.sqrt(vals)) @ vecs.T  # S^(-1/2)
    mv, mvec = np.linalg.eigh(root @ target @ root)
    middle = mvec @ np.diag(np.sqrt(np.clip(mv, 0.0, None))) @ mvec.T  # (S^1/2 T S^1/2)^(1/2)
    return inv_root @ middle @ inv_root


def dense_graph_message(weights: np.ndarray, required: np.ndarray) -> str:
    """Why a learned graph that links more channel pairs than a tree over them has is suspect.

    A driver the model does not see that moves all of a region's channels
    together week to week (a regional budget split across channels) makes
    every channel predict every other (10-28 edges on 40 x 156 x 8 panels with
    no true edges, before :func:`remove_shared_driver`); true mediation graphs
    among marketing channels are usually sparse. ``weights`` ``[L+1,C,C]``;
    edges in ``required`` do not count. Returns "" for a sparse graph.
    """
    C = weights.shape[1]
    pairs = _linked_pairs(weights, required)
    if C < 4 or pairs <= C - 1:
        return ""
    return (
        f"the learned edges link {pairs} of the {C * (C - 1) // 2} channel pairs, more than a tree "
        f"over {C} channels ({C - 1}). So many edges usually mean the channels share a driver the "
        "model does not see (e.g. a regional budget that moves every channel week to week), not "
        "that they drive each other, and total effects would pass effects along them. Check "
        "get_dag_edges(); if no such influence is plausible set graph.mode='none', or fix the "
        "structure with graph.mode='fixed' or graph.forbidden"
    )
