"""Interventions through the channel graph: do(channel = 0) and what it takes with it."""

from __future__ import annotations

import numpy as np

from ..components.graph import ChannelGraph, topological_order

__all__ = ["intervene", "pack_moves", "reach", "rescale"]


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


def reach(graph: ChannelGraph) -> np.ndarray:
    """``[C,C]`` bool: ``reach[i, j]`` where a change in channel ``i``'s activity can change channel
    ``j``'s through the graph: ``i`` itself and every channel downstream of it, at any lag.

    Under :func:`rescale` channel ``j``'s activity depends only on the factors of the channels
    that reach it, and in the network each channel's contribution depends only on its own
    activity (invariant 7). So plans that each change one channel can share a pass when their
    channels reach no channel in common (:func:`pack_moves`).
    """
    step = np.any(np.asarray(graph.weights) != 0, axis=0)  # [C,C] an edge at some lag
    out = np.eye(step.shape[0], dtype=bool) | step
    while True:
        wider = out | ((out.astype(np.int64) @ step.astype(np.int64)) > 0)
        if np.array_equal(wider, out):
            return out
        out = wider


def pack_moves(reach_: np.ndarray, channels: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """``[n]`` a pack number for each move (a change to channel ``channels[i]`` of plan
    ``groups[i]``, default all plan 0): moves in one pack belong to the same plan and their
    channels reach (``reach_``, from :func:`reach`) disjoint sets of channels, so one pass with
    all of a pack's changes made at once gives every move's channels as that move alone would.
    Greedy, in order: without graph edges, a plan's moves on distinct channels share one pack.
    """
    channels = np.asarray(channels, dtype=int)
    groups = np.zeros(len(channels), dtype=int) if groups is None else np.asarray(groups, dtype=int)
    taken: list[np.ndarray] = []  # channels each pack's moves reach
    owner: list[int] = []  # each pack's plan
    out = np.empty(len(channels), dtype=int)
    for i, (c, g) in enumerate(zip(channels, groups, strict=True)):
        for p, (used, plan) in enumerate(zip(taken, owner, strict=True)):
            if plan == g and not np.any(used & reach_[c]):
                used |= reach_[c]
                out[i] = p
                break
        else:
            taken.append(reach_[c].copy())
            owner.append(int(g))
            out[i] = len(taken) - 1
    return out
