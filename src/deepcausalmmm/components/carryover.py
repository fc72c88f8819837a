"""Gated linear carryover (adstock) with calendar-dependent gates.

One stage is the recursion ``s_t = g_t s_{t-1} + (1 - g_t) x_t`` with a gate
``g_t`` in ``(gate_min, gate_max)``; stacking stages gives a delayed peak. The
recursion is linear in ``x`` with non-negative weights, so it is zero for zero
input, monotone in spend and causal (invariants 2-4). Its impulse response is
truncated after ``max_lag`` steps, so carryover is finite by construction.

The gates vary with the national calendar context (the hidden state of the
model's context GRU for an average region; it never sees spend), and are
written as an explicit lower-triangular kernel ``[C,T,T]`` so the whole
panel is one batched matrix product.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .registry import register

__all__ = ["carryover_kernel", "apply_kernel", "GatedCarryover"]


def carryover_kernel(gates: Tensor, max_lag: int) -> Tensor:
    """Kernel of a multi-stage gated recursion.

    Parameters
    ----------
    gates : Tensor ``[S,T,C]``
        Gate per stage, time step and channel, in (0, 1).
    max_lag : int
        Weights with ``t - s > max_lag`` are set to 0.

    Returns
    -------
    Tensor ``[C,T,T]``
        ``K[c, t, s]``: weight of input at ``s`` in the output at ``t`` (0 for s > t).
    """
    S, T, C = gates.shape
    t = torch.arange(T, device=gates.device)
    lag = t[:, None] - t[None, :]  # [T,T]
    lower = lag >= 0  # [T,T]
    total: Tensor | None = None
    for stage in range(S):
        g = gates[stage].clamp(1e-6, 1 - 1e-6)  # [T,C]
        cum = torch.cumsum(torch.log(g), dim=0).T  # [T,C] -> [C,T]
        expo = cum[:, :, None] - cum[:, None, :]  # [C,T,1] - [C,1,T] -> [C,T,T]
        expo = torch.where(lower, expo, torch.zeros_like(expo))
        k = torch.where(lower, torch.exp(expo), torch.zeros_like(expo))  # [C,T,T]
        k = k * (1 - g).T[:, None, :]  # [C,T,T] * [C,1,T]
        total = k if total is None else torch.bmm(k, total)  # [C,T,T] @ [C,T,T]
    assert total is not None
    return total * (lag <= max_lag).to(total.dtype)  # [C,T,T]


def apply_kernel(kernel: Tensor, x: Tensor) -> Tensor:
    """Carry ``x`` ``[R,T,C]`` through ``kernel`` ``[C,T,T]`` -> ``[R,T,C]``."""
    R, T, C = x.shape
    xc = x.permute(2, 1, 0)  # [R,T,C] -> [C,T,R]
    out = torch.bmm(kernel, xc)  # [C,T,T] @ [C,T,R] -> [C,T,R]
    return out.permute(2, 1, 0)  # [C,T,R] -> [R,T,C]


@register("carryover")
class GatedCarryover(nn.Module):
    """Learned multi-stage gated carryover, gates modulated by calendar context.

    Parameters
    ----------
    n_channels : int
    n_context : int
        Width of the context (GRU hidden state) that shifts the gates.
    stages, gate_min, gate_max, max_lag, context_scale
        See :class:`~deepcausalmmm.config.CarryoverConfig`.
    """

    lookup_name = "gated"

    def __init__(
        self,
        n_channels: int,
        n_context: int,
        stages: int = 2,
        gate_min: float = 0.0,
        gate_max: float = 0.9,
        max_lag: int = 26,
        context_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.n_channels, self.stages = n_channels, stages
        self.gate_min, self.gate_max, self.max_lag = gate_min, gate_max, max_lag
        self.context_scale = context_scale
        # First stage starts with moderate decay, later stages near pass-through.
        init = torch.full((stages, n_channels), -2.0)
        init[0] = 0.0
        self.gate_logit = nn.Parameter(init)  # [S,C]
        self.head = nn.Linear(n_context, stages * n_channels)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def gates(self, context: Tensor) -> Tensor:
        """Gates ``[S,T,C]`` from the national context ``[T,H]``."""
        shift = torch.tanh(self.head(context)) * self.context_scale  # [T,H] -> [T,S*C]
        shift = shift.view(-1, self.stages, self.n_channels).transpose(0, 1)  # [T,S,C] -> [S,T,C]
        logit = self.gate_logit[:, None, :] + shift  # [S,1,C] + [S,T,C] -> [S,T,C]
        return self.gate_min + (self.gate_max - self.gate_min) * torch.sigmoid(logit)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        """Carry media ``[R,T,C]`` over time -> ``[R,T,C]``, gates from ``context`` ``[T,H]``."""
        return apply_kernel(carryover_kernel(self.gates(context), self.max_lag), x)
