"""Interventions through the channel graph: do(channel = 0) and what it takes with it."""

from __future__ import annotations

import numpy as np

from ..components.graph import ChannelGraph, topological_order

__all__ = ["intervene", "rescale"]


def intervene(
    scaled: np.ndarray,
    graph: ChannelGraph,
    channel: int,
    where: np.ndarray | None = None,
    factor: float = 0.0,
) -> np.ndarray:
    """Activity ``[R,T,C]`` under do(``channel`` = ``factor`` x observed), propagated to its descendants.

    With ``factor`` 0 the channel's activity is removed (everywhere, or in
    the cells of ``where``) and every descendant loses the part of its
    activity that the graph says was induced (contemporaneously or with
    lags, so also in the weeks just after a window), never going below
    zero. Other factors scale the channel and change the induced parts by
    the same linear rule. Other channels are unchanged.

    Parameters
    ----------
    scaled : ndarray ``[R,T,C]``
        Observed activity in region-scaled units (as the graph's weights).
    graph : ChannelGraph
    channel : int
    where : bool ndarray ``[R,T]``, optional
        Cells where the channel is set (a geo experiment's regions and
        weeks); None sets it everywhere.
    factor : float
        Multiplier on the channel's observed activity (0: switched off).
    """
    R, T, C = scaled.shape
    factors = np.ones(C)
    factors[channel] = factor
    cells = np.ones((R, T), dtype=bool) if where is None else where
    return rescale(scaled, graph, factors, cells)


def rescale(scaled: np.ndarray, graph: ChannelGraph, factors: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Activity ``[R,T,C]`` with every channel's activity scaled at once, through the graph.

    In the cells of ``where`` ``[R,T]`` channel ``c``'s activity, including
    what its parents induce in it, is multiplied by ``factors[c]``; a change
    in a parent's activity changes the part it induces in its children (now
    or with lags, also after the cells) by the graph's linear rule, never
    below zero. With one factor different from 1 this is :func:`intervene`.
    ``factors`` ``[B,C]`` (several plans at once) gives ``[B,R,T,C]``, each
    plan as if alone: one pass over the weeks serves them all. ``[B,R,C]``
    gives each region factors of its own.
    """
    F = np.asarray(factors, dtype=float)
    single = F.ndim == 1
    F = F[None] if single else F  # [B,C] or [B,R,C]
    B = len(F)
    R, T, C = scaled.shape
    W = graph.weights  # [L+1,C,C]
    L = W.shape[0] - 1
    order = topological_order(W[0])
    if order is None:
        raise ValueError("the channel graph's contemporaneous part has a cycle")
    per_cell = F[:, :, None, :] if F.ndim == 3 else F[:, None, None, :]  # [B,R|1,1,C]
    f = np.where(np.asarray(where, dtype=bool)[None, :, :, None], per_cell, 1.0)  # [B,R,T,C]
    if not np.any(W):
        out = scaled[None] * f
        return out[0] if single else out
    # week-major and channel-major, plans and regions along the last axis: each week's channel is
    # one contiguous row of B*R cells, so a week costs a few array operations for every plan
    N = B * R
    a = np.ascontiguousarray(np.broadcast_to(scaled[None], (B, R, T, C)).transpose(2, 3, 0, 1)).reshape(T, C, N)
    fw = np.ascontiguousarray(f.transpose(2, 3, 0, 1)).reshape(T, C, N)
    delta = np.zeros((T, C, N))
    for t in range(T):
        lagged = np.zeros((C, N))
        for lag in range(1, min(L, t) + 1):
            lagged += W[lag].T @ delta[t - lag]  # [C,C] @ [C,N]: what each child gets from parents' past
        for j in order:
            induced = lagged[j] + W[0][:, j] @ delta[t]  # [N] change passed down by parents
            d = (fw[t, j] - 1.0) * a[t, j] + fw[t, j] * induced
            delta[t, j] = np.maximum(d, -a[t, j])
    out = scaled[None] + delta.reshape(T, C, B, R).transpose(2, 3, 0, 1)
    return out[0] if single else out
