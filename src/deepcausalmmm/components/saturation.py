"""Hill saturation with learned, bounded half-saturation and slope."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .registry import register

__all__ = ["hill", "HillSaturation"]


def hill(x: Tensor, half_sat: Tensor, slope: Tensor) -> Tensor:
    """``x^s / (x^s + k^s)`` for ``x >= 0``; exactly 0 at ``x = 0``, 0.5 at ``x = k``.

    Broadcasts ``half_sat`` and ``slope`` (per channel) over ``x`` ``[..., C]``.
    """
    pos = x > 0
    xs = torch.where(pos, x, torch.ones_like(x))  # avoid log(0) in the unused branch
    # x^s / (x^s + k^s) = sigmoid(s (log x - log k)): stable for tiny and huge x.
    value = torch.sigmoid(slope * (torch.log(xs) - torch.log(half_sat)))
    return torch.where(pos, value, torch.zeros_like(x))


def _bounded(raw: Tensor, low: float, high: float) -> Tensor:
    return low + (high - low) * torch.sigmoid(raw)


@register("saturation")
class HillSaturation(nn.Module):
    """Per-channel Hill curve; parameters kept inside configured bounds."""

    lookup_name = "hill"

    def __init__(
        self,
        n_channels: int,
        half_sat_min: float = 0.1,
        half_sat_max: float = 5.0,
        slope_min: float = 0.5,
        slope_max: float = 3.0,
    ) -> None:
        super().__init__()
        self.bounds = (half_sat_min, half_sat_max, slope_min, slope_max)
        k0 = min(max(1.0, half_sat_min * 1.01), half_sat_max * 0.99)
        s0 = min(max(1.0, slope_min * 1.01), slope_max * 0.99)
        self.k_raw = nn.Parameter(torch.full((n_channels,), _logit(k0, half_sat_min, half_sat_max)))
        self.s_raw = nn.Parameter(torch.full((n_channels,), _logit(s0, slope_min, slope_max)))

    def half_saturation(self) -> Tensor:
        """``[C]``"""
        return _bounded(self.k_raw, self.bounds[0], self.bounds[1])

    def slope(self) -> Tensor:
        """``[C]``"""
        return _bounded(self.s_raw, self.bounds[2], self.bounds[3])

    def forward(self, x: Tensor) -> Tensor:
        """Saturate ``[R,T,C]`` -> ``[R,T,C]`` in [0, 1)."""
        return hill(x, self.half_saturation(), self.slope())


def _logit(value: float, low: float, high: float) -> float:
    p = (value - low) / (high - low)
    return float(torch.logit(torch.tensor(p)).item())
