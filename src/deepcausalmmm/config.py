"""Validated, frozen model configuration.

All numbers the model learns within, or assumes, live here: bounds, decay
horizons, seasonality order, learning rate, epochs, patience. A config is
built from defaults, then merged with (in order) a config file, a nested
``config_overrides`` dict and keyword arguments. Unknown keys and
out-of-range values raise :class:`~deepcausalmmm.exceptions.ConfigError`
naming the key's full path and what is allowed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .exceptions import ConfigError

__all__ = [
    "MMMConfig",
    "build_config",
    "load_config_file",
    "merge_dicts",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegularizationConfig(_Section):
    """Penalty weights, all on scaled (per-region mean = 1) KPI units."""

    l1: float = Field(0.0, ge=0.0, description="L1 on channel and control coefficients.")
    l2: float = Field(1e-3, ge=0.0, description="L2 on channel and control coefficients.")
    coefficient_prior: Literal["ceiling", "marginal"] = Field(
        "ceiling",
        description="What l1/l2 shrink for a channel: its coefficient, the response curve's "
        "ceiling ('ceiling'), or its marginal effect at typical activity ('marginal', scaled to "
        "equal the coefficient for a curve with half-saturation 1 and slope 1).",
    )
    region_shrinkage: float = Field(
        1e-2, ge=0.0, description="L2 pulling region deviations toward shared values."
    )
    season_shrinkage: float = Field(
        1.0, ge=0.0, description="L2 pulling regions' seasonal shapes toward the shared one."
    )
    smoothness: float = Field(
        1e-2, ge=0.0, description="Second-difference penalty on the baseline trend."
    )
    effectiveness: float = Field(
        1e-2, ge=0.0, description="L2 pulling time-varying effectiveness toward 1."
    )
    bound: float = Field(
        1e-3, ge=0.0, description="L2 on the log-expansion of learnable coefficient bounds."
    )
    carryover_pooling: float = Field(
        1e-6,
        ge=0.0,
        description="L2 pulling each channel's carryover gate logits toward the channels' mean "
        "(per stage).",
    )
    hill_slope: float = Field(
        1.0,
        ge=0.0,
        description="L2 on log(Hill slope): a prior toward slope 1, which ties how much of a "
        "channel's level (not only its variation) is media.",
    )


class CarryoverConfig(_Section):
    """Gated linear carryover s_t = g_t s_{t-1} + (1 - g_t) x_t, stacked in stages."""

    stages: int = Field(2, ge=1, le=3, description="Stacked gated stages (2 gives a delayed peak).")
    gate_min: float = Field(0.0, ge=0.0, lt=1.0)
    gate_max: float = Field(0.9, gt=0.0, lt=1.0)
    max_lag: int = Field(26, ge=0, le=260, description="Weeks after which an impulse is cut to 0.")
    context_scale: float = Field(
        0.0,
        ge=0.0,
        le=5.0,
        description="Max shift of gate logits by the context GRU (0: constant gates, the GRU is "
        "not run unless effectiveness is on). Off by default: calendar-moved gates let a weak "
        "channel's carryover follow the season, and it took credit for other channels' seasonal "
        "effect (causal benchmark root errors up to 19% with 0.5, at most 14% with 0; MMM-panel "
        "forecasts about equal).",
    )

    @model_validator(mode="after")
    def _ordered(self) -> CarryoverConfig:
        if self.gate_min >= self.gate_max:
            raise ValueError(
                f"carryover.gate_min ({self.gate_min}) must be < carryover.gate_max "
                f"({self.gate_max})"
            )
        return self


class ContextConfig(_Section):
    """The GRU over calendar features and controls that shapes gates and effectiveness."""

    hidden: int = Field(8, ge=1, le=128, description="GRU width.")
    calendar_order: int = Field(2, ge=1, le=10, description="Yearly harmonics fed to the GRU.")


class SaturationConfig(_Section):
    """Hill saturation bounds; half-saturation in units of the region's mean spend."""

    half_sat_min: float = Field(0.1, gt=0.0)
    half_sat_max: float = Field(5.0, gt=0.0)
    slope_min: float = Field(0.5, gt=0.0)
    slope_max: float = Field(3.0, gt=0.0)

    @model_validator(mode="after")
    def _ordered(self) -> SaturationConfig:
        if self.half_sat_min >= self.half_sat_max:
            raise ValueError(f"saturation.half_sat_min must be < saturation.half_sat_max, found "
                             f"{self.half_sat_min} and {self.half_sat_max}; e.g. 0.1 and 5.0 (the defaults)")
        if self.slope_min >= self.slope_max:
            raise ValueError(f"saturation.slope_min must be < saturation.slope_max, found {self.slope_min} "
                             f"and {self.slope_max}; e.g. 0.5 and 3.0 (the defaults)")
        return self


class EffectivenessConfig(_Section):
    """Time-varying effectiveness m_c(t) in [low, high] from the context GRU."""

    low: float = Field(0.8, ge=0.0, le=1.0)
    high: float = Field(1.2, ge=1.0)
    enabled: bool = Field(
        False,
        description="Off by default: on the MMM panel it made holdout forecasts depend on the "
        "GRU's random initialisation (WAPE 5.5-7.6% over seeds 0-4 vs 4.9-5.0% without).",
    )


class CoefficientConfig(_Section):
    """Channel coefficients beta_c in (0, bound]; the bound itself is learnable."""

    beta_max: float = Field(
        1.0, gt=0.0, description="Initial upper bound of a channel's effect (share of KPI)."
    )
    learnable_bound: bool = True
    bound_max_expansion: float = Field(
        3.0, ge=1.0, description="The learned bound stays within beta_max / x .. beta_max * x."
    )
    negative_channels: tuple[str, ...] = Field(
        (), description="Channels whose effect may be negative (invariant 3 switch)."
    )


class BaselineConfig(_Section):
    """Per-region baseline: level + piecewise-linear trend + Fourier seasonality."""

    knot_spacing: int = Field(8, ge=2, le=520, description="Weeks between trend knots.")
    fourier_order: int = Field(2, ge=0, le=10)
    period: float = Field(52.1775, gt=1.0, description="Seasonality period in time steps.")
    day_of_week: Literal["auto", "on", "off"] = Field(
        "auto",
        description="A day-of-week pattern in the baseline (weekly harmonics 1-3: any pattern over "
        "the seven days, shared by the regions with deviations shrunk like the yearly shape's). "
        "'auto': on for dated rows less than a week apart (daily data), off otherwise; 'on' "
        "needs such dates.",
    )
    min_season_cycles: float = Field(
        1.1,
        ge=0.0,
        description="Fit the Fourier seasonality, and let the calendar GRU move the carryover "
        "gates, only when the fitted weeks span at least this many periods (less than one "
        "cycle cannot separate a yearly shape from the trend, and barely one (52-57 weeks of "
        "weekly data) hardly does: the weeks seen twice are all that tie the shape's level to the "
        "trend); 0 always fits them.",
    )
    short_knot_spacing: int = Field(
        2,
        ge=2,
        le=520,
        description="Weeks between trend knots when the fit spans under min_season_cycles periods. "
        "Without a seasonal cycle the KPI's national path cannot be told from shared budget "
        "seasons; a fine trend absorbs it, so media are credited with the variation that "
        "departs from it. On the MMM panel, fits on 31-48 weeks forecast 9.3-11.7% WAPE with "
        "knots every 2 weeks vs 10.3-15.4% every 8.",
    )
    extrapolation: Literal["flat", "damped"] = "flat"
    damping: float = Field(0.9, gt=0.0, lt=1.0, description="Per-step slope decay if damped.")
    forecast_anchor: bool = Field(
        True,
        description="Forecasts after the fitted period start from where the KPI left the fit: "
        "each region's residual (KPI minus fit) in its last fitted week is added to the "
        "baseline and fades by the residuals' week-to-week persistence (a pooled AR(1) "
        "coefficient, model.residual_persistence_) per week ahead. Fitting and every "
        "contribution and effect are unchanged (the offset cancels in counterfactual "
        "differences). On the MMM panel it lowered the holdout WAPE at 24 of 26 cutoffs "
        "(weeks 20-100, summed 203.6 to 192.4 points).",
    )


class ControlsConfig(_Section):
    """Linear control effects; signs may be fixed per control ('+' or '-')."""

    signs: dict[str, Literal["+", "-"]] = Field(default_factory=dict)


class TrainingConfig(_Section):
    """Optimisation settings."""

    epochs: int = Field(800, ge=1, le=100_000)
    learning_rate: float = Field(0.03, gt=0.0, le=10.0)
    patience: int = Field(60, ge=1, description="Epochs without validation gain before stopping.")
    min_delta: float = Field(1e-5, ge=0.0)
    validation_weeks: int = Field(
        0,
        ge=0,
        description="Last weeks held out for early stopping (0: stop when the training loss "
        "plateaus). Used only when the panel has at least 4x as many weeks.",
    )
    refit_epochs_fraction: float = Field(
        0.25,
        ge=0.0,
        le=2.0,
        description="After early stopping, continue on all weeks for this fraction of the "
        "best epoch count, so the last weeks inform the baseline level.",
    )
    region_weighting: Literal["equal", "size", "sqrt_size"] = Field(
        "size",
        description="Loss weight of a region's weeks (KPI in region-mean units): 'size' weights "
        "by mean KPI, so errors count as they do in volume metrics (WAPE, pooled R^2, national "
        "totals) and in shares of the KPI; 'sqrt_size' and 'equal' give small regions more say.",
    )
    optimizer: Literal["adam", "lbfgs"] = "adam"
    lbfgs_steps: int = Field(10, ge=1, le=1000, description="L-BFGS iterations per epoch.")
    polish_steps: int = Field(
        500,
        ge=0,
        le=10_000,
        description="L-BFGS iterations on the full objective after Adam stops (0: none). "
        "Settles how channel effects split against the baseline level, which Adam leaves "
        "moving when the loss plateaus.",
    )
    polish_shapes: bool = Field(
        True,
        description="Let the polish also move the trend and seasonal shapes (off: they keep "
        "where Adam stopped, which leaves channels' yearly budget swings in the baseline's "
        "seasonal shape).",
    )
    max_grad_norm: float = Field(10.0, gt=0.0)
    threads: int = Field(
        0,
        ge=0,
        description="Torch CPU threads (0: every core this process may run on). Fits run side by "
        "side on the same cores should use 1 each: threads that wait on each other's cores made "
        "two concurrent 2-thread fits on 2 cores 3.5 times slower than alone (1 thread each: "
        "1.2 times).",
    )


class DataConfig(_Section):
    """Requirements on input panels."""

    min_weeks: int = Field(8, ge=2, description="Fewest weeks a fitted panel may have.")
    stale_weight: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="Loss weight of weeks that look like filled gaps (every channel 0 and the "
        "KPI exactly equal to an adjacent week's) when fit gets no sample_weight; 1 disables.",
    )
    continue_fills: bool = Field(
        True,
        description="Forecast a region whose fitted weeks end in filled-looking cells at its "
        "repeated KPI value, for future rows that are dark too (every channel 0): its feed has "
        "stopped and the panel keeps filling the last value. False: the model's own forecast.",
    )


class GraphConfig(_Section):
    """Channel graph among channel activities (see README, "Channel graph")."""

    mode: Literal["notears", "none", "fixed"] = "notears"
    max_lag: int = Field(2, ge=0, le=8, description="Weeks of lagged channel-to-channel influence.")
    own_lags: int = Field(
        4,
        ge=0,
        le=13,
        description="Weeks of each channel's own past in its equation (persistence, never an edge; "
        "at least max_lag), so that a channel's own dynamics, e.g. multi-week flights, cannot pass "
        "for a lagged influence of another channel whose activity tracks them.",
    )
    lag_min_t: float = Field(
        2.0,
        ge=0.0,
        description="Once a pair of channels is an edge (some lag with |t| >= min_t), its other "
        "lags (1..max_lag) are kept where |t| >= lag_min_t: a parent whose influence spreads "
        "over weeks (a lag kernel) keeps its later, weaker weeks. No pair is added. Set it to "
        "min_t to judge every lag alone.",
    )
    lambda1: float = Field(0.02, ge=0.0, description="NOTEARS L1 weight (standardised activity).")
    threshold: float = Field(
        0.05, ge=0.0, description="Edges with |standardised weight| below this are dropped."
    )
    min_t: float = Field(
        4.0, ge=0.0, description="Learned edges need |t| >= min_t in the least-squares refit."
    )
    forbidden: tuple[tuple[str, str], ...] = Field((), description="(parent, child) pairs never linked.")
    required: tuple[tuple[str, str], ...] = Field((), description="(parent, child) pairs always kept.")
    roots: tuple[str, ...] = Field((), description="Channels that cannot have parents (e.g. planned TV).")
    edges: tuple[tuple[str, str], ...] = Field(
        (), description="mode='fixed': the (parent, child) structure; weights are estimated."
    )
    regional_cycles: bool = Field(
        True,
        description="Test for budget cycles faster than half a year that regions run with their own "
        "phases (a pooled F-test of yearly harmonics 3-4) and remove them before learning; they "
        "otherwise link nearly every pair of channels.",
    )
    shared_driver: bool = Field(
        True,
        description="When every pair of channels correlates alike (a regional budget moving all "
        "channels week to week), learn the graph again without that shared part and keep the "
        "sparser graph.",
    )
    equal_cv: bool = Field(
        True,
        description="Where the non-Gaussian orientation score leaves a same-week edge's direction "
        "unsettled (under 95% of region resamples agree: near-Gaussian activity), choose the "
        "directions under which every channel's exogenous part varies alike relative to its mean "
        "(equal coefficients of variation), if the CVs they imply are within 1.25 times each "
        "other; where they are not, the same on log activity (channels that lift each other in "
        "proportion), re-deciding the group's settled same-week edges too. False: keep the "
        "score's direction however weak.",
    )
    dark_weeks: bool = Field(
        True,
        description="Let the weeks in which one channel is dark while another runs settle a "
        "same-week edge's direction: a child is active whenever its parent is (its activity is "
        "its own part plus what the parent induces), so a channel often dark while the other "
        "runs is the parent, provided the other's activity also falls in those weeks by about "
        "what its slope on the first implies (else the first may be a flighted channel the other "
        "lifts in proportion, and the other rules decide). Overrides the non-Gaussian score and "
        "the equal-CV rule; pairs of channels such a parent adds to are then scored again with "
        "it partialled out (a common flighted parent is the least Gaussian part of both). False: "
        "those rules alone (the package up to session 32).",
    )
    time_order: bool = Field(
        True,
        description="Turn a same-week edge whose direction none of the rules above settled (the "
        "non-Gaussian score's support under 0.95, no equal-CV, dark-weeks or given direction) to "
        "run as the same pair's lagged edges do, where those run one way only: a parent whose "
        "influence spreads over weeks (a lag kernel) shows its direction by time order, while "
        "its same-week part may be too small for the score. False: the score's coin flip stays "
        "(the package up to session 33).",
    )
    regional_orientation: bool = Field(
        True,
        description="Also compute the non-Gaussian orientation score on each region's own "
        "standardised activity (its own scales and its own regression of one channel on the "
        "other), and let it set a same-week edge's direction where it is settled (95% of region "
        "resamples) against the score on the activity pooled over regions: where regions differ "
        "in their channel mix, the pooled child is a mixture of scales, heavier-tailed than its "
        "parent, and the pooled score reads it as the cause. Needs 3 regions or more. False: the "
        "pooled score alone (the package up to session 25).",
    )
    national: bool = Field(
        True,
        description="Learn the edges out of channels bought nationally (under 5% of their "
        "de-trended movements differ between regions, e.g. national TV) from the national "
        "week-to-week series, to channels with regional movements; the regional activity the "
        "rest of the graph is learned from holds nothing of such a channel. A plan that moves "
        "channels together nationally looks the same as influence there: get_dag_edges marks "
        "these edges ('national'). Only plans that move week to week are learned from; edges out "
        "of a smooth national plan are neither learned nor, when given, weighed (left at 0, with "
        "a warning). False: none learned; required or fixed edges that involve a national "
        "channel are estimated from the national series either way.",
    )
    adjust_controls: bool = Field(
        True,
        description="Partial the fit's controls out of the activity the graph is learned from "
        "(prepared like it): a control that moves two channels together, e.g. a regional "
        "promotion raising search and social, is a common cause, not influence. False: controls "
        "are ignored by the graph (as before session 19).",
    )
    negative_edges: bool = Field(
        False,
        description="Allow learned edges with negative weights (one channel's activity lowering "
        "another's). Off: channels that trade budget week to week (a region's spend moved "
        "between them) correlate negatively, which is a planner's choice, not influence, and "
        "would otherwise read as edges. Required and fixed edges take the sign the data give.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> GraphConfig:
        clash = set(self.forbidden) & set(self.required)
        if clash:
            raise ValueError(f"graph.forbidden and graph.required share {sorted(clash)}; keep each pair "
                             "in one of the two lists")
        if self.mode == "fixed" and not self.edges:
            raise ValueError("graph.mode='fixed' needs graph.edges, a list of [parent, child] pairs")
        return self


class CalibrationConfig(_Section):
    """How strongly lift tests (``fit(lift_tests=...)``) pull the model, and ROI priors."""

    weight: float = Field(
        1.0, ge=0.0, description="Multiplier on the lift tests' likelihood (1: a test counts as "
        "data of its stated standard error; 0: tests are only reported, not fitted)."
    )
    tested_prior: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Multiplier on the coefficient prior (regularization.l1/l2) of channels with a "
        "lift test: 0 drops it, so that the experiment, not the prior, sets the channel's level; 1 "
        "keeps the full prior, which weighs about as much as one 10%-precise test on a 40-region, "
        "3-year panel (tested channels then ended up to 3.6 standard errors from their tests).",
    )
    roi_priors: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description="Prior belief in channels' ROI, {channel: [mean, sd]}: the channel's total "
        "effect over the fitted weeks (get_channel_effects()['total'], mediated part included) per "
        "unit of its spend there (fit(spend=...) or its X values), as a Gaussian measurement of "
        "that total with standard error sd x spend (weighed as a lift test is). A channel with an "
        "ROI prior drops its coefficient prior as a lift-tested one does (tested_prior). For "
        "always-on channels, whose level the data leave to the prior (get_identification()).",
    )

    @model_validator(mode="after")
    def _valid_roi_priors(self) -> CalibrationConfig:
        for channel, (mean, sd) in self.roi_priors.items():
            if not (math.isfinite(mean) and mean >= 0):
                raise ValueError(f"calibration.roi_priors['{channel}'] has mean {mean}; give a finite ROI "
                                 ">= 0 (KPI units per unit of spend)")
            if not (math.isfinite(sd) and sd > 0):
                raise ValueError(f"calibration.roi_priors['{channel}'] has sd {sd}; give a finite "
                                 "standard deviation > 0 (e.g. 0.3 x the mean for a loose prior)")
        return self


class MMMConfig(_Section):
    """Complete model configuration (see README, "Configuration")."""

    loss: Literal["mse", "huber"] = "huber"
    huber_delta: float | Literal["auto"] = Field(
        "auto",
        description="Huber threshold in scaled KPI units (region mean = 1), or 'auto': per region, "
        "1.345 x the MAD (x 1.4826) of its KPI around a centred 5-week running median, about 0.9 "
        "noise sd for Gaussian noise (the running median follows part of the noise), so that a "
        "large region whose KPI is smooth is robust to its one-week spikes and a noisy one is not "
        "treated as all outliers.",
    )
    regularization: RegularizationConfig = RegularizationConfig()
    carryover: CarryoverConfig = CarryoverConfig()
    context: ContextConfig = ContextConfig()
    saturation: SaturationConfig = SaturationConfig()
    effectiveness: EffectivenessConfig = EffectivenessConfig()
    coefficients: CoefficientConfig = CoefficientConfig()
    baseline: BaselineConfig = BaselineConfig()
    controls: ControlsConfig = ControlsConfig()
    training: TrainingConfig = TrainingConfig()
    data: DataConfig = DataConfig()
    graph: GraphConfig = GraphConfig()
    calibration: CalibrationConfig = CalibrationConfig()

    @model_validator(mode="after")
    def _positive_delta(self) -> MMMConfig:
        if self.huber_delta != "auto" and not self.huber_delta > 0:
            raise ValueError(f"huber_delta must be 'auto' or a number > 0, found {self.huber_delta}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON-serialisable)."""
        return json.loads(self.model_dump_json())


def merge_dicts(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge ``update`` into a copy of ``base``."""
    out: dict[str, Any] = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_dicts(out[key], value)
        else:
            out[key] = value
    return out


def _allowed_keys(path: tuple[Any, ...]) -> list[str]:
    model: Any = MMMConfig
    for part in path[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None or not isinstance(field.annotation, type):
            return []
        if not issubclass(field.annotation, BaseModel):
            return []
        model = field.annotation
    return sorted(model.model_fields)


def _format_error(err: ValidationError) -> str:
    lines = []
    for item in err.errors():
        loc = tuple(item["loc"])
        path = ".".join(str(p) for p in loc) or "<root>"
        if item["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(loc))
            lines.append(f"unknown config key '{path}'; allowed keys here: {allowed}")
        else:
            found = item.get("input")
            lines.append(f"config key '{path}': {item['msg']} (found {found!r})")
    return "; ".join(lines) + ". Fix the key or value (defaults: README, 'Configuration')."


def _dotted_to_nested(flat: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.replace("__", ".").split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(
                    f"config key '{key}' sets a value inside '{part}', which another key of the same "
                    f"call sets to a value ({node!r}), not a section; give '{part}' once, as a section "
                    "of keys"
                )
        node[parts[-1]] = value
    return nested


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``) or JSON config file into a nested dict.

    Raises
    ------
    ConfigError
        If the file is missing, unreadable or not a mapping.
    """
    p = Path(path)
    if not p.is_file():
        what = "is not a file" if p.exists() else "does not exist"
        raise ConfigError(f"config file '{p}' {what}; pass the path of a YAML or JSON file")
    text = p.read_text()
    try:
        if p.suffix.lower() in {".yaml", ".yml"}:
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # parse errors of either format
        raise ConfigError(f"config file '{p}' could not be parsed: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file '{p}' must hold a mapping of sections, found {type(data).__name__}"
        )
    return data


def build_config(
    base: MMMConfig | Mapping[str, Any] | str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> MMMConfig:
    """Merge defaults, ``base`` (config, dict or file path), ``overrides`` and kwargs.

    Keyword arguments may use dotted or double-underscore paths, e.g.
    ``training__epochs=200`` or ``**{"training.epochs": 200}``.

    Raises
    ------
    ConfigError
        For unknown keys or out-of-range values; the message names the path.
    """
    if isinstance(base, MMMConfig):
        merged: dict[str, Any] = base.to_dict()
    elif isinstance(base, (str, Path)):
        merged = load_config_file(base)
    elif base is None:
        merged = {}
    elif isinstance(base, Mapping):
        merged = dict(base)
    else:
        raise ConfigError(
            f"`config` must be None, a dict, a file path or an MMMConfig; found "
            f"{type(base).__name__}"
        )
    if overrides is not None:
        if not isinstance(overrides, Mapping):
            raise ConfigError(
                f"`config_overrides` must be a nested dict, found {type(overrides).__name__}"
            )
        merged = merge_dicts(merged, overrides)
    if kwargs:
        merged = merge_dicts(merged, _dotted_to_nested(kwargs))
    try:
        return MMMConfig.model_validate(merged)
    except ValidationError as err:
        raise ConfigError(_format_error(err)) from None
