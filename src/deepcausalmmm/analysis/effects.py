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
    """
    R, T, C = scaled.shape
    W = graph.weights  # [L+1,C,C]
    L = W.shape[0] - 1
    order = topological_order(W[0])
    if order is None:
        raise ValueError("the channel graph's contemporaneous part has a cycle")
    f = np.where(np.asarray(where, dtype=bool)[:, :, None], np.asarray(factors, dtype=float)[None, None, :], 1.0)
    if not np.any(W):
        return scaled * f
    delta = np.zeros_like(scaled)  # [R,T,C]
    for t in range(T):
        lagged = np.zeros((R, C))
        for lag in range(1, min(L, t) + 1):
            lagged += delta[:, t - lag, :] @ W[lag]  # [R,C] @ [C,C] -> [R,C]
        for j in order:
            induced = lagged[:, j] + delta[:, t, :] @ W[0][:, j]  # [R] change passed down by parents
            d = (f[:, t, j] - 1.0) * scaled[:, t, j] + f[:, t, j] * induced
            delta[:, t, j] = np.maximum(d, -scaled[:, t, j])
    return scaled + delta
