"""Scalers fitted on training rows only (invariant 5).

* KPI: divided by the region's mean observed KPI, so every region's series has
  mean 1 and model parameters are comparable across geo sizes.
* Channels: divided by the region's mean activity of that channel, so a Hill
  half-saturation of 1 means "the region's typical weekly activity".
* Controls: centred on the region's mean, divided by the pooled within-region
  standard deviation of the control.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .panel import Panel

__all__ = ["PanelScaler"]


@dataclass(frozen=True)
class PanelScaler:
    """Per-region scales; arrays are indexed like the fitted panel's regions."""

    y_scale: np.ndarray  # [R]
    media_scale: np.ndarray  # [R,C]
    control_mean: np.ndarray  # [R,K]
    control_std: np.ndarray  # [K]

    @classmethod
    def fit(cls, panel: Panel) -> PanelScaler:
        """Fit on the observed, positively weighted cells of ``panel``."""
        if panel.y is None:
            raise ValueError("PanelScaler.fit needs a panel with a KPI")
        use = panel.observed & (panel.weight > 0)  # [R,T]
        n = np.maximum(use.sum(axis=1), 1)  # [R]
        y0 = np.where(use, panel.y, 0.0)
        y_scale = np.abs(y0).sum(axis=1) / n  # [R]
        fallback = np.median(y_scale[y_scale > 0]) if (y_scale > 0).any() else 1.0
        y_scale = np.where(y_scale > 0, y_scale, fallback)

        rows = panel.observed[:, :, None]  # [R,T,1]
        n_rows = np.maximum(panel.observed.sum(axis=1), 1)[:, None]  # [R,1]
        media_scale = np.where(rows, panel.media, 0.0).sum(axis=1) / n_rows  # [R,C]
        # A region with no activity in a channel borrows the channel's typical
        # activity per KPI unit, sized to the region.
        ratio = media_scale / y_scale[:, None]  # [R,C]
        for c in range(media_scale.shape[1]):
            pos = ratio[:, c] > 0
            typical = float(np.median(ratio[pos, c])) if pos.any() else 1.0
            media_scale[~pos, c] = typical * y_scale[~pos]
        media_scale = np.where(media_scale > 0, media_scale, 1.0)

        K = panel.control_values.shape[2]
        ctrl = panel.control_values  # [R,T,K]
        control_mean = (np.where(rows, ctrl, 0.0).sum(axis=1) / n_rows) if K else np.zeros(
            (len(panel.regions), 0)
        )  # [R,K]
        if K:
            dev = np.where(rows, ctrl - control_mean[:, None, :], 0.0)  # [R,T,K]
            control_std = np.sqrt((dev**2).sum(axis=(0, 1)) / max(int(panel.observed.sum()), 1))
            control_std = np.where(control_std > 0, control_std, 1.0)  # [K]
        else:
            control_std = np.zeros(0)
        return cls(y_scale, media_scale, control_mean, control_std)

    def media(self, media: np.ndarray, region_idx: np.ndarray) -> np.ndarray:
        """Scale ``media`` ``[R',T,C]`` of the fitted regions ``region_idx``."""
        return media / self.media_scale[region_idx][:, None, :]  # [R',T,C] / [R',1,C]

    def controls(self, ctrl: np.ndarray, region_idx: np.ndarray) -> np.ndarray:
        """Standardise controls ``[R',T,K]``."""
        return (ctrl - self.control_mean[region_idx][:, None, :]) / self.control_std  # [R',T,K]

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays for saving."""
        return {
            "scaler.y_scale": self.y_scale,
            "scaler.media_scale": self.media_scale,
            "scaler.control_mean": self.control_mean,
            "scaler.control_std": self.control_std,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> PanelScaler:
        """Inverse of :meth:`to_arrays`."""
        return cls(
            arrays["scaler.y_scale"],
            arrays["scaler.media_scale"],
            arrays["scaler.control_mean"],
            arrays["scaler.control_std"],
        )
