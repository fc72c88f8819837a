"""The ``DeepCausalMMM`` estimator: the paper's API over the network in ``model.py``."""

from __future__ import annotations

import dataclasses
import numbers
import os
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .analysis.calibration import (
    LIFT_COLUMNS,
    LiftTests,
    parse_lift_tests,
    sum_variance_factor,
    weeks_for_precision,
)
from .analysis.contributions import contributions_frame, kpi_change_frame, summarize_contributions
from .analysis.effects import intervene, pack_moves, reach, rescale
from .analysis.identification import EXTRAPOLATED_FLOOR, identification_table
from .components.carryover import carryover_kernel
from .components.graph import ChannelGraph, bought_nationally, edge_mask, learn_graph
from .components.temporal import (
    DAY_OF_WEEK_ORDER,
    RESIDUAL_BURN_IN,
    day_of_week_features,
    forecast_error_quantiles,
    fourier_features,
    make_knots,
    residual_persistence,
    robust_region_scale,
    season_phase,
    step_days,
    trend_basis,
)
from .config import MMMConfig, build_config
from .constants import DATE, PRIOR_SPREAD, REGION
from .data.history import align_to_fit, default_frequency, extend_history, period_blocks
from .data.panel import (
    NAMED_ARGUMENTS,
    ArrayLike,
    Panel,
    build_panel,
    fmt_date,
    listed,
    stale_cells,
    static_channels,
    take_named_columns,
    twin_channels,
)
from .data.scaling import PanelScaler
from .exceptions import ConfigError, DataError
from .model import Batch, Decomposition, MMMNet
from .plotting.figures import (
    carryover_figure,
    change_figure,
    contributions_figure,
    dag_figure,
    frontier_figure,
    over_time_figure,
    response_figure,
)
from .training import (
    History,
    LiftTerm,
    RoiPriorTerm,
    Target,
    full_precision,
    polish,
    region_huber_delta,
    train,
)

__all__ = ["DeepCausalMMM"]


FD_STEP = 1e-3  # finite-difference step of the budget plan's gradient, in multiplier units
NEWTON_STEP = 1e-2  # central-difference step of the regional plan's slopes and curvatures (multipliers)
NEWTON_ITERATIONS = 200  # the regional plan's most Newton iterations
NEWTON_TOLERANCE = 1e-4  # the regional plan stops when no multiplier moves further than this
Period: TypeAlias = tuple[Any, Any] | str | pd.Period  # (start, end) dates or a calendar period such as "2024Q3"
FRONTIER_LEVELS = (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4)  # get_budget_frontier's budgets (x observed)
BATCH_CELLS = 4_000_000  # activity cells (plans x regions x weeks x channels) evaluated at once


@dataclasses.dataclass
class _Cells:
    """Where a plan, response curve or what-if is evaluated: a cube of region timelines.

    ``scaled`` ``[R',T',C]`` activity in region-scaled units (the channel graph's),
    ``keep`` ``[R',T']`` the cells whose KPI counts, ``where`` ``[R',T']`` the cells
    whose activity a plan scales, ``spend`` ``[R',T',C]`` money per cell,
    ``region_idx`` ``[R']`` each timeline's fitted region, ``controls`` ``[R',T',K]``,
    ``grid`` the dates of ``T'`` (None: the fitted dates) and ``total`` the model's
    KPI (all parts) over ``keep`` where it is already known (None: computed when needed).
    The fitted panel is one such cube; rows of ``X`` placed after (or over) the
    fitted history are another (:meth:`DeepCausalMMM._row_cells`).
    """

    scaled: np.ndarray
    keep: np.ndarray
    where: np.ndarray
    spend: np.ndarray
    region_idx: np.ndarray
    controls: np.ndarray
    grid: pd.Index | None = None
    total: float | None = None
    rows: _PlanRows | None = None

    def spend_by_timeline(self, idx: np.ndarray) -> np.ndarray:
        """``[R',k]`` spend of channels ``idx`` over each timeline's scored cells."""
        return np.where(self.keep[:, :, None], self.spend[:, :, idx], 0.0).sum(axis=1)


@dataclasses.dataclass
class _PlanRows:
    """Plan rows as given, in plain form, to place them again on a bootstrap refit's regions:
    ``X`` the channel columns in fitted order, ``region_idx`` ``[N]`` each row's fitted region,
    ``dates`` ``[N]``, ``controls`` (fitted order) or None."""

    X: pd.DataFrame
    region_idx: np.ndarray
    dates: np.ndarray
    controls: pd.DataFrame | None


@dataclasses.dataclass
class _Refit:
    """One refit of :meth:`DeepCausalMMM.backtest` or the region bootstrap: an unfitted
    ``model``, the arguments of its ``fit``, and warnings (message starts) the refit keeps
    quiet because the fit it repeats already gave them. Runs here or, pickled, in a worker
    process (``n_jobs``)."""

    model: DeepCausalMMM
    fit_args: dict[str, Any]
    quiet: tuple[str, ...] = ()

    def run(self, threads: int | None = None, record: bool = False
            ) -> tuple[DeepCausalMMM, float, list[tuple[type[Warning], str]]]:
        """Fit; return the model, the fit's seconds and, with ``record``, the warnings the fit gave
        as ``(category, text)`` (else they are raised as usual, and the list is empty).
        ``threads``: the worker's share of the cores, used where the configuration leaves
        ``training.threads`` at 0 (every core)."""
        if threads is not None:
            config = build_config(self.model.config).to_dict()
            if config["training"]["threads"] == 0:
                config["training"]["threads"] = threads
                self.model.set_params(config=config)
        start = time.perf_counter()
        with warnings.catch_warnings(record=record) as caught:
            for message in self.quiet:
                warnings.filterwarnings("ignore", message=message, category=UserWarning)
            self.model.fit(**self.fit_args)
        given = [(w.category, str(w.message)) for w in caught or []]
        return self.model, time.perf_counter() - start, given


def _run_refit(task: _Refit, threads: int) -> tuple[DeepCausalMMM, float, list[tuple[type[Warning], str]]]:
    """:meth:`_Refit.run` in a worker process (a module-level function, for pickling), its
    warnings recorded to be raised again in the calling process."""
    return task.run(threads, record=True)


def _weeks_as_rows(panel: Panel, start: int, stop: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray,
                                                                  pd.DataFrame | None]:
    """Weeks ``start:stop`` of ``panel``'s grid as long rows, region by region (row ``r * W + w``
    is region ``r``, week ``start + w``): channel columns under their names (so a refit's warnings
    and tables name them), regions, dates, and the named controls or None."""
    R, W = len(panel.regions), stop - start
    rr, tt = np.repeat(np.arange(R), W), np.tile(np.arange(start, stop), R)
    X = pd.DataFrame(panel.media[rr, tt], columns=panel.channels)
    controls = pd.DataFrame(panel.control_values[rr, tt], columns=panel.controls) if panel.controls else None
    return X, np.asarray(panel.regions, dtype=object)[rr], panel.dates[tt], controls


def _check_n_jobs(n_jobs: Any) -> int | None:
    """``n_jobs`` as given, or ``ConfigError`` where it is not None or a whole number other than 0."""
    if n_jobs is None or (isinstance(n_jobs, numbers.Integral) and not isinstance(n_jobs, bool) and n_jobs != 0):
        return None if n_jobs is None else int(n_jobs)
    raise ConfigError(
        f"`n_jobs` must be None or a whole number other than 0 (1: refits one at a time, -1: one "
        f"process per core), found {n_jobs!r}; e.g. n_jobs=-1"
    )


class DeepCausalMMM(BaseEstimator):
    """Marketing mix model: additive, identifiable, with GRU-shaped carryover.

    Parameters
    ----------
    config : dict, path, MMMConfig or None
        Base configuration (nested dict, YAML/JSON file or config object);
        merged over the defaults. ``fit(config_overrides=...)`` and keyword
        arguments to ``fit`` are merged over it.
    random_state : int
        Seed for parameter initialisation; same data, config and seed give
        bitwise-identical results on CPU.
    device : str
        ``"cpu"`` (default), ``"cuda"`` or ``"auto"`` (cuda when available).
    verbose : bool
        Print training progress.
    n_jobs : int or None
        Processes that run refits side by side: :meth:`backtest`'s cutoffs and
        the region-bootstrap replicates of :meth:`get_effect_intervals` and
        ``optimize_budget(n_boot=...)``. ``None`` (default) or 1: one at a
        time, each on every core; ``-1``: one process per core, ``-2`` all but
        one, as in scikit-learn (``None`` follows a surrounding
        ``joblib.parallel_config(n_jobs=...)``). Each process trains on its
        share of the cores (``training.threads`` 0), so results equal the
        one-at-a-time results up to the float rounding that a different
        thread count gives (exactly, with ``training.threads`` set). Warnings
        a refit gives in a worker are raised again here. On a GPU refits run one
        at a time.

    Attributes
    ----------
    config_ : MMMConfig
    net_ : MMMNet
    scaler_ : PanelScaler
    panel_ : Panel
        The fitted data on its regular grid.
    spend_ : ndarray ``[R,T,C]``
        Spend per cell used for ROI.
    graph_model_ : ChannelGraph
        Learned channel graph (weights per lag, region-scaled units).
    graph_roots_ : list of str
    graph_ : DataFrame
        Channel adjacency (rows parents, columns children).
    history_ : History
    channels_, controls_ : list of str
    regions_ : list
    lift_tests_ : DataFrame or None
        The lift tests given to ``fit`` with the fitted model's lift for each
        (see :meth:`lift_test_report`); None without tests.
    residual_persistence_ : float
        Pooled AR(1) coefficient (0-0.99) of the fit's residuals; a forecast's
        offset from the last fitted residual fades by this factor per week.
    interval_calibration_ : dict or None
        The forecast intervals' out-of-sample calibration (:meth:`calibrate_intervals`:
        ``level``, ``scale``, ...); None until it runs, and again after each ``fit``.
    """

    def __init__(
        self,
        config: Mapping[str, Any] | str | Path | MMMConfig | None = None,
        *,
        random_state: int = 0,
        device: str = "cpu",
        verbose: bool = False,
        n_jobs: int | None = None,
    ) -> None:
        self.config = config
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        regions: ArrayLike | None = None,
        dates: ArrayLike | None = None,
        controls: ArrayLike | Sequence[str] | None = None,
        config_overrides: Mapping[str, Any] | None = None,
        sample_weight: ArrayLike | None = None,
        spend: pd.DataFrame | None = None,
        lift_tests: pd.DataFrame | None = None,
        **config_kwargs: Any,
    ) -> DeepCausalMMM:
        """Fit the model to a panel.

        Parameters
        ----------
        X : DataFrame, 2-D array or 3-D array ``[regions, weeks, channels]``
            Channel activity (spend or impressions), one row per (region, week).
        y : array-like
            KPI, one value per row (``[regions, weeks]`` for a 3-D ``X``).
        regions : array-like or str, optional
            Region label per row; None means one national series.
        dates : array-like or str, optional
            Date (or integer period) per row; None means row order is time order.
        controls : DataFrame, array, or ``X`` column name(s), optional
            ``y``, ``regions``, ``dates`` and ``sample_weight`` may also name a column of a
            DataFrame ``X`` (``fit(df[cols], "kpi", regions="region", dates="date")``);
            named columns are not channels.
        config_overrides : dict, optional
            Nested overrides, e.g. ``{"loss": "huber", "regularization": {"l1": 1e-4}}``.
        sample_weight : array-like, optional
            Loss weight per row (0 ignores a row's KPI; its media still carry over).
        spend : DataFrame, optional
            Spend per row for channels whose ``X`` values are impressions (columns
            named like channels); used for ROI. Channels not given use ``X``.
        lift_tests : DataFrame or list of dicts, optional
            Geo experiments to calibrate to, one row per test: ``channel``,
            ``start``, ``end`` (inclusive, same kind of value as ``dates``),
            ``lift`` (KPI lost over the test's regions and weeks with the channel
            switched off), ``lift_se`` (its standard error) and optionally
            ``regions`` (a list; missing means all regions). The model's lift for
            each test (see :meth:`lift_test_report`) is pulled toward the
            measured one as if the test were data of that precision
            (``calibration.weight`` scales this), and a tested channel's
            coefficient prior is multiplied by ``calibration.tested_prior``
            (default 0: dropped, the experiment sets its level; a warning says
            so when the channel's most precise test has a standard error above
            30% of its lift). Use it for channels whose level the observational
            data cannot pin, such as always-on channels (:meth:`get_identification`).
            Without an experiment, config ``calibration.roi_priors`` ({channel: [mean,
            sd]}) gives a belief about a channel's ROI the same standing
            (:meth:`roi_prior_report`). Tests and priors are weighed against the
            fitted cells discounted for the residuals' week-to-week persistence.
        **config_kwargs
            Further overrides by path, e.g. ``training__epochs=200``.

        Returns
        -------
        self

        Raises
        ------
        DataError, ConfigError
            For invalid input; the estimator is left unchanged.
        """
        cfg = build_config(self.config, config_overrides, **config_kwargs)
        X, named = take_named_columns(X, y=y, regions=regions, dates=dates, sample_weight=sample_weight)
        y, regions, dates, sample_weight = (named[k] for k in NAMED_ARGUMENTS)
        panel = build_panel(
            X, y, regions, dates, controls, sample_weight, purpose="fit", min_weeks=cfg.data.min_weeks
        )
        self._check_config_names(cfg, panel)
        if sample_weight is None:
            panel = _down_weight_stale(panel, cfg.data.stale_weight)
        cfg = _resolved_day_of_week(cfg, panel.dates)
        _warn_sub_weekly(panel.dates, cfg)
        cfg = _applied_calendar_effects(cfg, panel.dates)
        unweighted = [panel.regions[i] for i in np.flatnonzero((panel.weight * panel.observed).sum(axis=1) == 0)]
        if unweighted:
            warnings.warn(
                f"region(s) {listed(unweighted, 5)} have no KPI with positive `sample_weight`; their level "
                "and scale are borrowed from other regions, so their predictions are unreliable",
                UserWarning,
                stacklevel=2,
            )
        spend_grid = self._spend_grid(spend, panel, regions, dates)
        _check_roi_priors(cfg, panel, spend_grid)
        lifts = None
        if lift_tests is not None:
            lifts = parse_lift_tests(lift_tests, panel.channels, panel.regions, panel.dates)
            _warn_weak_tests(cfg, lifts, panel.channels)
        device = self._resolve_device()
        _check_n_jobs(self.n_jobs)  # used by later refits; a bad value fails here, not after the fit
        scaler = PanelScaler.fit(panel)
        graph_start = time.perf_counter()
        graph = self._learn_graph(cfg, panel, scaler)
        graph_seconds = time.perf_counter() - graph_start
        R, T, C = panel.shape
        self._say(f"panel: {R} regions x {T} weeks x {C} channels, {len(panel.controls)} controls; "
                  f"device {device}")
        self._say(f"channel graph ({cfg.graph.mode}): {int((graph.weights.sum(axis=0) != 0).sum())} "
                  f"linked pair(s) in {graph_seconds:.2f} s")
        threads = cfg.training.threads or available_cores()
        old_threads = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            with torch.random.fork_rng(devices=[]), full_precision():
                torch.manual_seed(self.random_state)
                net, knots, history = self._train(cfg, panel, scaler, device, graph, lifts, spend_grid)
        finally:
            torch.set_num_threads(old_threads)
        net.carryover.release()  # the media kept for training's evaluations
        net.eval()
        self._say(f"fit: {history.epochs_run} + {history.refit_epochs} Adam epochs, {history.polish_evals} "
                  f"polish evaluations, {history.seconds:.1f} s")
        # Commit fitted state only after everything succeeded.
        self.config_ = cfg
        self.panel_ = panel
        self.scaler_ = scaler
        self.knots_ = knots
        self.net_ = net
        self.history_ = history
        self.channels_ = list(panel.channels)
        self.controls_ = list(panel.controls)
        self.regions_ = list(panel.regions)
        self.spend_ = spend_grid
        self.graph_model_ = graph
        self.graph_seconds_ = graph_seconds
        self._set_graph_frames()
        self._set_forecast_anchor()
        self.lift_tests_ = None if lifts is None else self._lift_report(lifts)
        return self

    def _set_graph_frames(self) -> None:
        g = self.graph_model_
        self.graph_ = pd.DataFrame(g.weights.sum(axis=0), index=self.channels_, columns=self.channels_)
        self.graph_roots_ = [self.channels_[i] for i in g.roots]

    def fit_frame(
        self,
        df: pd.DataFrame,
        *,
        target: str,
        channels: Sequence[str],
        date: str | None = None,
        region: str | None = None,
        controls: Sequence[str] | None = None,
        weight: str | None = None,
        config_overrides: Mapping[str, Any] | None = None,
        lift_tests: pd.DataFrame | None = None,
        spend: Mapping[str, str] | None = None,
        **config_kwargs: Any,
    ) -> DeepCausalMMM:
        """Fit from one long DataFrame with named columns.

        Parameters
        ----------
        df : DataFrame
            One row per (region, date).
        target, date, region, weight : str
            Column names (date/region/weight optional).
        channels, controls : list of str
            Column names of channels and controls.
        lift_tests : DataFrame, optional
            Geo experiments to calibrate to (see :meth:`fit`).
        spend : dict, optional
            Channel -> column holding its spend, for channels measured in impressions
            (ROI and budget plans then use money; see ``spend`` in :meth:`fit`).

        Raises
        ------
        DataError
            For missing columns, or ``spend`` keys that are not among ``channels``.
        """
        spend = dict(spend or {})
        unknown = [c for c in spend if c not in channels]
        if unknown:
            raise DataError(
                f"`spend` names {unknown}, which are not among the channels {list(channels)}; map "
                "each impressions channel to its spend column, e.g. {'tv': 'tv_spend'}"
            )
        cols = [target, *channels, *(controls or []), *(c for c in (date, region, weight) if c),
                *spend.values()]
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise DataError(
                f"`df` lacks column(s) {missing}; available columns: {list(df.columns)}"
            )
        roles = {"channels": list(channels), "controls": list(controls or []),
                 "date/region/weight": [c for c in (date, region, weight) if c]}
        for role, names in roles.items():
            if target in names:
                raise DataError(
                    f"the target column {target!r} is also among the {role} {names}; the KPI cannot "
                    f"explain itself. Drop {target!r} from the {role}"
                )
        return self.fit(
            df[list(channels)],
            df[target].to_numpy(),
            regions=df[region].to_numpy() if region else None,
            dates=df[date].to_numpy() if date else None,
            controls=df[list(controls)] if controls else None,
            sample_weight=df[weight].to_numpy() if weight else None,
            config_overrides=config_overrides,
            spend=pd.DataFrame({c: df[col].to_numpy() for c, col in spend.items()}) if spend else None,
            lift_tests=lift_tests,
            **config_kwargs,
        )

    # --------------------------------------------------------------- prediction
    def predict(
        self,
        X: ArrayLike,
        regions: ArrayLike | None = None,
        dates: ArrayLike | None = None,
        controls: ArrayLike | Sequence[str] | None = None,
    ) -> np.ndarray:
        """KPI for the rows of ``X`` (original units), in input row order.

        Rows are placed on the fitted regions' timelines: rows inside the fitted
        period replace the fitted inputs (a counterfactual), rows after it
        continue the history, with carryover from the fitted weeks. A forecast
        (rows after the fitted period) starts from where the KPI left the fit:
        the region's last residual is added to its baseline and fades by
        ``residual_persistence_`` per week ahead (``baseline.forecast_anchor``).

        Without ``dates`` each region's rows are its weeks 0, 1, ... of the
        fitted period in row order (a replay or counterfactual of the fit); a
        warning says so when a region's row count differs from its fitted
        weeks, since holdout rows are then not forecasts. Pass ``dates``
        continuing the fit's (e.g. integer periods ``T, T+1, ...``) to forecast.
        """
        table, new, _ = self._decompose_rows(X, regions, dates, controls)
        if dates is None:
            counts = np.bincount(new.row_index[:, 0], minlength=len(new.regions))  # rows per region
            if (counts != len(self.panel_.dates)).any():
                warnings.warn(
                    f"predict got no `dates`, so each region's rows were placed on its fitted weeks "
                    f"0, 1, ... (the fit spans {len(self.panel_.dates)} weeks; these rows cover "
                    f"{int(counts.min())}-{int(counts.max())} per region): a replay of the fitted "
                    "period, not a forecast. To forecast, pass `dates` that continue the fit's "
                    f"(the fit ends at {self.panel_.dates[-1]})",
                    UserWarning,
                    stacklevel=2,
                )
        return table["prediction"].to_numpy()

    def score(
        self,
        X: ArrayLike,
        y: ArrayLike,
        regions: ArrayLike | None = None,
        dates: ArrayLike | None = None,
        controls: ArrayLike | Sequence[str] | None = None,
        sample_weight: ArrayLike | None = None,
    ) -> float:
        """R^2 of :meth:`predict` on the given rows (scikit-learn's ``score``; pooled over rows).

        Rows after the fitted period are forecasts, as in :meth:`predict`. For
        forecast accuracy beside a naive floor, see :meth:`backtest`. With a DataFrame
        ``X``, ``y`` and ``sample_weight`` may name its columns, as in :meth:`fit`.
        """
        from sklearn.metrics import r2_score

        X, named = take_named_columns(X, y=y, regions=regions, dates=dates, sample_weight=sample_weight)
        y, regions, dates, sample_weight = (named[k] for k in ("y", "regions", "dates", "sample_weight"))
        pred = self.predict(X, regions, dates, controls)
        try:
            target = np.asarray(y, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise DataError(f"`y` must be numeric, one KPI value per row of `X`, found dtype "
                            f"{np.asarray(y).dtype}; convert it with pd.to_numeric") from None
        if not np.isfinite(target).all():
            raise DataError(f"`y` has {int((~np.isfinite(target)).sum())} NaN/infinite value(s); score only "
                            "rows with a measured KPI")
        if target.shape != pred.shape:
            raise DataError(f"`y` has {target.size} values but `X` has {pred.size} rows; pass one KPI value "
                            "per row of `X`")
        return float(r2_score(target, pred, sample_weight=sample_weight))

    def predict_interval(
        self,
        X: ArrayLike,
        regions: ArrayLike | None = None,
        dates: ArrayLike | None = None,
        controls: ArrayLike | Sequence[str] | None = None,
        level: float = 0.9,
    ) -> pd.DataFrame:
        """:meth:`predict` with an interval per row from the fit's pseudo-forecast errors.

        A row ``h`` weeks after its region's last fitted week gets the
        quantiles ``(1 - level) / 2`` and ``(1 + level) / 2`` of the errors the
        forecast rule would have made ``h`` weeks ahead from every fitted week
        (trend held as forecasts hold it, the residual fading by
        ``residual_persistence_``; see
        :func:`~deepcausalmmm.components.temporal.forecast_error_quantiles`),
        scaled by the region's residual scale. Rows within the fitted period
        (replays, counterfactuals) get the quantiles of the residuals
        themselves. The errors are in-sample: they include noise, the residual's
        persistence and the trend's drift, not errors in the fitted seasonal
        shape, in the media and control effects or in future inputs, and they
        treat weeks as exchangeable. On the MMM panel's 86 cutoffs (weeks
        20-105, 13 weeks ahead) nominal 90% intervals held 88.5% of the holdout
        cells (81.6% with under 58 weeks of history, 93.7-94.6% with more); on
        small panels whose forecast is biased, far fewer (README, "Forecast
        intervals"). Check them on your own data with :meth:`backtest`
        (``coverage_pct``). After :meth:`calibrate_intervals` at this ``level``,
        forecast rows' bounds are scaled around the prediction by its out-of-sample
        factor (``attrs["calibrated"]``); at another level they stay the fit's own,
        with a warning.

        Returns
        -------
        DataFrame
            One row per input row, in input order: ``region``, ``date``,
            ``prediction`` (as :meth:`predict`), ``lower``, ``upper`` and
            ``horizon`` (weeks after the region's last fitted week; 0 within
            the fitted period); ``attrs["level"]`` and ``attrs["calibrated"]``.

        Raises
        ------
        DataError
            If ``level`` is not in (0, 1).
        """
        return self._decompose_with_intervals(X, regions, dates, controls, level)[1]

    def _decompose_with_intervals(
        self,
        X: ArrayLike,
        regions: ArrayLike | None,
        dates: ArrayLike | None,
        controls: ArrayLike | Sequence[str] | None,
        level: float,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The rows' decomposition (as :meth:`get_channel_contributions`) and their
        :meth:`predict_interval` frame, from one forward pass (the CLI's ``predict``)."""
        _check_level(level)
        table, _, (fit_r, tt) = self._decompose_rows(X, regions, dates, controls)
        T = len(self.panel_.dates)
        horizon = np.where(tt >= T, tt - self._anchor_week[fit_r], 0)  # [N]
        steps = np.unique(horizon)
        probs = np.array([(1 - level) / 2, (1 + level) / 2])
        scale, q = self._interval_quantiles(steps, probs)  # [R_fit], [H,2]
        at = np.searchsorted(steps, horizon)  # [N]
        unit = scale[fit_r] * self.scaler_.y_scale[fit_r]  # [N] KPI units per scaled error
        pred = table["prediction"].to_numpy()
        low, high = q[at, 0] * unit, q[at, 1] * unit  # [N] around the prediction
        cal = getattr(self, "interval_calibration_", None)
        calibrated = False
        if cal is not None and np.any(horizon > 0):
            if abs(cal["level"] - level) < 1e-9:  # forecast rows scaled by the out-of-sample factor
                factor = np.where(horizon > 0, cal["scale"], 1.0)
                low, high, calibrated = low * factor, high * factor, True
            else:
                warnings.warn(
                    f"the forecast intervals were calibrated at level {cal['level']:g} (calibrate_intervals); at "
                    f"level {level:g} they are the fit's own, uncalibrated. Pass level={cal['level']:g}, or "
                    f"calibrate at {level:g}", UserWarning, stacklevel=3)
        out = pd.DataFrame({
            REGION: table.index.get_level_values(REGION),
            DATE: table.index.get_level_values(DATE),
            "prediction": pred,
            "lower": pred + low,
            "upper": pred + high,
            "horizon": horizon.astype(int),
        })
        out.attrs.update({"level": float(level), "calibrated": calibrated})
        return table, out

    def _interval_quantiles(self, horizons: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per fitted region its error scale ``[R]``, and error quantiles ``[H,P]`` (see ``predict_interval``)."""
        cfg = self.config_
        resid, weight = self._fit_residuals()  # [R,T]
        resid = resid / self.scaler_.y_scale[:, None]  # region-relative units
        R, T = self.panel_.observed.shape
        basis = trend_basis(np.arange(T, dtype=float), self.knots_)  # [T,J] within the fit
        device = next(self.net_.parameters()).device
        with torch.no_grad():
            knots = self.net_.baseline.trend_weights(torch.arange(R, device=device)).double().cpu().numpy()  # [R,J]
        trend = knots @ basis.T  # [R,J] @ [J,T] -> [R,T]
        persistence = self.residual_persistence_ if cfg.baseline.forecast_anchor else 0.0
        damping = cfg.baseline.damping if cfg.baseline.extrapolation == "damped" else None
        return forecast_error_quantiles(resid, weight, trend, persistence, horizons, probs, damping)

    def get_channel_contributions(
        self,
        X: ArrayLike | None = None,
        regions: ArrayLike | None = None,
        dates: ArrayLike | None = None,
        controls: ArrayLike | Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Additive decomposition per (region, date) in KPI units.

        Columns: one per channel, then ``baseline``, ``controls`` (sum of control
        effects) and ``prediction``; for every row the parts sum to the
        prediction. These are *direct* contributions: each channel's effect
        through its own activity. Without arguments the fitted rows are covered;
        with ``X`` (same forms as :meth:`predict`) the given rows.
        """
        check_is_fitted(self, "net_")
        if X is None:
            return self._decompose_fitted()
        return self._decompose_rows(X, regions, dates, controls)[0]

    def contribution_summary(self) -> pd.DataFrame:
        """Per channel over the fitted rows: ``contribution``, ``share_of_media``, ``share_of_kpi``."""
        table = self.get_channel_contributions()
        assert self.panel_.y is not None  # a fitted panel always holds the KPI
        kpi = float(np.nansum(np.where(self.panel_.observed, self.panel_.y, 0.0)))
        return summarize_contributions(table, self.channels_, kpi)

    def get_unexplained_weeks(self, threshold: float = 3.0) -> pd.DataFrame:
        """Weeks whose national KPI the fit misses far more than it usually does.

        A week that lifts or drops the KPI everywhere (a holiday, a promotion, an outage) and
        that the model is not told about is credited to whichever channels ran then; these
        are the candidates for an event control (a 0/1 column in ``controls``).

        Parameters
        ----------
        threshold : float
            Robust z of the national residual (its distance from the median residual in units
            of 1.4826 median absolute deviations) at or above which a week is listed.

        Returns
        -------
        DataFrame indexed by ``date``, largest ``|z|`` first: ``kpi`` and ``prediction``
        (summed over the regions' measured cells: observed, not filled gaps, weight above 0),
        ``residual``, ``residual_pct`` (of the KPI) and ``z``. Empty when no week reaches the
        threshold.

        Raises
        ------
        DataError
            If ``threshold`` is not a positive number.
        """
        check_is_fitted(self, "net_")
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not threshold > 0:
            raise DataError(
                f"`threshold` must be a positive number (a robust z), found {threshold!r}; e.g. "
                "get_unexplained_weeks(threshold=3.0)"
            )
        p = self.panel_
        assert p.y is not None  # a fitted panel always holds the KPI
        prediction = self._fitted_prediction()  # [R,T]
        cells = p.measured() & (p.weight > 0)  # [R,T]
        kpi = np.where(cells, p.y, 0.0).sum(axis=0)  # [T]
        fit = np.where(cells, prediction, 0.0).sum(axis=0)  # [T]
        weeks = cells.any(axis=0)  # [T]
        residual = kpi - fit
        centre = float(np.median(residual[weeks]))
        spread = 1.4826 * float(np.median(np.abs(residual[weeks] - centre)))
        z = (residual - centre) / max(spread, 1e-12 * max(float(np.abs(kpi).max()), 1.0))
        table = pd.DataFrame(
            {"kpi": kpi, "prediction": fit, "residual": residual,
             "residual_pct": 100 * residual / np.where(kpi != 0, np.abs(kpi), 1.0), "z": z},
            index=pd.Index(p.dates, name="date"),
        )[weeks]
        out = table[np.abs(table["z"]) >= float(threshold)]
        return out.iloc[np.argsort(-np.abs(out["z"].to_numpy()), kind="stable")]

    def get_kpi_change(
        self,
        base: Period,
        compare: Period | None = None,
        regions: Sequence[Any] | None = None,
        by_region: bool = False,
        matched: bool = True,
        n_boot: int = 0,
        level: float = 0.9,
        random_state: int = 0,
        prior_spread: float = PRIOR_SPREAD,
        *,
        X: ArrayLike | None = None,
        dates: ArrayLike | None = None,
        controls: ArrayLike | Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """What moved the KPI from one fitted period to another, part by part.

        The fitted decomposition summed over each period's observed cells, and the
        difference: the baseline split into its ``level`` (each region's constant: it
        changes only when the periods hold different numbers of region-weeks), ``trend``
        and ``season`` (the yearly shape, with the day-of-week pattern on daily data),
        then each channel's direct contribution, each control, and ``unexplained`` (the
        actual KPI minus the model's). ``change`` sums to the actual KPI's change exactly.
        A channel's row counts its own activity's effect, whichever period bought it
        (carryover from the base period's spend lands in the compare period); what it
        drives through other channels (TV lifting branded search) is in theirs, and in
        its own ``total_effect_change``, the change of its total effect
        (:meth:`get_channel_effects` over each period), which counts it: those do not add
        up across channels.

        Parameters
        ----------
        base, compare : (start, end) or a calendar period
            Fitted dates, both included (integer periods for a fit without dates), or a
            calendar period such as ``"2024Q3"``, ``"2024-07"`` or ``"2024"`` (the fitted
            dates within it). Periods of equal length (a quarter against the same quarter a
            year earlier, which takes the season out) compare like with like. ``compare``
            may be left out when rows ``X`` give the later period.
        regions : list or one label, optional
            Restrict to these fitted regions.
        by_region : bool
            One block of rows per region, indexed by (``region``, ``part``).
        matched : bool, default True
            Like for like: only regions observed in every week of both periods count (a
            region whose feed starts or stops in between would show its whole KPI as
            change). False: every observed cell of each period.
        X, dates, controls
            Rows of your own as the later period instead of ``compare``: a plan or forecast
            (next quarter's flighting, as for :meth:`predict`, ``dates`` required; rows inside
            the fit are a counterfactual of those weeks). ``regions`` then labels the rows
            (or names ``X``'s region column) and the earlier period ``base`` is summed over
            their regions. The rows' parts are the model's forecast: ``unexplained`` is the
            earlier period's alone (the later one has no KPI yet), and two baseline parts may
            join: ``forecast anchor`` (the fading last residual, :meth:`predict`) and
            ``filled`` (dark rows of a region whose feed stopped, ``data.continue_fills``).
            ``total_effect_change`` counts each channel switched off over the whole timeline,
            its carryover from the fitted weeks into the rows included, as
            :meth:`get_channel_effects` does. Not with ``n_boot``; with ``matched``, every
            row's region must be observed in every week of ``base``.
        n_boot, level, random_state, prior_spread
            With ``n_boot >= 2``: how sure each part's share of the change is. The model is
            refitted on ``n_boot`` region-bootstrap replicates, each with its own prior
            strengths, as in :meth:`get_effect_intervals` (with ``n_jobs`` side by side), and
            each replicate's ``change_pct`` per part over the same periods gives the
            percentile interval at ``level`` (``change_pct_lo`` / ``change_pct_hi``) and
            ``change_pct_sd``. Not with ``regions`` or ``by_region`` (replicates redraw the
            regions).

        Returns
        -------
        DataFrame indexed by ``part`` (baseline parts first, then channels, controls and
        ``unexplained``): ``kind`` (``baseline``, ``channel``, ``control`` or ``residual``),
        ``base`` and ``compare`` (KPI summed over the period's observed cells), ``change``,
        ``change_pct`` (in per cent of the base period's KPI: the rows add up to the KPI's
        per cent change) and ``total_effect_change`` (channels only). ``attrs``:
        ``base_kpi``, ``compare_kpi``, ``change``, ``change_pct``, ``base_cells`` and
        ``compare_cells`` (observed region-weeks), ``base_dates`` and ``compare_dates`` (the
        first and last fitted dates in each, as text), ``regions`` (how many regions count)
        and ``left_out`` (the selected regions ``matched`` left out); with ``n_boot`` also
        ``n_boot``, ``level``, ``prior_spread``, ``change_pct_lo`` / ``change_pct_hi`` (the
        KPI's own change over the replicates) and ``seconds``.

        Raises
        ------
        DataError
            If ``base`` or ``compare`` is not a (start, end) pair or holds no fitted dates,
            for unknown regions, when ``matched`` leaves no region, or for ``n_boot``,
            ``level`` or ``prior_spread`` as :meth:`get_effect_intervals` rejects them, or
            ``n_boot`` with ``regions`` or ``by_region``. Warns when the periods
            hold different numbers of observed region-weeks (the extra weeks' KPI then shows
            as change, mostly in ``level``).
        """
        check_is_fitted(self, "net_")
        if X is not None or compare is None:
            if X is None or compare is not None:
                raise DataError(
                    "give the later period either as `compare` (fitted dates) or as rows `X` (a plan or "
                    f"forecast), not {'both' if X is not None else 'neither'}; e.g. compare=('2024-10-07', "
                    "'2024-12-30'), or X=next_quarter with regions=, dates= and controls=")
            if int(n_boot):
                raise DataError("`n_boot` cannot be combined with rows `X`: bootstrap replicates redraw the "
                                "fitted regions, which the rows name; set n_boot=0")
            return self._kpi_change_rows(base, X, regions, dates, controls, by_region, matched)
        n_boot, prior_spread = self._bootstrap_setup(
            n_boot, level, prior_spread,
            [n for n, given in (("regions", regions is not None), ("by_region", by_region)) if given])
        started = time.perf_counter()
        base_keep = self._cells(regions, base, name="base")  # [R,T]
        compare_keep = self._cells(regions, compare, name="compare")  # [R,T]
        left_out: list[Any] = []
        if _check_flag(matched, "matched"):
            base_all = self._cells(regions, base, observed=False, name="base")  # the period's cells, observed or not
            compare_all = self._cells(regions, compare, observed=False, name="compare")
            full = (base_keep == base_all).all(axis=1) & (compare_keep == compare_all).all(axis=1)  # [R]
            selected = base_all.any(axis=1)  # [R] regions asked for
            if not (full & selected).any():
                raise DataError(
                    "no selected region is observed in every week of both `base` and `compare`, so there is "
                    "nothing to compare like for like; choose periods the regions cover, or pass matched=False "
                    "to sum every observed cell of each period"
                )
            left_out = [self.regions_[r] for r in np.flatnonzero(selected & ~full)]
            base_keep &= full[:, None]
            compare_keep &= full[:, None]
        n_base, n_compare = int(base_keep.sum()), int(compare_keep.sum())
        _warn_uneven(base_keep.sum(axis=1), compare_keep.sum(axis=1), self.regions_)
        p = self.panel_
        R, T, _ = p.shape
        everywhere = np.arange(R)
        parts, dec = self._change_parts(self._batch(self.config_, p, self.scaler_, self.knots_, everywhere,
                                                   p.media, p.control_values, np.arange(T, dtype=float)),
                                        everywhere)
        assert p.y is not None  # a fitted panel always holds the KPI
        table = kpi_change_frame(parts, np.where(p.observed, p.y, 0.0), base_keep, compare_keep,
                                 self.regions_, by_region)
        totals = self._total_effects(p.media, everywhere, np.stack([base_keep, compare_keep]), dec["channels"],
                                     lambda media: self._fitted_parts(media)["channels"])  # [2,R,C]
        rows = np.flatnonzero(base_keep.any(axis=1) | compare_keep.any(axis=1))  # the regions counted
        counted = [self.regions_[r] for r in rows]
        _finish_change(table, self._effect_series(totals[1, rows] - totals[0, rows], counted, by_region), by_region,
                       base_cells=n_base, compare_cells=n_compare, regions=len(counted), left_out=left_out,
                       **{f"{name}_dates": "..".join(fmt_date(d) for d in p.dates[keep.any(axis=0)][[0, -1]])
                          for name, keep in (("base", base_keep), ("compare", compare_keep))})
        if n_boot:
            self._attach_change_intervals(table, base, compare, matched, n_boot, level, random_state,
                                          prior_spread)
            table.attrs["seconds"] = time.perf_counter() - started
        return table

    def _change_parts(
        self, batch: Batch, reg_idx: np.ndarray
    ) -> tuple[list[tuple[str, str, np.ndarray]], dict[str, np.ndarray]]:
        """:meth:`get_kpi_change`'s parts of the decomposition of ``batch`` (KPI units ``[R',T]``):
        the baseline's ``level``, ``trend`` and ``season``, each channel and each control; and the
        decomposition itself (:meth:`_to_kpi`, for a forecast's anchor and fills)."""
        dec = self._to_kpi(self._run_net(batch), reg_idx)
        R, T = dec["baseline"].shape
        on = batch.to(next(self.net_.parameters()).device)
        with torch.no_grad(), full_precision():
            baseline_terms = self.net_.baseline.parts(on.basis, on.fourier, on.region_idx)  # level, trend, season
        scale = self.scaler_.y_scale[reg_idx][:, None]  # [R',1]
        terms = [np.broadcast_to(t.double().cpu().numpy(), (R, T)) * scale for t in baseline_terms]
        parts = [(name, "baseline", v) for name, v in zip(("level", "trend", "season"), terms, strict=True)]
        parts += [(c, "channel", dec["channels"][:, :, i]) for i, c in enumerate(self.channels_)]
        parts += [(k, "control", dec["controls"][:, :, i]) for i, k in enumerate(self.controls_)]
        used = {c for c in [*self.channels_, *self.controls_]}
        return [(f"baseline {name}" if kind == "baseline" and name in used else name, kind, v)
                for name, kind, v in parts], dec

    def _kpi_change_rows(
        self, base: Period, X: ArrayLike, regions: Any, dates: ArrayLike | None,
        controls: ArrayLike | Sequence[str] | None, by_region: bool, matched: bool,
    ) -> pd.DataFrame:
        """:meth:`get_kpi_change` with rows ``X`` as the later period (a plan or forecast)."""
        p = self.panel_
        assert p.y is not None  # a fitted panel always holds the KPI
        new, reg_idx, pos, grid, media, ctrl = self._rows_on_history(X, regions, dates, controls)
        names = [self.regions_[i] for i in reg_idx]
        base_keep = self._cells(names, base, name="base")[reg_idx]  # [R',T] the rows' regions
        if _check_flag(matched, "matched"):
            full = (base_keep == self._cells(names, base, observed=False, name="base")[reg_idx]).all(axis=1)
            if not full.all():
                missing = [n for n, f in zip(names, full, strict=True) if not f]
                raise DataError(
                    f"the rows' regions {listed(missing, 5)} are not observed in every week of `base`, so the "
                    "comparison would not be like for like; drop their rows, or pass matched=False to sum "
                    "every observed week of `base`")
        R_, T = base_keep.shape
        per_rows = np.bincount(new.row_index[:, 0], minlength=len(names))  # [R'] rows per region
        _warn_uneven(base_keep.sum(axis=1), per_rows, names, later="the rows `X`", stacklevel=4)
        def channels_on(ctrl_: np.ndarray, grid_: pd.Index | None) -> Any:
            """The decomposition's channels ``[R',T,C]`` of these regions for media on a timeline
            (the fitted one, or the rows' grid)."""
            def run(media_: np.ndarray) -> np.ndarray:
                return self._to_kpi(self._run_net(self._batch(
                    self.config_, p, self.scaler_, self.knots_, reg_idx, media_, ctrl_,
                    np.arange(media_.shape[1], dtype=float), dates=grid_)), reg_idx)["channels"]
            return run

        fitted, fdec = self._change_parts(self._batch(self.config_, p, self.scaler_, self.knots_, reg_idx,
                                                      p.media[reg_idx], p.control_values[reg_idx],
                                                      np.arange(T, dtype=float)), reg_idx)
        planned, dec = self._change_parts(self._batch(self.config_, p, self.scaler_, self.knots_, reg_idx,
                                                      media, ctrl, np.arange(len(grid), dtype=float), dates=grid),
                                          reg_idx)
        r, t = new.row_index[:, 0], new.row_index[:, 1]
        tt = pos[t]
        plain = dec["baseline"].copy()
        self._anchor_forecast(dec, reg_idx, r, tt)
        anchored = dec["baseline"].copy()
        if self.config_.data.continue_fills:
            self._continue_fills(dec, new, reg_idx, r, t, tt)
        rows_keep = np.zeros(plain.shape, dtype=bool)  # [R',T'] the rows' cells
        rows_keep[r, tt] = True
        extra = [(name, v) for name, v in (("forecast anchor", anchored - plain), ("filled", dec["baseline"] - anchored))
                 if np.any(v[rows_keep] != 0)]
        # one timeline per region: the fitted weeks (base), then the rows' grid (compare)
        width = T + plain.shape[1]
        parts = [(name, kind, np.concatenate([f, c], axis=1))
                 for (name, kind, f), (_, _, c) in zip(fitted, planned, strict=True)]
        parts[3:3] = [(name, "baseline", np.concatenate([np.zeros((R_, T)), v], axis=1)) for name, v in extra]
        model_rows = sum(v[:, T:] for _, _, v in parts)  # [R',T'] the rows' modelled KPI
        actual = np.concatenate([np.where(base_keep, p.y[reg_idx], 0.0), model_rows], axis=1)
        base_mask = np.zeros((R_, width), dtype=bool)
        base_mask[:, :T] = base_keep
        compare_mask = np.zeros((R_, width), dtype=bool)
        compare_mask[:, T:] = rows_keep
        table = kpi_change_frame(parts, actual, base_mask, compare_mask, names, by_region)
        # total effects as get_channel_effects counts them: each channel off over the whole
        # timeline (for the rows, its carryover from the fitted weeks into them included)
        base_totals = self._total_effects(p.media[reg_idx], reg_idx, base_keep, fdec["channels"],
                                          channels_on(p.control_values[reg_idx], None))  # [R',C]
        planned_totals = self._total_effects(media, reg_idx, rows_keep, dec["channels"], channels_on(ctrl, grid))
        return _finish_change(
            table, self._effect_series(planned_totals - base_totals, names, by_region), by_region,
            base_cells=int(base_keep.sum()),
            compare_cells=int(rows_keep.sum()), regions=len(names), left_out=[],
            base_dates="..".join(fmt_date(d) for d in p.dates[base_keep.any(axis=0)][[0, -1]]),
            compare_dates="..".join(fmt_date(d) for d in grid[rows_keep.any(axis=0)][[0, -1]]))

    def _effect_series(self, values: np.ndarray, regions: list[Any], by_region: bool) -> pd.Series:
        """``values`` ``[R',C]`` (per region of ``regions`` and channel) as a Series by channel
        (summed over the regions) or, ``by_region``, by (region, channel)."""
        if by_region:
            return pd.Series(values.reshape(-1), index=pd.MultiIndex.from_product(
                [regions, self.channels_], names=["region", "channel"]))
        return pd.Series(values.sum(axis=0), index=pd.Index(self.channels_, name="channel"))

    def _attach_change_intervals(
        self, table: pd.DataFrame, base: Period, compare: Period, matched: bool,
        n_boot: int, level: float, random_state: int, prior_spread: float,
    ) -> None:
        """:meth:`get_kpi_change`'s bootstrap columns: each replicate's ``change_pct`` per part over
        the same periods (NaN for a replicate that holds no cell to compare)."""
        reps = np.full((n_boot, len(table)), np.nan)
        totals = np.full(n_boot, np.nan)
        for b, (_, refit) in enumerate(self._bootstrap_refits(n_boot, random_state, prior_spread)):
            try:
                with warnings.catch_warnings():  # the fit warned of uneven periods already
                    warnings.filterwarnings("ignore", message="`base` holds")
                    again = refit.get_kpi_change(base, compare, matched=matched)
            except DataError:  # the drawn regions hold no week of a period (or none throughout both)
                continue
            reps[b] = again["change_pct"].reindex(table.index).to_numpy()
            totals[b] = again.attrs["change_pct"]
        used = np.isfinite(totals)
        if used.sum() >= 2:
            lo, hi, sd = _spread(reps[used], level)
            total_lo, total_hi, _ = _spread(totals[used], level)
        else:
            lo = hi = sd = np.full(len(table), np.nan)
            total_lo = total_hi = np.asarray(np.nan)
        table["change_pct_lo"], table["change_pct_hi"], table["change_pct_sd"] = lo, hi, sd
        table.attrs.update({"n_boot": n_boot, "n_used": int(used.sum()), "level": level,
                            "prior_spread": prior_spread, "change_pct_lo": float(total_lo),
                            "change_pct_hi": float(total_hi)})

    def get_identification(self, threshold: float = EXTRAPOLATED_FLOOR) -> pd.DataFrame:
        """Per channel: whether the data observe its level or the curve's shape supplies it.

        A channel's contribution and total effect are its response from zero
        activity up to the activity it had. The data show that stretch of the
        curve only where the channel's activity falls far below its typical
        value (dark weeks, flights, regional holdouts); for an always-on
        channel they show only how the KPI follows its swings around typical
        activity, and the level under them comes from the Hill curve's
        assumed shape (its slope prior) and the coefficient prior.
        On simulated panels those channels carry most of the share error
        (README, "What the data identify"), so they are the ones to calibrate with a
        lift test (``fit(lift_tests=...)``).

        Parameters
        ----------
        threshold : float, default 0.3
            ``level`` is ``"extrapolated"`` when the channel's activity floor
            (10th percentile of activity over each region's mean activity) is
            at or above this, e.g. an always-on channel that never drops below
            30% of its typical activity.

        Returns
        -------
        DataFrame indexed by channel: ``activity_floor``, ``dark_share``
        (region-weeks at or below 5% of the region's mean), ``level``
        (``"observed"``, ``"extrapolated"``, ``"no variation"``: the same activity in
        every week of each region, so nothing shows its effect and its contribution is fixed
        at 0 unless a lift test measures it, or ``"no activity"``), ``lift_tested`` (a lift
        test on the channel was given to ``fit``), ``roi_prior`` (the fit had an ROI prior on it,
        ``calibration.roi_priors``) and ``bought_nationally`` (under 5% of its
        de-trended movements differ between regions: its effect is seen only through the
        national week-to-week series, and its edges in the channel graph come from that series;
        see the README's "Channel graph") and ``moves_with`` (the channels whose activity is the
        same as this one's up to a factor per region, comma-separated, or ""; ``fit`` warns of
        them: the data cannot split their effects, see the README's "Data").

        Raises
        ------
        DataError
            If ``threshold`` is not a number in (0, 1].
        """
        check_is_fitted(self, "net_")
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not 0 < threshold <= 1:
            raise DataError(
                f"`threshold` must be a number in (0, 1] (a share of typical activity), found "
                f"{threshold!r}; e.g. get_identification(threshold=0.3)"
            )
        lifts = getattr(self, "lift_tests_", None)
        tested = [] if lifts is None else list(lifts["channel"].unique())
        p = self.panel_
        table = identification_table(p.media, p.measured(), self.channels_, float(threshold), tested)
        national = self.graph_model_.national
        if national is None:  # the graph did not look (mode "none", one channel, too few region-weeks)
            national = bought_nationally(self.scaler_.media(p.media, np.arange(len(p.regions))),
                                         p.measured(), season_phase(p.dates, self.config_.baseline.period))
        table.insert(table.columns.get_loc("lift_tested") + 1, "roi_prior",
                     [c in self.config_.calibration.roi_priors for c in self.channels_])
        table["bought_nationally"] = np.asarray(national, dtype=bool)
        twins: dict[str, list[str]] = {c: [] for c in self.channels_}
        for a, b, _ in twin_channels(p.media, p.measured()):
            twins[self.channels_[a]].append(self.channels_[b])
            twins[self.channels_[b]].append(self.channels_[a])
        table["moves_with"] = [", ".join(twins[c]) for c in self.channels_]
        return table

    def backtest(
        self,
        X: ArrayLike,
        y: ArrayLike,
        regions: ArrayLike | None = None,
        dates: ArrayLike | None = None,
        controls: ArrayLike | Sequence[str] | None = None,
        n_splits: int = 3,
        horizon: int = 13,
        sample_weight: ArrayLike | None = None,
        level: float = 0.9,
    ) -> pd.DataFrame:
        """Rolling-origin backtest: refit on the weeks before each cutoff, forecast ``horizon`` weeks.

        Each refit is a clone of this estimator (same config and seed) and sees
        nothing from its holdout weeks; holdout media and controls are used,
        with carryover from the training weeks. Metrics are computed on the
        observed holdout cells, next to the naive per-region last-value forecast,
        and the forecast intervals of :meth:`predict_interval` at ``level`` are
        scored on the same cells. With ``n_jobs`` (see the class) the cutoffs'
        refits run side by side in worker processes.

        Returns
        -------
        DataFrame
            One row per cutoff: ``cutoff``, ``train_weeks``, ``wape_pct``, ``r2``,
            ``national_mape_pct``, ``naive_wape_pct``, ``naive_r2``,
            ``naive_national_mape_pct``, ``coverage_pct`` (holdout cells inside
            their interval), ``interval_width_pct`` (the intervals' summed width
            over the summed absolute KPI), ``fit_seconds``; ``attrs["level"]``.

        Raises
        ------
        DataError
            If the cutoffs leave too few training weeks, or ``level`` is not in (0, 1).
        """
        _check_level(level)
        from .analysis.backtest import (
            forecast_metrics,
            interval_metrics,
            last_value_forecast,
            rolling_cutoffs,
        )

        cfg = build_config(self.config)
        panel = build_panel(X, y, regions, dates, controls, sample_weight, purpose="fit",
                            min_weeks=cfg.data.min_weeks)
        assert panel.y is not None
        T = len(panel.dates)
        try:
            cutoffs = rolling_cutoffs(T, n_splits, horizon, cfg.data.min_weeks)
        except ValueError as exc:
            raise DataError(str(exc)) from None
        y0 = np.where(panel.observed, panel.y, 0.0)
        weight = panel.weight * panel.observed
        rows = []
        bands = self._holdout_bands(panel, cutoffs, horizon, level, stale=sample_weight is None)
        for i, (cut, seconds, pred, lower, upper) in enumerate(bands, start=1):
            end = cut + horizon
            naive_pred = last_value_forecast(
                y0[:, :cut], panel.observed[:, :cut] & (weight[:, :cut] > 0), end - cut)
            # Regions with no usable training week have no naive forecast; skip them for both.
            mask = panel.observed[:, cut:end] & np.isfinite(naive_pred)
            ours = forecast_metrics(panel.y[:, cut:end], pred, mask)
            naive = forecast_metrics(panel.y[:, cut:end], naive_pred, mask)
            band_scores = interval_metrics(panel.y[:, cut:end], lower, upper, mask)
            rows.append({"cutoff": panel.dates[cut], "train_weeks": cut, **ours,
                         **{f"naive_{k}": v for k, v in naive.items()}, **band_scores,
                         "fit_seconds": seconds})
            self._say(f"backtest cutoff {i}/{len(cutoffs)} ({cut} training weeks, to "
                      f"{fmt_date(panel.dates[cut - 1])}): fit {seconds:.1f} s, holdout WAPE {ours['wape_pct']:.2f}% "
                      f"(naive last value {naive['wape_pct']:.2f}%)")
        out = pd.DataFrame(rows)
        out.attrs["level"] = float(level)
        return out

    def _holdout_bands(
        self, panel: Panel, cutoffs: Sequence[int], horizon: int, level: float, stale: bool = True,
    ) -> Iterator[tuple[int, float, np.ndarray, np.ndarray, np.ndarray]]:
        """Rolling-origin refits of a clone of this estimator on ``panel``'s weeks before each
        cutoff (side by side with ``n_jobs``): per cutoff ``(cut, fit seconds, prediction,
        lower, upper)``, each ``[R,H]`` over the next ``horizon`` weeks, the bounds those of
        :meth:`predict_interval` at ``level`` (the refit's own, uncalibrated). With ``stale``
        the training weeks are weighted as ``fit`` weighs them without ``sample_weight``; else
        the panel's weights are used as given."""
        from sklearn.base import clone

        assert panel.y is not None
        cfg = build_config(self.config)
        y0 = np.where(panel.observed, panel.y, 0.0)
        weight = panel.weight * panel.observed
        _check_n_jobs(self.n_jobs)

        def tasks() -> Iterator[_Refit]:
            for cut in cutoffs:
                w_cut = weight[:, :cut]
                if stale:  # as fit would: judged on the training weeks only
                    w_cut, _ = _stale_weighted(y0[:, :cut], panel.media[:, :cut],
                                               panel.observed[:, :cut], w_cut, cfg.data.stale_weight)
                X_cut, regions_cut, dates_cut, controls_cut = _weeks_as_rows(panel, 0, cut)
                yield _Refit(clone(self).set_params(verbose=False),  # a line per cutoff from the caller
                             dict(X=X_cut, y=y0[:, :cut].ravel(), regions=regions_cut, dates=dates_cut,
                                  controls=controls_cut, sample_weight=w_cut.ravel()))

        refits = self._refits(tasks(), len(cutoffs), self._refit_workers(len(cutoffs)))
        R = len(panel.regions)
        for cut, (model, seconds) in zip(cutoffs, refits, strict=True):
            end = cut + horizon
            X_ahead, regions_ahead, dates_ahead, controls_ahead = _weeks_as_rows(panel, cut, end)
            band = model.predict_interval(X_ahead, regions=regions_ahead, dates=dates_ahead,
                                          controls=controls_ahead, level=level)  # rows in input order
            pred, lower, upper = (band[k].to_numpy().reshape(R, end - cut)  # [R*H] -> [R,H]
                                  for k in ("prediction", "lower", "upper"))
            yield cut, seconds, pred, lower, upper

    def calibrate_intervals(
        self, n_splits: int = 3, horizon: int = 13, level: float = 0.9, narrow: bool = False,
    ) -> pd.DataFrame:
        """Widen the forecast intervals so that they held ``level`` out of sample.

        :meth:`predict_interval` reads its bounds from the fit's in-sample pseudo-forecast
        errors, which leave out errors in the fitted season's shape and in the forecast's own
        level, so on short or shifting panels they hold fewer future weeks than their level
        says (README, "Known limits"). This refits the model on the fitted weeks before
        ``n_splits`` rolling cutoffs (as :meth:`backtest`, on the fitted panel: no data to pass),
        forecasts the ``horizon`` weeks after each, and finds for every observed holdout cell
        the factor its interval at ``level`` would have needed around the forecast to hold the
        actual KPI (split-conformal scores). The factor needed is their
        ``ceil((n + 1) level) / n`` quantile over the ``n`` cells; the factor applied is that,
        or 1 where it is smaller unless ``narrow`` (intervals that held more than ``level`` at
        the cutoffs are kept: earlier cutoffs fit on fewer weeks, and on the MMM panel the
        in-sample intervals held more at early cutoffs than later). From then on
        :meth:`predict_interval` at this ``level`` scales every forecast row's bounds around
        its prediction by it (rows within the fitted weeks keep theirs). It is saved with the
        model; a new ``fit`` clears it. Costs ``n_splits`` refits (side by side with ``n_jobs``).

        Returns
        -------
        DataFrame
            One row per cutoff: ``cutoff``, ``train_weeks``, ``cells`` (observed holdout
            cells), ``coverage_pct`` (inside the refit's own interval) and
            ``calibrated_coverage_pct`` (inside it scaled by the factor); ``attrs`` holds the
            calibration: ``level``, ``scale`` (applied), ``scale_needed``, ``n_cells``,
            ``n_splits``, ``horizon``, ``coverage_pct`` and ``calibrated_coverage_pct`` over all
            the cells (also in ``interval_calibration_``).

        Raises
        ------
        DataError
            If ``level`` is not in (0, 1), ``narrow`` is not True or False, or the cutoffs
            leave too few training weeks.
        """
        from .analysis.backtest import rolling_cutoffs

        check_is_fitted(self, "net_")
        _check_level(level)
        _check_flag(narrow, "narrow")
        p = self.panel_
        assert p.y is not None
        try:
            cutoffs = rolling_cutoffs(len(p.dates), n_splits, horizon, self.config_.data.min_weeks)
        except ValueError as exc:
            raise DataError(str(exc)) from None
        per_cut: list[tuple[int, np.ndarray]] = []
        # the panel's weights are the fit's own (stale weeks already down-weighted)
        for i, (cut, seconds, pred, lower, upper) in enumerate(
                self._holdout_bands(p, cutoffs, horizon, level, stale=False), start=1):
            mask = p.observed[:, cut:cut + horizon] & (p.weight[:, cut:cut + horizon] > 0)
            per_cut.append((cut, _conformity(p.y[:, cut:cut + horizon], pred, lower, upper)[mask]))
            self._say(f"interval calibration cutoff {i}/{len(cutoffs)} ({cut} training weeks): fit {seconds:.1f} s, "
                      f"{(per_cut[-1][1] <= 1).mean() * 100:.1f}% of {mask.sum()} holdout cells inside")
        scores = np.sort(np.concatenate([sc for _, sc in per_cut]))
        n = len(scores)
        if n == 0:
            raise DataError("the cutoffs left no observed holdout cell to calibrate the intervals on; fit more "
                            "weeks, or choose a shorter `horizon`")
        needed = float(scores[min(n, int(np.ceil((n + 1) * level))) - 1])
        scale = needed if narrow else max(needed, 1.0)
        table = pd.DataFrame([{"cutoff": p.dates[cut], "train_weeks": cut, "cells": len(sc),
                               "coverage_pct": float((sc <= 1).mean() * 100),
                               "calibrated_coverage_pct": float((sc <= scale).mean() * 100)}
                              for cut, sc in per_cut])
        self.interval_calibration_: dict[str, Any] | None = {
            "level": float(level), "scale": scale, "scale_needed": needed, "n_cells": int(n),
            "n_splits": len(cutoffs), "horizon": int(horizon), "coverage_pct": float((scores <= 1).mean() * 100),
            "calibrated_coverage_pct": float((scores <= scale).mean() * 100)}
        table.attrs.update(self.interval_calibration_)
        return table

    # ------------------------------------------------------------ causal effects
    def get_dag_edges(self) -> pd.DataFrame:
        """Edges of the channel graph: ``parent``, ``child``, ``lag`` (weeks), ``weight``,
        ``direction_support``, ``direction_basis``.

        ``weight`` is the change in the child's activity, in units of its regional
        mean, per unit of the parent's activity (in units of its regional mean).
        ``direction_support`` (same-week learned edges only, else NaN): the share
        of region bootstrap resamples whose non-Gaussian orientation score agrees
        with the edge's direction (the score on the activity pooled over regions, or,
        where it is settled the other way, the score on each region's own
        standardised activity; for two channels with a parent that their dark weeks
        oriented, the score with that parent partialled out); near 0.5 that score does not
        tell the direction.
        ``direction_basis`` says what set it: ``"non-gaussian"`` (the score; support
        at least 0.95, or below where the equal-CV rule's implied CVs were unlike),
        ``"equal-cv"`` (support below 0.95: the orientation under which the
        channels' exogenous parts vary most alike relative to their means, kept
        when those CVs are within 1.25 times each other; an assumption: fix such
        edges with ``graph.roots``,
        ``graph.forbidden`` or ``graph.required`` when you know better),
        ``"dark weeks"`` (the parent is dark in weeks the child runs, never the reverse,
        and the child's activity moves with those weeks as the edge implies: under the
        structural model a child is active whenever its parent is; set after the other
        rules and overriding them, see ``graph.dark_weeks``),
        ``"lagged edges"`` (the score left the direction open, support under 0.95, and no
        rule above set it, so it runs as the same pair's lagged edges do, see
        ``graph.time_order``), ``"time order"`` (lagged edges), ``"national"`` (an edge out of a channel
        bought nationally, learned from the week-to-week national series at any lag,
        where a plan that moves channels together looks the same as influence; see
        ``graph.national``) or ``"given"`` (required, roots, forbidden or a fixed graph).
        """
        check_is_fitted(self, "graph_model_")
        g = self.graph_model_
        gc = self.config_.graph
        given = {(self.channels_.index(p), self.channels_.index(c))
                 for p, c in (*gc.required, *(gc.edges if gc.mode == "fixed" else ()))}

        def basis(i: int, j: int, lag: int) -> str:
            if g.national is not None and (g.national[i] or g.national[j]) and (i, j) not in given:
                return "national"
            if lag > 0:
                return "time order"
            if g.direction is None or np.isnan(g.direction[i, j]):
                return "given"
            if g.dark is not None and g.dark[i, j]:
                return "dark weeks"
            if g.ordered is not None and g.ordered[i, j]:
                return "lagged edges"
            return "equal-cv" if g.assumed is not None and g.assumed[i, j] else "non-gaussian"

        rows = [(self.channels_[i], self.channels_[j], lag, w,
                 float(g.direction[i, j]) if lag == 0 and g.direction is not None else np.nan,
                 basis(i, j, lag))
                for i, j, lag, w in g.edges()]
        return pd.DataFrame(rows, columns=["parent", "child", "lag", "weight", "direction_support",
                                           "direction_basis"])

    def get_channel_effects(
        self,
        regions: Sequence[Any] | None = None,
        period: Period | None = None,
        by_region: bool = False,
    ) -> pd.DataFrame:
        """Effects of each channel under intervention, over the fitted data.

        ``total``: prediction on observed data minus prediction under
        do(channel = 0), where the activity the channel induced in its
        descendants (through the channel graph) is removed too. ``direct``: the
        same with the other channels held at their observed values; in this
        additive model it equals the channel's contribution in
        :meth:`get_channel_contributions`. ``mediated`` = total - direct.
        ``total_share``: total / sum of all channels' totals. ``roi``: total /
        spend (spend from ``fit(spend=...)``, else the channel's ``X`` values).

        Parameters
        ----------
        regions : list or one label, optional
            Restrict to these fitted regions.
        period : (start, end), optional
            Restrict to dates in ``[start, end]`` (both included); counterfactuals still use
            the full history.
        by_region : bool
            One row per (region, channel) instead of per channel.
        """
        check_is_fitted(self, "graph_model_")
        p = self.panel_
        R, T, C = p.shape
        keep = self._cells(regions, period)  # [R,T]
        observed = self._fitted_parts(p.media)["channels"]  # [R,T,C]
        total = self._total_effects(p.media, np.arange(R), keep, observed,
                                    lambda media: self._fitted_parts(media)["channels"])
        direct = np.where(keep[:, :, None], observed, 0.0).sum(axis=1)  # [R,C]
        spend = np.where(keep[:, :, None], self.spend_, 0.0).sum(axis=1)  # [R,C]
        if by_region:
            idx = pd.MultiIndex.from_product([self.regions_, self.channels_], names=["region", "channel"])
            sel = keep.any(axis=1)
            frame = pd.DataFrame({"total": total.reshape(-1), "direct": direct.reshape(-1),
                                  "spend": spend.reshape(-1)}, index=idx)
            frame = frame[np.repeat(sel, C)]
            grand = frame.groupby(level="region")["total"].transform("sum")
        else:
            frame = pd.DataFrame({"total": total.sum(0), "direct": direct.sum(0), "spend": spend.sum(0)},
                                 index=pd.Index(self.channels_, name="channel"))
            grand = frame["total"].sum()
        frame["mediated"] = frame["total"] - frame["direct"]
        frame["total_share"] = frame["total"] / grand
        frame["roi"] = np.where(frame["spend"] > 0, frame["total"] / frame["spend"].where(frame["spend"] > 0, 1), np.nan)
        return frame[["total", "direct", "mediated", "total_share", "spend", "roi"]]

    def get_group_effects(
        self,
        groups: Mapping[str, Sequence[str] | str],
        regions: Sequence[Any] | None = None,
        period: Period | None = None,
        by_region: bool = False,
        n_boot: int = 0,
        level: float = 0.9,
        random_state: int = 0,
        prior_spread: float = PRIOR_SPREAD,
    ) -> pd.DataFrame:
        """Effects of groups of channels switched off together ("what did all of digital drive?").

        A group's ``total`` is the KPI lost under do(every channel of the group = 0), the
        activity its channels drive in other channels removed through the graph, as
        :meth:`get_channel_effects` does for one channel. Adding the members' own totals
        counts twice what one member drives in another (TV's lift in branded search is in
        both TV's and search's total), and the joint intervention does not: ``overlap`` is
        that double count. ``direct``: the group's channels' own contributions (all of them,
        what one member drives in another included); ``mediated`` = total - direct, what the
        group drives in channels outside it.

        Parameters
        ----------
        groups : dict
            ``{name: [channel, ...]}`` (a single channel name also works); groups may share
            channels, and ``{"media": model.channels_}`` gives what all media together caused.
        regions, period, by_region
            As in :meth:`get_channel_effects`.
        n_boot, level, random_state, prior_spread
            With ``n_boot >= 2``, ``media_share`` and ``roi`` get region-bootstrap ``_lo`` /
            ``_hi`` bounds at ``level`` and ``_sd`` from ``n_boot`` refits, each with its own
            prior strengths, as :meth:`get_effect_intervals` (shared with it inside
            :meth:`shared_refits`); not with ``regions`` or ``by_region``.

        Returns
        -------
        DataFrame indexed by ``group`` (``(region, group)`` with ``by_region``): ``channels``
        (the members, joined by ", "), ``total``, ``direct``, ``mediated``,
        ``sum_of_totals`` (the members' totals from :meth:`get_channel_effects`), ``overlap``
        (``sum_of_totals - total``), ``media_share`` (total over what all channels switched
        off together lose), ``spend`` and ``roi`` (total / spend).

        Raises
        ------
        DataError
            For groups that are not a non-empty dict of non-empty channel lists, unknown
            channels, as :meth:`get_channel_effects` for ``regions`` and ``period``, ``n_boot``
            of 1 or with ``regions`` / ``by_region``, and bootstrap arguments as
            :meth:`get_effect_intervals`.
        """
        check_is_fitted(self, "graph_model_")
        if not isinstance(groups, Mapping) or not groups:
            raise DataError(f"`groups` must be a non-empty dict {{name: [channel, ...]}}, found {groups!r}; e.g. "
                            f"groups={{'digital': {self.channels_[:2]}}}")
        members: dict[str, list[str]] = {}
        for name, chans in groups.items():
            listed_ = [chans] if isinstance(chans, str) else list(chans) if isinstance(chans, Iterable) else None
            if not listed_ or not all(isinstance(c, str) for c in listed_):
                raise DataError(f"`groups[{name!r}]` must be a channel name or a non-empty list of them, found "
                                f"{chans!r}; e.g. groups={{{name!r}: {self.channels_[:2]}}}")
            unknown = [c for c in listed_ if c not in self.channels_]
            if unknown:
                raise DataError(f"`groups[{name!r}]` names {unknown}, which are not fitted channels; choose among "
                                f"{self.channels_}")
            members[str(name)] = list(dict.fromkeys(listed_))
        _check_flag(by_region, "by_region")
        n_boot, prior_spread = self._bootstrap_setup(
            n_boot, level, prior_spread,
            [n for n, given in (("regions", regions is not None), ("by_region", by_region)) if given])
        start = time.perf_counter()
        keep = self._cells(regions, period)  # [R,T]
        rows = self._group_parts(members, keep)
        names = list(members)
        if by_region:
            sel = np.flatnonzero(keep.any(axis=1))
            index = pd.MultiIndex.from_tuples([(self.regions_[r], g) for r in sel for g in names],
                                              names=["region", "group"])
            data = {k: np.array([rows[g][k][r] for r in sel for g in names])
                    for k in ("total", "direct", "sum_of_totals", "spend", "media")}
            chans_col = [", ".join(members[g]) for _ in sel for g in names]
        else:
            index = pd.Index(names, name="group")
            data = {k: np.array([rows[g][k].sum() for g in names])
                    for k in ("total", "direct", "sum_of_totals", "spend", "media")}
            chans_col = [", ".join(members[g]) for g in names]
        frame = pd.DataFrame({"channels": chans_col, **data}, index=index)
        frame["mediated"] = frame["total"] - frame["direct"]
        frame["overlap"] = frame["sum_of_totals"] - frame["total"]
        frame["media_share"] = frame["total"] / frame["media"].where(frame["media"] != 0)
        frame["roi"] = frame["total"] / frame["spend"].where(frame["spend"] > 0)
        frame = frame[["channels", "total", "direct", "mediated", "sum_of_totals", "overlap", "media_share", "spend",
                       "roi"]]
        if n_boot:
            shares = np.full((n_boot, len(names)), np.nan)
            rois = np.full((n_boot, len(names)), np.nan)
            for b, (draw, refit) in enumerate(self._bootstrap_refits(n_boot, random_state, prior_spread)):
                again = refit._group_parts(members, refit._cells(None, period))
                # per unit of this fit's spend over the drawn regions' cells (a refit's own spend is its
                # activity where the fit had spend= for impressions channels)
                cells = keep[draw]
                for g, name in enumerate(names):
                    idx = [self.channels_.index(c) for c in members[name]]
                    paid = float(np.where(cells[:, :, None], self.spend_[draw][..., idx], 0.0).sum())
                    total, media = again[name]["total"].sum(), again[name]["media"].sum()
                    shares[b, g] = total / media if media != 0 else np.nan
                    rois[b, g] = total / paid if paid > 0 else np.nan
            for column, reps in (("media_share", shares), ("roi", rois)):
                frame[f"{column}_lo"], frame[f"{column}_hi"], frame[f"{column}_sd"] = _spread(reps, level)
            frame.attrs.update({"n_boot": n_boot, "level": level, "prior_spread": prior_spread,
                                "seconds": time.perf_counter() - start})
        return frame

    def _group_parts(self, members: Mapping[str, list[str]], keep: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
        """:meth:`get_group_effects` on this model's panel over the cells ``keep`` ``[R,T]``: per
        group, per region ``[R]``, the KPI lost with its channels switched off together
        (``total``), their contributions (``direct``), their own totals added
        (``sum_of_totals``), their ``spend``, and every channel's contribution (``media``: what
        all channels switched off together lose, the same for every group)."""
        p = self.panel_
        R = p.shape[0]
        observed = self._fitted_parts(p.media)["channels"]  # [R,T,C]
        totals = self._total_effects(p.media, np.arange(R), keep, observed,
                                     lambda media: self._fitted_parts(media)["channels"])  # [R,C] one by one
        scale = self.scaler_.media_scale[:, None, :]  # [R,1,C]
        scaled = p.media / scale
        in_cells = np.where(keep[:, :, None], 1.0, 0.0)  # [R,T,1]
        media = (observed * in_cells).sum(axis=(1, 2))  # [R]
        rows: dict[str, dict[str, np.ndarray]] = {}
        for name, chans in members.items():
            idx = np.array([self.channels_.index(c) for c in chans])
            off = _switched_off(p.media, scaled, scale, self.graph_model_, idx)
            lost = (observed - self._fitted_parts(off)["channels"]) * in_cells  # [R,T,C]: only what it reaches moves
            rows[name] = {"total": lost.sum(axis=(1, 2)), "direct": (observed[..., idx] * in_cells).sum(axis=(1, 2)),
                          "sum_of_totals": totals[:, idx].sum(axis=1),
                          "spend": (self.spend_[..., idx] * in_cells).sum(axis=(1, 2)), "media": media}
        return rows

    def get_effects_over_time(
        self,
        freq: str | int | None = None,
        regions: Sequence[Any] | None = None,
        marginal: bool = True,
        n_boot: int = 0,
        level: float = 0.9,
        random_state: int = 0,
        prior_spread: float = PRIOR_SPREAD,
        by_region: bool = False,
    ) -> pd.DataFrame:
        """Each channel's effects, spend and return period by period over the fitted dates.

        The rows of :meth:`get_channel_effects` for each period of ``freq`` in turn: how a
        channel's return moved over time with its spend (saturation), its carryover and, where
        ``effectiveness.enabled``, its time-varying effectiveness. Each period's ``total``,
        ``direct`` and ``spend`` are :meth:`get_channel_effects` with ``period=`` that period, so
        they add up over the periods to its figures for the whole fit; ``total`` counts the KPI
        of the period's weeks, including the carryover of activity bought before it.

        ``marginal_roi`` looks forward instead: the KPI the next unit of spend in the period
        brings, in the period and in the later fitted weeks its carryover reaches (the
        channel's activity in the period scaled by 0.9 and 1.1 in the selected regions, through
        the channel graph, per unit of the spend that adds), so that periods with high
        spend show where the curve flattens. It leaves out carryover past the last fitted week,
        so a period at the end of the fit reads low for channels with long carryover.

        Parameters
        ----------
        freq : str or int, optional
            ``"Q"``, ``"Y"``, ``"M"`` or ``"W"`` (or ``"quarter"``, ...): calendar periods, each
            fitted date in the one its label falls in; or a whole number ``n``: blocks of ``n``
            steps from the first fitted date (fits without calendar dates). Default: quarters,
            and without calendar dates blocks of a quarter of the yearly season's period
            (13 weekly steps).
        regions : list or one label, optional
            Restrict to these fitted regions.
        marginal : bool
            Compute ``marginal_roi`` (two passes through the network per period and channel
            group); False leaves it out.
        n_boot, level, random_state, prior_spread
            With ``n_boot >= 2``, ``roi`` and ``marginal_roi`` get region-bootstrap
            ``_lo`` / ``_hi`` bounds at ``level`` and ``_sd`` from ``n_boot`` refits, each with
            its own prior strengths, as :meth:`get_effect_intervals` (shared with it inside
            :meth:`shared_refits`); not with ``regions``. ``attrs`` then holds ``n_boot``,
            ``level``, ``prior_spread`` and ``seconds``.
        by_region : bool
            One block of rows per region (index ``(region, period, channel)``, ``total_share``
            within the region and period): where each channel's return moved. Regions do not
            interact in the model, so these are the same passes, and the periods' pooled rows
            are their sums (``marginal_roi`` a spend-weighted mean). Not with ``n_boot``.

        Returns
        -------
        DataFrame
            Indexed by (``period``, ``channel``), periods in time order and labelled as every
            ``period=`` argument takes them (``"2024Q3"``; blocks of steps by their first and
            last dates, ``"0..12"``: give ``period=(start, end)`` for those): ``start`` and
            ``end`` (the period's first and last fitted dates), ``n_dates`` (fitted dates in
            it), ``n_cells`` (observed region-weeks of the regions in it), ``complete`` (False
            where the fit starts or ends inside the period), ``spend``, ``total``, ``direct``,
            ``mediated``, ``total_share`` (of the period's
            total over all channels), ``roi`` (total / spend) and ``marginal_roi``.

        Raises
        ------
        DataError
            For an unknown ``freq`` (a calendar frequency on a fit without calendar dates,
            a number below 1), unknown regions, ``n_boot`` of 1 or with ``regions``, and as
            :meth:`get_effect_intervals` for ``level`` and ``prior_spread``.
        """
        check_is_fitted(self, "graph_model_")
        _check_flag(marginal, "marginal")
        _check_flag(by_region, "by_region")
        n_boot, prior_spread = self._bootstrap_setup(
            n_boot, level, prior_spread,
            [n for n, given in (("regions", regions is not None), ("by_region", by_region)) if given])
        start = time.perf_counter()
        p = self.panel_
        R, T, C = p.shape
        if freq is None:  # quarters; blocks of a quarter of the season's steps without calendar dates
            freq = "Q" if isinstance(p.dates, pd.DatetimeIndex) else default_frequency(p.dates, self.config_.baseline.period)
        block, labels, complete = period_blocks(p.dates, freq)
        K = len(labels)
        chosen = self._cells(regions, None)  # [R,T] observed cells of the regions
        total_r, direct_r, gain_r = self._effects_by_block(block, K, chosen,
                                                           self._cells(regions, None, observed=False), marginal)
        in_block = block[None, :] == np.arange(K)[:, None]  # [K,T]
        keeps = chosen[None] & in_block[:, None, :]  # [K,R,T]
        spend_r = np.einsum("krt,rtc->krc", keeps.astype(float), self.spend_)  # [K,R,C]
        step = _MARGINAL_GRID[2] - 1.0  # gain: the KPI from the activity scaled by 1 + step less 1 - step
        dates = p.dates
        first = [dates[np.flatnonzero(in_block[k])[0]] for k in range(K)]
        last = [dates[np.flatnonzero(in_block[k])[-1]] for k in range(K)]
        if by_region:  # one row per (region, period, channel) where the region was observed in the period
            kk, rr = np.nonzero(keeps.any(axis=2))  # [n] (period, region) pairs observed
            order = np.lexsort((kk, rr))  # region-major, then periods in time order
            kk, rr = kk[order], rr[order]
            index = pd.MultiIndex.from_tuples(
                [(self.regions_[r], labels[k], c) for r, k in zip(rr, kk, strict=True) for c in self.channels_],
                names=["region", "period", "channel"])
            total, direct, spend, gain = (a[kk, rr] for a in (total_r, direct_r, spend_r, gain_r))  # [n,C]
            cells = np.repeat(keeps.sum(axis=2)[kk, rr], C)
            at = np.repeat(kk, C)
        else:
            seen = np.flatnonzero(keeps.any(axis=(1, 2)))  # periods the regions were observed in
            index = pd.MultiIndex.from_tuples([(labels[k], c) for k in seen for c in self.channels_],
                                              names=["period", "channel"])
            total, direct, spend, gain = (a.sum(axis=1)[seen] for a in (total_r, direct_r, spend_r, gain_r))
            cells = np.repeat(keeps.sum(axis=(1, 2))[seen], C)
            at = np.repeat(seen, C)
        frame = pd.DataFrame({
            "start": np.asarray(first, dtype=object)[at], "end": np.asarray(last, dtype=object)[at],
            "n_dates": in_block.sum(axis=1)[at], "n_cells": cells, "complete": complete[at],
            "spend": spend.reshape(-1), "total": total.reshape(-1), "direct": direct.reshape(-1),
        }, index=index)
        frame["mediated"] = frame["total"] - frame["direct"]
        levels = ["region", "period"] if by_region else ["period"]
        grand = frame.groupby(level=levels, sort=False)["total"].transform("sum")
        frame["total_share"] = frame["total"] / grand.where(grand != 0)
        frame["roi"] = _per_spend(total, spend).reshape(-1)
        if marginal:
            frame["marginal_roi"] = _per_spend(gain, 2 * step * spend).reshape(-1)
        if n_boot:
            rois = np.full((n_boot, K, C), np.nan)
            marginals = np.full((n_boot, K, C), np.nan)
            for b, (draw, refit) in enumerate(self._bootstrap_refits(n_boot, random_state, prior_spread)):
                # the refit's dates are fitted dates (the drawn regions' observed ones): each keeps its block
                blocks_of = block[pd.Index(dates).get_indexer(refit.panel_.dates)]  # [T']
                rt, _, rg = (part.sum(axis=1) for part in refit._effects_by_block(
                    blocks_of, K, refit._cells(None, None), refit._cells(None, None, observed=False), marginal))
                # per unit of this fit's spend over the drawn regions' cells (a refit's own spend is
                # its activity where the fit had spend= for impressions channels)
                paid = np.einsum("krt,rtc->kc", keeps[:, draw].astype(float), self.spend_[draw])  # [K,C]
                rois[b] = _per_spend(rt, paid)
                if marginal:
                    marginals[b] = _per_spend(rg, 2 * step * paid)
            for name, reps in (("roi", rois), ("marginal_roi", marginals)):
                if name in frame:
                    frame[f"{name}_lo"], frame[f"{name}_hi"], frame[f"{name}_sd"] = (
                        part[seen].reshape(-1) for part in _spread(reps, level))
            frame.attrs.update({"n_boot": n_boot, "level": level, "prior_spread": prior_spread,
                                "seconds": time.perf_counter() - start})
        return frame

    def _effects_by_block(
        self, block: np.ndarray, K: int, chosen: np.ndarray, rows_of: np.ndarray, marginal: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`get_effects_over_time`'s passes on this model's panel: ``block`` ``[T]`` each
        fitted date's period (0..K-1), ``chosen`` ``[R,T]`` the observed cells counted and
        ``rows_of`` ``[R,T]`` every cell of their regions. Returns ``[K,R,C]`` each period's and
        region's total and direct effects and ``gain``: the KPI, over the period and the later
        counted cells, with the period's activity scaled by ``1 + step`` less with it scaled by
        ``1 - step`` (``step`` from ``_MARGINAL_GRID``; NaN without ``marginal``)."""
        p = self.panel_
        R, T, C = p.shape
        in_block = block[None, :] == np.arange(K)[:, None]  # [K,T]
        keeps = chosen[None] & in_block[:, None, :]  # [K,R,T]
        observed = self._fitted_parts(p.media)["channels"]  # [R,T,C]
        total = self._total_effects(p.media, np.arange(R), keeps, observed,
                                    lambda media: self._fitted_parts(media)["channels"])  # [K,R,C]
        direct = np.einsum("krt,rtc->krc", keeps.astype(float), observed)
        gain = np.full((K, R, C), np.nan)
        if marginal:
            scaled = self._activity()
            step = _MARGINAL_GRID[2] - 1.0
            for k in range(K):
                if not keeps[k].any():
                    continue
                begins = int(np.flatnonzero(in_block[k])[0])
                later = chosen & (np.arange(T) >= begins)[None, :]  # scored: the period and after
                cells = _Cells(scaled=scaled, keep=later, where=rows_of & in_block[k][None, :],
                               spend=self.spend_, region_idx=np.arange(R), controls=p.control_values)
                _, moved = self._move_kpis(cells, np.ones((1, C)),
                                           [(0, c, 1.0 + s * step) for c in range(C) for s in (-1, 1)],
                                           by_region=True)  # [2C,R]
                gain[k] = (moved[1::2] - moved[0::2]).T
        return total, direct, gain

    def _total_effects(
        self, media: np.ndarray, reg_idx: np.ndarray, keep: np.ndarray, observed: np.ndarray,
        channels_of: Any,
    ) -> np.ndarray:
        """``[R',C]`` each channel's total effect over ``keep`` ``[R',T]``: the KPI its channels
        (``observed`` ``[R',T,C]``, from ``media`` ``[R',T,C]`` of fitted regions ``reg_idx``) lose
        under do(channel = 0) over the whole timeline, its induced activity in the channels it
        reaches removed through the graph; ``channels_of(media)`` is the decomposition's channels
        for other media on the same timeline. With ``keep`` ``[K,R',T]``, ``[K,R',C]``: one
        reading per mask from the same passes."""
        C = media.shape[2]
        keeps = keep[None] if keep.ndim == 2 else keep  # [K,R',T]
        scale = self.scaler_.media_scale[reg_idx][:, None, :]  # [R',1,C]
        scaled = media / scale  # [R',T,C]
        total = np.zeros((len(keeps), media.shape[0], C))
        reach_ = reach(self.graph_model_)
        pack = pack_moves(reach_, np.arange(C))  # channels whose switch-offs share a pass
        for q in np.unique(pack):
            chans = np.flatnonzero(pack == q)
            lost = observed - channels_of(_switched_off(media, scaled, scale, self.graph_model_, chans))
            for k, cells in enumerate(keeps):
                # each channel's own change summed over dates as `direct` is (the same reduction, so
                # a channel without descendants has total == direct to the bit), then what the
                # channels it reaches lose (no other channel of the pass reaches them)
                own = np.where(cells[:, :, None], lost, 0.0).sum(axis=1)  # [R',C]
                for c in chans:
                    total[k, :, c] = own[:, c] + own[:, reach_[c] & (np.arange(C) != c)].sum(axis=1)
        return total[0] if keep.ndim == 2 else total

    def get_effect_intervals(
        self, n_boot: int = 20, level: float = 0.9, random_state: int = 0,
        prior_spread: float = PRIOR_SPREAD,
    ) -> pd.DataFrame:
        """Region-bootstrap intervals for each channel's total-effect share, ROI and marginal ROI.

        ``marginal_roi`` is the KPI gained per extra unit of spend at the
        current allocation: the slope of :meth:`get_response_curves` between
        multipliers 0.9 and 1.1 (the channel's activity and what it induces in
        other channels scaled together). It is the figure that says where the
        next unit of budget should go, and its interval says whether two
        channels' marginal returns can be told apart.

        Refits the model ``n_boot`` times, each on regions drawn with
        replacement from the fitted panel (its observed rows, weights and
        configuration; replicate ``b`` uses ``random_state + b`` for both the
        draw and the fit), and reads :meth:`get_channel_effects` from each. A
        model fitted with lift tests refits each replicate with them: a test
        keeps the replicate's copies of its regions, its lift and standard
        error scaled by the share of the test's modelled lift those copies
        carry (dropped when none of its regions was drawn).

        Each replicate also draws its own prior strengths: the coefficient
        ridge (``regularization.l2``) and the Hill-slope prior
        (``regularization.hill_slope``) are multiplied by ``exp(prior_spread
        z)``, ``z`` standard normal per prior and replicate. These priors decide
        the level of what the data do not observe (an always-on channel's
        response below its observed range), where the priors' bias exceeds the
        sampling variation; with the default 1.4, 90% of the replicates' strengths
        lie within 0.1-10 times the fit's. ``prior_spread=0`` keeps the fit's
        priors: the intervals then reflect which regions happened to be observed
        and the fit's own randomness only. On the README's simulated panels the
        default's 90% intervals held 22 of 32 true shares, against 14 of 32 at 0;
        neither covers the model's structure (its curve family).

        The intervals are percentiles of the replicates. With ``n_jobs`` (see
        the class) the refits run side by side in worker processes.

        Returns
        -------
        DataFrame indexed by channel: ``total_share``, ``roi`` and
        ``marginal_roi`` (this fit), their bootstrap ``_lo`` / ``_hi`` bounds at ``level`` and bootstrap
        ``_sd``; ``attrs`` holds ``n_boot``, ``level``, ``prior_spread`` and ``seconds``.

        Raises
        ------
        DataError
            If ``n_boot < 2``, ``level`` is not in (0, 1), ``prior_spread`` is
            negative or not finite, or the fit has one region and ``prior_spread``
            is 0 (a national series has no regions to redraw: its replicates
            differ by their prior strengths and the fit's randomness only).
        """
        check_is_fitted(self, "graph_model_")
        if int(n_boot) < 2:
            raise DataError(f"`n_boot` must be at least 2 (replicates to spread), found {n_boot}; "
                            "e.g. n_boot=20")
        _check_level(level)
        prior_spread = _check_prior_spread(prior_spread)
        self._check_bootstrap_regions(prior_spread)
        _check_n_jobs(self.n_jobs)
        start = time.perf_counter()
        p = self.panel_
        C = p.shape[2]
        point = self.get_channel_effects()
        point_marginal = _marginal_roi(self.get_response_curves(multipliers=_MARGINAL_GRID), self.channels_)
        shares = np.zeros((int(n_boot), C))
        rois = np.zeros((int(n_boot), C))
        marginals = np.zeros((int(n_boot), C))
        for b, (draw, refit) in enumerate(self._bootstrap_refits(int(n_boot), random_state, prior_spread)):
            eff = refit.get_channel_effects()
            shares[b] = eff["total_share"].to_numpy()
            spend = _observed_spend(p.observed[draw], self.spend_[draw])  # [C]
            safe = np.where(spend > 0, spend, 1.0)
            rois[b] = np.where(spend > 0, eff["total"].to_numpy() / safe, np.nan)
            # KPI per unit multiplier from the refit, over the fitted panel's spend (the refit's
            # own spend is its activity, which differs for impressions channels)
            slope = _response_slope(refit.get_response_curves(multipliers=_MARGINAL_GRID), self.channels_)
            marginals[b] = np.where(spend > 0, slope / safe, np.nan)
        out = pd.DataFrame(index=pd.Index(self.channels_, name="channel"))
        for name, reps, now in (("total_share", shares, point["total_share"].to_numpy()),
                                ("roi", rois, point["roi"].to_numpy()),
                                ("marginal_roi", marginals, point_marginal)):
            out[name] = now
            out[f"{name}_lo"], out[f"{name}_hi"], out[f"{name}_sd"] = _spread(reps, level)
        out.attrs.update({"n_boot": int(n_boot), "level": level, "prior_spread": prior_spread,
                          "seconds": time.perf_counter() - start})
        return out

    def _bootstrap_setup(self, n_boot: object, level: float, prior_spread: float, restricted: list[str]
                         ) -> tuple[int, float]:
        """``(n_boot, prior_spread)`` checked for a method with bootstrap intervals, before any
        work: ``n_boot`` 0 or at least 2; with refits, ``level``, ``prior_spread``, this fit's
        regions and ``n_jobs`` too, and none of the arguments named in ``restricted`` given (they
        choose among the fitted regions, which the refits redraw)."""
        n = _check_n_boot(n_boot)
        if n:
            _check_level(level)
            prior_spread = _check_prior_spread(prior_spread)
            if restricted:
                raise DataError(f"`n_boot` cannot be combined with {' or '.join(f'`{r}`' for r in restricted)}: "
                                "bootstrap replicates redraw the fitted regions; drop "
                                f"{'them' if len(restricted) > 1 else 'it'}, or set n_boot=0")
            self._check_bootstrap_regions(prior_spread)
            _check_n_jobs(self.n_jobs)
        return n, prior_spread

    def _check_bootstrap_regions(self, prior_spread: float) -> None:
        """Raise ``DataError`` for a fit with one region and no prior spread: every replicate would
        be the same data with the same priors."""
        if len(self.regions_) < 2 and prior_spread == 0:
            raise DataError(
                f"`n_boot`: region-bootstrap replicates redraw the fitted regions, and this fit has "
                f"{len(self.regions_)} (a national series), so with prior_spread=0 every replicate would be "
                "the same fit and the intervals would have zero width. Give prior_spread > 0 (each "
                "replicate refits the series with its own prior strengths), fit regional data, or leave "
                "out n_boot"
            )

    @contextmanager
    def shared_refits(self) -> Iterator[DeepCausalMMM]:
        """A block in which bootstrap refits are fitted once and shared.

        :meth:`get_effect_intervals`, and :meth:`optimize_budget`, :meth:`evaluate_plan`,
        :meth:`get_kpi_change`, :meth:`get_effects_over_time` and :meth:`get_group_effects` with
        ``n_boot``, each refit the model on region-bootstrap
        replicates. Replicate ``b`` depends only on the fit, ``random_state + b`` and
        ``prior_spread``, so inside the block calls with the same ``n_boot``,
        ``random_state`` and ``prior_spread`` reuse the first call's refits instead of
        fitting them again: the same figures, for the cost of one set of refits. The
        refits are held until the block ends (each holds its panel and network)::

            with model.shared_refits():
                intervals = model.get_effect_intervals(n_boot=20)
                plan = model.optimize_budget(n_boot=20)   # no refit: the same 20 replicates
        """
        check_is_fitted(self, "net_")
        outer = getattr(self, "_refit_store", None)
        if outer is None:
            self._refit_store: dict[tuple[int, int, float], list[tuple[np.ndarray, DeepCausalMMM]]] = {}
        try:
            yield self
        finally:
            if outer is None:
                del self._refit_store

    def _bootstrap_refits(
        self, n_boot: int, random_state: int, prior_spread: float
    ) -> Iterator[tuple[np.ndarray, DeepCausalMMM]]:
        """``(draw [R], refit)`` per replicate: refits on regions drawn with replacement.

        Replicate ``b`` uses ``random_state + b`` for the draw and the fit; a
        refit sees the drawn regions' observed rows, weights and this fit's
        configuration (its ``_SPREAD_PRIORS`` times ``exp(prior_spread z)``),
        with the drawn regions labelled 0..R-1 in draw order.
        """
        p = self.panel_
        assert p.y is not None
        R = p.shape[0]
        y = p.y
        per_region = self._stored_lift_by_region()
        draws = [np.random.default_rng(random_state + b).integers(0, R, R) for b in range(n_boot)]  # [R] each

        def tasks() -> Iterator[_Refit]:  # built as the refits need them: each holds a copy of its data
            for b, draw in enumerate(draws):
                rr, tt = np.nonzero(p.observed[draw])  # observed cells of the drawn regions
                X = pd.DataFrame(p.media[draw][rr, tt], columns=self.channels_)
                ctrl = (pd.DataFrame(p.control_values[draw][rr, tt], columns=self.controls_)
                        if self.controls_ else None)
                tests = None if per_region is None else self._replicate_tests(draw, per_region)
                config, spend = self.config_.to_dict(), None
                if prior_spread > 0:  # the replicate's own prior strengths, log-normal around the fit's
                    z = np.random.default_rng([random_state + b, 1]).standard_normal(len(_SPREAD_PRIORS))
                    for key, zk in zip(_SPREAD_PRIORS, z, strict=True):
                        config["regularization"][key] *= float(np.exp(prior_spread * zk))
                priors = config["calibration"]["roi_priors"]
                if priors:  # ROI priors are per unit of spend: the replicate gets the drawn regions' spend
                    spend = pd.DataFrame(self.spend_[draw][rr, tt], columns=self.channels_)
                    config["calibration"]["roi_priors"] = {  # a channel no drawn region spent on has no ROI
                        c: v for c, v in priors.items() if spend[c].sum() > 0}
                yield _Refit(
                    DeepCausalMMM(config=config, random_state=random_state + b, device=self.device),
                    dict(X=X, y=y[draw][rr, tt], regions=rr, dates=p.dates[tt], controls=ctrl,
                         sample_weight=p.weight[draw][rr, tt], spend=spend, lift_tests=tests),
                    # the fit itself warned of imprecise tests and of what its graph could not learn
                    # from these data; n_boot replicates would repeat that n_boot times
                    quiet=("the most precise lift test", "graph: "),
                )

        store = getattr(self, "_refit_store", None)  # inside shared_refits(): refits fitted once
        key = (n_boot, int(random_state), float(prior_spread))
        if store is not None and key in store:
            self._say(f"reusing the {n_boot} bootstrap refits of this shared_refits() block")
            yield from store[key]
            return
        kept: list[tuple[np.ndarray, DeepCausalMMM]] = []
        started = time.perf_counter()
        workers = self._refit_workers(n_boot)
        rounds = -(-n_boot // workers)  # refits run in rounds of `workers`
        for b, (draw, (refit, seconds)) in enumerate(zip(draws, self._refits(tasks(), n_boot, workers), strict=True)):
            if self.verbose:
                done = -(-(b + 1) // workers)  # rounds under way or finished
                to_go = (time.perf_counter() - started) / done * (rounds - done)
                self._say(f"bootstrap refit {b + 1}/{n_boot}: {seconds:.1f} s (about {to_go:.0f} s to go)")
            if store is not None:
                kept.append((draw, refit))
            yield draw, refit
        if store is not None:
            store[key] = kept

    def _refits(self, tasks: Iterable[_Refit], n_tasks: int, workers: int) -> Iterator[tuple[DeepCausalMMM, float]]:
        """``(model, seconds)`` of each refit in ``tasks`` (``n_tasks``), in order: one at a time here
        (``workers`` 1), or side by side in ``workers`` worker processes (joblib; see
        :meth:`_refit_workers`), each on its share of the cores."""
        if workers == 1:
            for task in tasks:
                model, seconds, _ = task.run()
                yield model, seconds
            return
        from joblib import Parallel, delayed

        threads = max(1, available_cores() // workers)
        self._say(f"{n_tasks} refits side by side in {workers} worker processes, {threads} thread(s) each")
        # processes, whatever backend a surrounding parallel_config names: fits in threads of one
        # process would share torch's global seed and thread count
        for model, seconds, given in Parallel(n_jobs=workers, backend="loky", return_as="generator")(
                delayed(_run_refit)(task, threads) for task in tasks):
            for category, text in given:  # as a refit here would have raised them
                warnings.warn(text, category, stacklevel=2)
            yield model, seconds

    def _refit_workers(self, n_tasks: int) -> int:
        """Processes for ``n_tasks`` refits: ``n_jobs`` resolved as joblib does (None: 1, or the
        surrounding ``parallel_config``; -1: every core), at most ``n_tasks``; 1 on a GPU."""
        n_jobs = _check_n_jobs(self.n_jobs)
        if n_tasks < 2 or n_jobs == 1 or self._resolve_device().type == "cuda":
            return 1
        from joblib import effective_n_jobs

        return max(1, min(int(effective_n_jobs(n_jobs)), n_tasks))

    def _stored_lift_by_region(self) -> np.ndarray | None:
        """``[N,R]`` this fit's per-region model lift of the lift tests it was given, or None."""
        stored: pd.DataFrame | None = getattr(self, "lift_tests_", None)
        if stored is None:
            return None
        lifts = parse_lift_tests(stored[[*LIFT_COLUMNS, "regions"]], self.channels_, self.regions_,
                                 self.panel_.dates)
        return self._lift_by_region(lifts)

    def _replicate_tests(self, draw: np.ndarray, per_region: np.ndarray) -> pd.DataFrame | None:
        """The fit's lift tests on a bootstrap replicate whose region ``k`` is fitted region ``draw[k]``.

        A test keeps the replicate's copies of its regions (none drawn: dropped),
        and its measured lift and standard error are scaled by the share of the
        test's modelled lift those copies carry in this fit (copies counted
        again; equal shares where the modelled lifts are not all positive), so
        that a replicate holding every test region once gets the test unchanged.
        """
        stored: pd.DataFrame = self.lift_tests_
        rows = []
        for i, row in enumerate(stored.itertuples(index=False)):
            listed = set(range(len(self.regions_))) if row.regions is None else {
                self.regions_.index(r) for r in row.regions}
            copies = [k for k, r in enumerate(draw) if int(r) in listed]
            if not copies:
                continue
            members = sorted(listed)
            weight = per_region[i, members]  # [|S|]
            if np.all(weight > 0):
                share = dict(zip(members, weight / weight.sum(), strict=True))
            else:
                share = dict.fromkeys(members, 1.0 / len(members))
            factor = float(sum(share[int(draw[k])] for k in copies))
            rows.append({"channel": row.channel, "start": row.start, "end": row.end, "regions": copies,
                         "lift": row.lift * factor, "lift_se": row.lift_se * factor})
        return pd.DataFrame(rows) if rows else None

    def get_carryover(self) -> pd.DataFrame:
        """Each channel's carryover (adstock) as weights per lag.

        ``w[lag, c]`` is the share of one week's activity in channel ``c`` that
        reaches its response curve ``lag`` weeks later: the model saturates the
        carried activity ``sum_l w_l x_(t-l)`` (in units of the region's typical
        activity). With constant gates (the default, ``carryover.context_scale``
        0) the weights are the same from every week; with calendar-moved gates
        they are averaged over the fitted weeks from which an impulse can be
        followed. The weights sum to at most 1: the cut at ``carryover.max_lag``
        drops a tail.

        Returns
        -------
        DataFrame
            Index ``lag`` (0 to ``carryover.max_lag``, or to the number of fitted
            weeks less one if that is smaller), one column per channel.
        """
        check_is_fitted(self, "net_")
        weights = self._carryover_weights(self._carryover_kernel()[0])  # [L,C]
        return pd.DataFrame(weights, index=pd.RangeIndex(len(weights), name="lag"),
                            columns=pd.Index(self.channels_, name="channel"))

    def _carryover_weights(self, kernel: np.ndarray) -> np.ndarray:
        """``[L,C]`` the mean weight per lag of a carryover kernel ``[C,T,T]`` over start weeks."""
        T = kernel.shape[1]
        lags = range(min(self.config_.carryover.max_lag, T - 1) + 1)
        # np.diagonal(offset=-lag) holds K[c, s + lag, s] for every start week s
        return np.array([np.diagonal(kernel, offset=-lag, axis1=1, axis2=2).mean(axis=1) for lag in lags])

    def get_channel_parameters(self, by_region: bool = False) -> pd.DataFrame:
        """The fitted response of each channel: coefficient, Hill curve and carryover.

        Per channel ``c`` in region ``r`` (see README, "The model")::

            contribution_rt = kpi_scale_r * coefficient_c * region_multiplier_rc
                              * Hill(carried_rt; half_saturation_c, slope_c)
            carried_rt = sum_lag w_lag,c * x_r(t-lag),c / typical_activity_rc

        exactly with the defaults (constant carryover gates, effectiveness
        off). With ``carryover.context_scale > 0`` the weights ``w`` are
        averages over the fitted weeks, and with ``effectiveness.enabled`` a
        time-varying multiplier in ``[effectiveness.low, high]`` scales each
        contribution too; the formula is then approximate.

        Columns: ``coefficient`` (the curve's ceiling as a share of a region's
        mean KPI, before the regional multiplier), ``half_saturation`` (carried
        activity, in multiples of the region's typical weekly activity, at
        which the curve reaches half its ceiling), ``slope`` (Hill exponent),
        ``saturation_at_typical`` (the curve's height, as a share of its
        ceiling, at steady typical activity: above 0.5 the channel is past its
        half-saturation point), ``elasticity_at_typical`` (``slope x (1 -
        saturation_at_typical)``: the per cent change in the contribution per
        per cent change in steady activity at its typical level; the
        contribution there is the marginal effect divided by it, so for an
        always-on channel, whose data show the marginal effect only, it is
        what turns that into a level, and it comes from the curve's assumed
        shape: see README, "What the data identify"), ``decay_stage_1`` ... (each carryover stage's
        gate, averaged over the fitted weeks: the share of the carried activity
        kept from one week to the next), ``mean_lag``, ``peak_lag`` and
        ``weeks_to_90pct`` of the carryover weights (:meth:`get_carryover`),
        ``carried_share`` (their sum), ``region_multiplier_min`` /
        ``_max`` (the spread of the regional multipliers) and
        ``fixed_at_zero`` (a channel without variation, effect fixed at 0).
        ``attrs["coefficient_bound"]`` is the learned bound on coefficients.

        With ``by_region=True``, one row per (region, channel) instead:
        ``kpi_scale``, ``typical_activity`` (the channel's mean weekly activity
        there, in the units of ``X``), ``region_multiplier``, ``coefficient``
        (with the multiplier), ``half_saturation_activity`` (half-saturation in
        the units of ``X``) and ``slope``.
        """
        check_is_fitted(self, "net_")
        net = self.net_
        with torch.no_grad():
            beta = net.beta().double().cpu().numpy()  # [C]
            k = net.saturation.half_saturation().double().cpu().numpy()  # [C]
            slope = net.saturation.slope().double().cpu().numpy()  # [C]
            mult = torch.exp(net.region_dev).double().cpu().numpy()  # [R,C]
            bound = float(net.coefficient_bound())
        if by_region:
            R, C = mult.shape
            index = pd.MultiIndex.from_product([self.regions_, self.channels_], names=[REGION, "channel"])
            return pd.DataFrame({
                "kpi_scale": np.repeat(self.scaler_.y_scale, C),
                "typical_activity": self.scaler_.media_scale.reshape(-1),
                "region_multiplier": mult.reshape(-1),
                "coefficient": (beta[None, :] * mult).reshape(-1),
                "half_saturation_activity": (k[None, :] * self.scaler_.media_scale).reshape(-1),
                "slope": np.tile(slope, R),
            }, index=index)
        kernel, gates = self._carryover_kernel()  # [C,T,T], [S,T,C]
        weights = self._carryover_weights(kernel)  # [L,C]
        lag = np.arange(len(weights))[:, None]  # [L,1]
        total = weights.sum(axis=0)  # [C]
        carried = (np.cumsum(weights, axis=0) >= 0.9 * total[None, :])  # [L,C]
        at_typical = 1.0 / (1.0 + (k / np.maximum(total, 1e-12)) ** slope)  # Hill at steady typical activity
        table = pd.DataFrame({
            "coefficient": beta,
            "half_saturation": k,
            "slope": slope,
            "saturation_at_typical": at_typical,
            "elasticity_at_typical": slope * (1.0 - at_typical),
            **{f"decay_stage_{i + 1}": gates[i].mean(axis=0) for i in range(gates.shape[0])},
            "mean_lag": (weights * lag).sum(axis=0) / np.maximum(total, 1e-12),
            "peak_lag": weights.argmax(axis=0),
            "weeks_to_90pct": carried.argmax(axis=0),
            "carried_share": total,
            "region_multiplier_min": mult.min(axis=0),
            "region_multiplier_max": mult.max(axis=0),
            "fixed_at_zero": net.free.cpu().numpy() == 0,
        }, index=pd.Index(self.channels_, name="channel"))
        table.attrs["coefficient_bound"] = bound
        return table

    def _carryover_kernel(self) -> tuple[np.ndarray, np.ndarray]:
        """The fitted period's carryover kernel ``[C,T,T]`` and gates ``[S,T,C]``."""
        p = self.panel_
        R, T, _ = p.shape
        batch = self._batch(self.config_, p, self.scaler_, self.knots_, np.arange(R), p.media,
                            p.control_values, np.arange(T, dtype=float))
        device = next(self.net_.parameters()).device
        with torch.no_grad(), full_precision():
            national, _ = self.net_.contexts(batch.to(device))  # [T,H]
            gates = self.net_.carryover.gates(national)  # [S,T,C]
            kernel = carryover_kernel(gates, self.net_.carryover.max_lag)  # [C,T,T]
        return kernel.double().cpu().numpy(), gates.double().cpu().numpy()

    def get_response_curves(
        self,
        channels: Sequence[str] | None = None,
        multipliers: Sequence[float] | None = None,
        regions: Sequence[Any] | None = None,
        period: Period | None = None,
        *,
        X: ArrayLike | None = None,
        dates: ArrayLike | None = None,
        controls: ArrayLike | Sequence[str] | None = None,
        spend: pd.DataFrame | None = None,
        by_region: bool = False,
        n_boot: int = 0,
        level: float = 0.9,
        random_state: int = 0,
        prior_spread: float = PRIOR_SPREAD,
    ) -> pd.DataFrame:
        """KPI response to scaling each channel's activity, with its induced activity.

        For each channel and multiplier ``m``, the channel's observed activity
        is multiplied by ``m`` in the selected regions and weeks (activity
        before the period, and its carryover, stay as observed) and the
        activity it induces in other channels changes through the channel graph
        as under :meth:`get_channel_effects`. ``response``: the KPI over the
        selected cells minus the KPI with the channel switched off there (at
        ``m = 0`` zero; without ``regions``/``period``, at ``m = 1`` the
        channel's ``total`` effect). ``spend``: the
        channel's spend over those cells times ``m``; ``roi``: response / spend;
        ``marginal_roi``: the slope of response against spend between
        neighbouring multipliers (central differences; one-sided at the ends).

        Parameters
        ----------
        channels : list of str, optional
            Default: all channels.
        multipliers : list of float, optional
            Non-negative, default ``0, 0.25, ..., 2``; 0 and 1 are always included.
        regions, period
            Restrict the cells as in :meth:`get_channel_effects`.
        X, dates, controls, spend
            Rows of your own instead of the fitted cells, as in :meth:`optimize_budget`:
            the curves of next quarter's flighting.
        by_region : bool
            One curve per region (a ``region`` column first): where each channel's last
            unit of spend earns most. Regions do not interact in the model, so these
            are the same passes as the pooled curve, which is their sum.
        n_boot, level, random_state, prior_spread
            With ``n_boot >= 2`` each point gets region-bootstrap bounds at ``level``:
            ``response_lo`` / ``_hi`` (each refit's response per unit of the drawn regions'
            spend, times this curve's spend), ``roi_lo`` / ``_hi`` and ``marginal_roi_lo`` /
            ``_hi``, from ``n_boot`` refits with their own prior strengths (as
            :meth:`get_effect_intervals`, shared with it inside :meth:`shared_refits`); on the
            fitted cells only (not with ``regions``, ``by_region`` or ``X``).

        Raises
        ------
        DataError
            For unknown channels or regions, a period without fitted dates, or
            negative or non-finite multipliers; with ``X``, as :meth:`optimize_budget`.
        """
        check_is_fitted(self, "graph_model_")
        names = self._check_channels(list(self.channels_) if channels is None else _as_list(channels))
        grid = np.linspace(0.0, 2.0, 9) if multipliers is None else np.asarray(multipliers, dtype=float)
        if grid.ndim != 1 or not np.all(np.isfinite(grid)) or np.any(grid < 0):
            raise DataError(f"`multipliers` must be finite numbers >= 0, found {list(np.ravel(grid))}")
        grid = np.unique(np.concatenate([grid, [0.0, 1.0]]))
        _check_flag(by_region, "by_region")
        n_boot, prior_spread = self._bootstrap_setup(
            n_boot, level, prior_spread,
            [n for n, given in (("regions", regions is not None), ("by_region", by_region), ("X", X is not None))
             if given])
        cells = self._plan_cells(regions, period, X, dates, controls, spend)
        timelines = np.flatnonzero(cells.keep.any(axis=1)) if by_region else [None]  # [R'] scored
        rows = []
        # each channel at each multiplier, the others as observed; channels that reach no channel
        # in common through the graph share passes
        _, moved = self._move_kpis(cells, np.ones((1, len(self.channels_))),
                                   [(0, self.channels_.index(n), g) for n in names for g in grid], by_region=True)
        for i, name in enumerate(names):
            c = self.channels_.index(name)
            kpis = moved[i * len(grid) : (i + 1) * len(grid)]  # [G,R']
            paid_by = cells.spend_by_timeline(np.array([c]))[:, 0]  # [R']
            for r in timelines:
                kpi = kpis.sum(axis=1) if r is None else kpis[:, r]
                paid = float(paid_by.sum() if r is None else paid_by[r])
                response = kpi - kpi[0]  # grid[0] == 0
                spent = grid * paid
                marginal = np.gradient(response, spent) if paid > 0 else np.full(len(grid), np.nan)
                where = {} if r is None else {"region": self.regions_[cells.region_idx[r]]}
                for m, s_, r_, mr in zip(grid, spent, response, marginal, strict=True):
                    rows.append({**where, "channel": name, "multiplier": m, "spend": s_, "response": r_,
                                 "roi": r_ / s_ if s_ > 0 else np.nan, "marginal_roi": mr})
        table = pd.DataFrame(rows)
        if n_boot:
            self._attach_curve_bands(table, names, grid, period, n_boot, level, random_state, prior_spread)
        return table

    def _attach_curve_bands(
        self, table: pd.DataFrame, names: list[str], grid: np.ndarray, period: Period | None, n_boot: int,
        level: float, random_state: int, prior_spread: float,
    ) -> None:
        """:meth:`get_response_curves`' bootstrap bounds into ``table`` (one pooled curve per
        channel, rows channel-major over ``grid``): each refit's curve per unit of this fit's
        spend over the regions it drew."""
        G = len(grid)
        per_unit = np.full((n_boot, len(names), G), np.nan)  # response per unit of the channel's spend at x1
        marginal = np.full((n_boot, len(names), G), np.nan)
        for b, (draw, refit) in enumerate(self._bootstrap_refits(n_boot, random_state, prior_spread)):
            curves = refit.get_response_curves(channels=names, multipliers=list(grid), period=period)
            cells = self._cells(None, period)[draw]  # the drawn regions' cells, as the refit's own
            for i, name in enumerate(names):
                c = self.channels_.index(name)
                paid = float(np.where(cells, self.spend_[draw][..., c], 0.0).sum())
                if paid <= 0:
                    continue
                response = curves[curves["channel"] == name]["response"].to_numpy()  # [G] by multiplier
                per_unit[b, i] = response / paid
                marginal[b, i] = np.gradient(response, grid * paid)
        lo, hi, _ = _spread(per_unit, level)  # [k,G] response per unit of spend at x1
        paid = table.loc[table["multiplier"] == 1.0, "spend"].to_numpy()[:, None]  # [k,1] this curve's, at x1
        with np.errstate(invalid="ignore", divide="ignore"):
            roi_lo, roi_hi, _ = _spread(np.where(grid > 0, per_unit / grid, np.nan), level)
        m_lo, m_hi, _ = _spread(marginal, level)
        table["response_lo"], table["response_hi"] = (lo * paid).reshape(-1), (hi * paid).reshape(-1)
        table["roi_lo"], table["roi_hi"] = roi_lo.reshape(-1), roi_hi.reshape(-1)
        table["marginal_roi_lo"], table["marginal_roi_hi"] = m_lo.reshape(-1), m_hi.reshape(-1)
        table.attrs.update({"n_boot": n_boot, "level": level, "prior_spread": prior_spread})

    def optimize_budget(
        self,
        budget: float | None = None,
        channels: Sequence[str] | None = None,
        bounds: tuple[float, float] | Mapping[str, tuple[float, float]] = (0.5, 1.5),
        regions: Sequence[Any] | None = None,
        period: tuple[Any, Any] | None = None,
        n_boot: int = 0,
        level: float = 0.9,
        random_state: int = 0,
        prior_spread: float = PRIOR_SPREAD,
        *,
        X: ArrayLike | None = None,
        dates: ArrayLike | None = None,
        controls: ArrayLike | Sequence[str] | None = None,
        spend: pd.DataFrame | None = None,
        kpi_value: float | None = None,
        by_region: bool = False,
        _shape: np.ndarray | None = None,
    ) -> pd.DataFrame:
        """Reallocate spend across channels to maximise the modelled KPI (or, with
        ``kpi_value``, the profit: the KPI's value minus the spend).

        Each chosen channel's activity is scaled by its own multiplier in the
        selected regions and weeks, all at once, with induced activity moving
        through the channel graph as in :meth:`get_response_curves` (activity
        a channel's parents induce in it scales with it). Spend scales with the
        multiplier. SLSQP (scipy) maximises the KPI over the selected cells
        subject to total spend = ``budget`` and ``bounds`` on every multiplier.

        Parameters
        ----------
        budget : float, optional
            Total spend of the chosen channels over the selected cells; default:
            what they spent (a pure reallocation).
        channels : list of str, optional
            Channels to reallocate (default all with spend, except channels whose effect
            is fixed at 0 because their activity never varies: ``level`` "no variation" in
            :meth:`get_identification`); the others stay as observed.
        bounds : (low, high) or dict
            Multiplier range, ``0 <= low <= high`` with ``low < high`` for at least one
            channel: one pair for every channel, or ``{channel: (low, high)}`` for
            some of the chosen channels (the rest keep ``(0.5, 1.5)``); ``(1, 1)``
            holds a channel at its observed spend.
        regions, period
            Restrict the cells as in :meth:`get_channel_effects`.
        n_boot, level, random_state, prior_spread
            With ``n_boot >= 2``: how robust the plan is. The model is refitted
            on ``n_boot`` region-bootstrap replicates, each with its own prior
            strengths (as in :meth:`get_effect_intervals`) and the plan's multipliers are scored
            by each: its KPI gain over the observed allocation in that
            replicate's cells (with ``X``: the plan rows of the regions it drew, a region
            drawn twice counted twice). Not with ``regions`` selecting fitted cells
            (replicates redraw them). With ``n_jobs`` (see the class) the refits
            run side by side in worker processes.
        X, dates, controls, spend
            Plan over rows of your own instead of the fitted cells, e.g. next
            quarter's flighting: ``X`` holds the fitted channel columns, one row per
            (region, date), with ``regions`` (then a label per row, or the name of
            ``X``'s region column, as in :meth:`predict`), ``dates`` (required; after
            the fit to plan ahead, with carryover from the fitted weeks) and the
            fitted ``controls`` (default: each region's last fitted values; controls
            add to the KPI apart from media, so they only enter ``kpi_gain_fraction``'s
            total). The rows' channels are scaled and their KPI scored
            (a forecast's anchor and level do not enter: only media KPI differences
            count). ``spend``: money per row for channels whose ``X`` values are not
            money (a DataFrame like ``fit(spend=...)``'s); channels not in it cost
            what a unit of their activity cost the region over the fit. Not with
            ``period``.
        kpi_value : float, optional
            Money one unit of KPI is worth (a margin per sale, a value per visit).
            The total is then free: the plan maximises ``kpi_value`` x KPI - spend
            within ``bounds``, so it spends more on a channel while its last unit of
            spend returns more than it costs (marginal ROI x ``kpi_value`` above 1)
            and less where it returns less; the optimum's total spend is the
            budget to set. Not with ``budget``. (A target marginal ROI ``r`` is
            ``kpi_value = 1 / r``.)
        by_region : bool
            One multiplier per region and channel instead of per channel: budget moves
            between regions too (``bounds`` apply to each region's channel; ``bounds``
            keyed by ``(region, channel)`` set one region's range). Returns
            one row per (region, channel) with spend. Regions are independent in the
            model, so every region's slopes and curvatures come from the same passes;
            Newton steps on each multiplier move it to where its marginal KPI per unit
            of spend meets a price, set so that the plan spends ``budget`` (with
            ``kpi_value`` the price is ``1 / kpi_value``). With ``n_boot`` each
            replicate's drawn regions keep their own multipliers.

        Returns
        -------
        DataFrame indexed by channel: ``spend``, ``optimal_spend``, ``multiplier``,
        ``response`` and ``optimal_response`` (each channel's modelled KPI against
        switching it off, at observed and at optimal spend), and ``level`` from
        :meth:`get_identification` (``"extrapolated"``: an always-on channel whose
        curve, and so the plan's move for it, rests on the curve's assumed
        shape; test before moving much budget into or out of it). ``attrs`` holds
        ``kpi_gain`` (modelled KPI at the optimum minus at observed spend, over
        the selected cells), ``converged`` and the optimiser's ``message`` (a
        ``UserWarning`` says when it did not converge). When
        the observed allocation is feasible and the optimiser ends below it, the
        observed allocation is returned (``kpi_gain`` 0). With ``n_boot``,
        ``attrs`` also holds ``gain_lo`` / ``gain_hi`` (percentile interval at
        ``level`` of the replicates' gains, as a fraction of each replicate's
        modelled KPI over its cells), ``gain_share_positive`` (fraction of
        replicates in which the plan beats the observed allocation), ``n_boot``,
        ``level`` and ``prior_spread``; ``kpi_gain_fraction`` is this fit's gain on the same scale.
        With ``kpi_value``, ``attrs`` also holds ``kpi_value``, ``spend_change`` (the
        plan's spend minus the observed) and ``profit_gain`` (``kpi_value`` x
        ``kpi_gain`` - ``spend_change``), and the bootstrap figures are profit gains
        as a fraction of the modelled KPI's value (``profit_gain_fraction`` this fit's).

        Raises
        ------
        DataError
            For unknown channels, channels without spend, bad bounds or bounds for
            channels that are not reallocated, a budget
            outside what the bounds allow, ``n_boot`` of 1 or below 0, ``level``
            outside (0, 1), a negative ``prior_spread``, ``n_boot`` with ``regions``, or
            a ``kpi_value`` that is not a positive number or comes with ``budget``.
        """
        from scipy.optimize import minimize

        check_is_fitted(self, "graph_model_")
        cells = self._plan_cells(regions, period, X, dates, controls, spend)
        spend_all = _observed_spend(cells.keep, cells.spend)  # [C]
        names = self._budget_channels(channels, regions, period, cells=cells)
        idx = np.array([self.channels_.index(c) for c in names])
        spend = spend_all[idx]
        if np.any(spend <= 0):
            raise DataError(
                f"`channels` {[c for c, s_ in zip(names, spend, strict=True) if s_ <= 0]} have no spend in the "
                "selected cells; leave them out"
            )
        by_channel, per_region = _split_region_bounds(bounds, by_region)
        lo, hi = _channel_bounds(by_channel, names)  # [k], [k]
        current = float(spend.sum())
        value = _kpi_value(kpi_value, budget)
        target = current if budget is None else _as_number(budget, "budget")
        if not np.isfinite(target):
            raise DataError(f"`budget` must be a finite number (total spend of the chosen channels), found "
                            f"{budget!r}; e.g. budget={current:.0f} (what they spent), or budget=None for that")
        low_total, high_total = float(lo @ spend), float(hi @ spend)
        if value is None and not per_region and not (np.isfinite(target) and low_total - 1e-9 * current <= target <= high_total + 1e-9 * current):
            raise DataError(
                f"`budget` {target:,.2f} cannot be met with multipliers in {bounds}: the chosen channels "
                f"spent {current:,.2f}, so the budget must lie in [{low_total:,.2f}, {high_total:,.2f}]; "
                f"give a budget in that range, or raise the maximum multipliers in `bounds` (this budget is "
                f"{target / current:.3g} times what they spent)" if target > high_total else
                f"`budget` {target:,.2f} cannot be met with multipliers in {bounds}: the chosen channels "
                f"spent {current:,.2f}, so the budget must lie in [{low_total:,.2f}, {high_total:,.2f}]; "
                "give a budget in that range, or lower the minimum multipliers in `bounds`"
            )
        n_boot, prior_spread = self._bootstrap_setup(n_boot, level, prior_spread,
                                                     ["regions"] if regions is not None and X is None else [])
        if _check_flag(by_region, "by_region"):
            table, m_fit = self._optimize_regions(cells, idx, names, lo, hi, target, value, current, per_region)
            if n_boot:
                self._attach_robustness(table, cells, idx, m_fit, period, n_boot, level, random_state,
                                        prior_spread, value)
            return table

        def kpi(m: np.ndarray) -> float:
            return self._plan_kpi(cells, idx, m)

        base = kpi(np.ones(len(idx)))
        # the objective is the gain in KPI over the observed allocation (with kpi_value: in money,
        # the spend change subtracted), as a fraction of the media KPI (of its value, or of the spend)
        worth, cost = (1.0, np.zeros(len(idx))) if value is None else (value, spend)
        norm = max(abs(worth * base), float(cost.sum()), 1e-12)

        def objective(m: np.ndarray) -> float:
            return -(worth * (kpi(m) - base) - float((m - 1.0) @ cost)) / norm

        def gradient(m: np.ndarray) -> np.ndarray:
            """Forward differences of step 1e-3 in each multiplier (backward where the step
            would leave the bounds), the steps of channels that reach no channel in common
            taken in one pass (``_move_kpis``)."""
            step = np.where(m + FD_STEP <= hi, FD_STEP, -FD_STEP)  # [k]
            values, stepped = self._move_kpis(cells, self._factors(idx, m[None]),
                                              [(0, c, m[j] + step[j]) for j, c in enumerate(idx)])
            return -(worth * (stepped - values[0]) / step - cost) / norm

        # the start: a common multiplier (or one scaling `_shape`, a neighbouring budget's plan, as
        # get_budget_frontier passes) that spends the target within the bounds
        x0 = np.clip(1.0, lo, hi) if value is not None else _feasible_start(lo, hi, spend, target, _shape)
        # ftol 1e-8 of the media KPI: the objective comes from a float32 network. With 1e-10,
        # on the MMM panel's week-96 fit of session 20 SLSQP reached the plan in 35 iterations
        # and then took tiny steps until its limit of 200 (18 s, "not converged"); with 1e-9
        # and 1e-8 it stopped at the same plan and the same gain to 7 digits in 35 (2 s).
        res = minimize(
            objective, x0, jac=gradient, method="SLSQP", bounds=list(zip(lo, hi, strict=True)),
            constraints=[] if value is not None else
            [{"type": "eq", "fun": lambda m: float(m @ spend - target) / current}],
            options={"maxiter": 200, "ftol": 1e-8},
        )
        m_opt = np.clip(res.x, lo, hi)
        gain = kpi(m_opt) - base
        if not res.success:
            warnings.warn(
                f"optimize_budget: SLSQP stopped without converging ({res.message}); the plan "
                f"below is the best point it reached, not a checked optimum. Check attrs['message'], "
                f"try narrower `bounds` or fewer `channels`",
                stacklevel=2,
            )
        if (value is not None or target == current) and np.all((lo <= 1.0) & (1.0 <= hi)) and objective(m_opt) > 0:
            m_opt, gain = np.ones(len(idx)), 0.0  # no better than the observed allocation

        _, (observed, optimal) = self._channel_responses(cells, idx, np.vstack([np.ones(len(idx)), m_opt]))
        table = pd.DataFrame(
            {"spend": spend, "optimal_spend": m_opt * spend, "multiplier": m_opt,
             "response": observed, "optimal_response": optimal,
             "level": self.get_identification()["level"].reindex(names).to_numpy()},
            index=pd.Index(names, name="channel"),
        )
        table.attrs.update({"kpi_gain": gain, "converged": bool(res.success), "message": str(res.message)})
        if value is not None:
            change = float((m_opt - 1.0) @ spend)
            table.attrs.update({"kpi_value": value, "spend_change": change, "profit_gain": value * gain - change})
        if n_boot:
            self._attach_robustness(table, cells, idx, np.broadcast_to(m_opt, (len(self.regions_), len(idx))),
                                    period, n_boot, level, random_state, prior_spread, value)
        return table

    def get_budget_frontier(
        self,
        levels: Sequence[float] = FRONTIER_LEVELS,
        channels: Sequence[str] | None = None,
        bounds: tuple[float, float] | Mapping[Any, tuple[float, float]] = (0.5, 1.5),
        regions: Sequence[Any] | None = None,
        period: tuple[Any, Any] | None = None,
        *,
        X: ArrayLike | None = None,
        dates: ArrayLike | None = None,
        controls: ArrayLike | Sequence[str] | None = None,
        spend: pd.DataFrame | None = None,
        by_region: bool = False,
    ) -> pd.DataFrame:
        """What each total budget would buy, best allocated: :meth:`optimize_budget` at
        ``levels`` times the chosen channels' observed spend.

        Beside each optimal plan, the same budget spent in today's mix (every chosen
        channel scaled by the level, :meth:`evaluate_plan`): the gain from reallocating
        is the difference. ``marginal_roi`` is the frontier's slope (KPI per unit of
        extra budget, central differences between neighbouring levels): where it falls
        below what a unit of KPI must earn, the extra budget does not pay.

        Parameters
        ----------
        levels : sequence of float
            Total budgets as multiples of what the chosen channels spent; each must be
            reachable within ``bounds`` (with the default ``(0.5, 1.5)``: 0.5 to 1.5).
            1.0 (a pure reallocation) is added when missing, as the reference.
        channels, bounds, regions, period, X, dates, controls, spend, by_region
            As in :meth:`optimize_budget`.

        Returns
        -------
        DataFrame indexed by ``level`` (ascending): ``budget``, ``spend_change``
        (budget minus the observed spend), ``kpi_change`` (modelled KPI of the optimal
        plan minus the observed plan's, over the selected cells), ``mix_kpi_change`` (the
        same budget in today's mix), ``incremental_roi`` (KPI per unit of the budget's
        change, both plans best allocated: ``kpi_change`` minus its value at 1.0, over
        ``spend_change``; empty at 1.0), ``marginal_roi``, ``converged``, then each chosen
        channel's optimal spend as ``<channel> spend``. ``attrs["plan"]``: the
        :meth:`optimize_budget` table of the best plan at today's budget (level 1.0).

        Raises
        ------
        DataError
            For ``levels`` that are empty, not positive numbers, or not reachable within
            ``bounds``, and for whatever :meth:`optimize_budget` rejects.
        """
        check_is_fitted(self, "graph_model_")
        given = _as_list(levels) if not isinstance(levels, (str, bytes)) else [levels]
        bad = [v for v in given if isinstance(v, bool) or not isinstance(v, numbers.Real)
               or not (np.isfinite(float(v)) and float(v) > 0)]
        if not given or bad:
            raise DataError(
                f"`levels` must be positive numbers (total budgets as multiples of the observed spend), found "
                f"{bad or list(given)}; e.g. levels={list(FRONTIER_LEVELS)}"
            )
        steps = sorted({float(v) for v in given} | {1.0})
        common: dict[str, Any] = dict(channels=channels, bounds=bounds, regions=regions, period=period, X=X,
                                      dates=dates, controls=controls, spend=spend, by_region=by_region)
        now = self.optimize_budget(**common)
        names = list(dict.fromkeys(now.index.get_level_values("channel")))
        current = float(now["spend"].sum())
        # each plan starts from today's best plan scaled to its budget (where the bounds bind,
        # the same channels bind nearby): 2.5 s against 4.3 s for 7 levels on the MMM panel's model
        shape = None if by_region else np.maximum(now["multiplier"].to_numpy(), 1e-6)
        rows, plans = [], []
        for level in steps:
            if level == 1.0:
                plan = now
            else:
                try:
                    plan = self.optimize_budget(budget=level * current, **common, _shape=shape)
                except DataError as exc:
                    raise DataError(f"`levels` {level:g}: {exc}") from None
            mix = 0.0 if level == 1.0 else float(self.evaluate_plan(  # at 1.0 the observed plan itself
                {c: level for c in names}, regions=regions, period=period, X=X, dates=dates, controls=controls,
                spend=spend).attrs["kpi_change"])
            spent = plan.groupby(level="channel", sort=False)["optimal_spend"].sum().reindex(names)
            rows.append({"budget": level * current, "spend_change": (level - 1.0) * current,
                         "kpi_change": float(plan.attrs["kpi_gain"]), "mix_kpi_change": mix,
                         "converged": bool(plan.attrs.get("converged", True))})
            plans.append(spent.to_numpy())
        table = pd.DataFrame(rows, index=pd.Index(steps, name="level"))
        reallocated = float(table.loc[1.0, "kpi_change"])  # the best plan at today's budget
        with np.errstate(divide="ignore", invalid="ignore"):
            table.insert(4, "incremental_roi", np.where(
                table["spend_change"] != 0, (table["kpi_change"] - reallocated) / table["spend_change"], np.nan))
        slope = (np.gradient(table["kpi_change"].to_numpy(), table["budget"].to_numpy())
                 if len(table) > 1 else np.full(len(table), np.nan))
        table.insert(5, "marginal_roi", slope)
        for j, c in enumerate(names):
            table[f"{c} spend"] = [p[j] for p in plans]
        table.attrs["plan"] = now  # the best plan at today's budget, as optimize_budget gives it
        return table

    def plot_budget_frontier(self, levels: Sequence[float] = FRONTIER_LEVELS, **kwargs: Any) -> go.Figure:
        """:meth:`get_budget_frontier` as a plotly figure (not shown): the modelled KPI change
        against total spend, best allocated and in today's mix; ``kwargs`` as there."""
        return frontier_figure(self.get_budget_frontier(levels, **kwargs))

    def _attach_robustness(
        self, table: pd.DataFrame, cells: _Cells, idx: np.ndarray, m_fit: np.ndarray,
        period: tuple[Any, Any] | None, n_boot: int, level: float, random_state: int, prior_spread: float,
        value: float | None,
    ) -> None:
        """``optimize_budget``'s bootstrap figures into ``table.attrs``, for multipliers ``m_fit``
        ``[R_fit,k]`` per fitted region and chosen channel."""
        per_region = np.zeros((len(self.regions_), len(idx)))  # [R_fit,k] spend of the plan's cells
        np.add.at(per_region, cells.region_idx, cells.spend_by_timeline(idx))
        table.attrs.update(self._plan_robustness(idx, m_fit, period, n_boot, level, random_state, prior_spread,
                                                 cells.rows, value, per_region))
        table.attrs["kpi_gain_fraction"] = table.attrs["kpi_gain"] / self._total_kpi(cells)
        if value is not None:
            table.attrs["profit_gain_fraction"] = table.attrs["profit_gain"] / (value * self._total_kpi(cells))

    def _optimize_regions(
        self, cells: _Cells, idx: np.ndarray, names: list[str], lo: np.ndarray, hi: np.ndarray,
        target: float, value: float | None, current: float,
        per_region: Mapping[tuple[Any, str], Any] | None = None,
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """:meth:`optimize_budget` with one multiplier per (timeline, channel), by Newton steps on
        each multiplier (a trust region's sequential quadratic programme with a diagonal Hessian).

        Slopes and curvatures come from central differences, each channel's step taken in every
        region at once (the regions do not interact, so the ``2k + 1`` plans give all of them; steps of
        channels that reach no channel in common share a pass, ``_move_kpis``). Each
        step moves every multiplier to where its local quadratic's slope equals ``price`` x its
        spend, within the bounds and the radius: ``price`` = 1 / ``value``, or without ``value``
        the price (bisected on the quadratics, no network passes) at which the step spends
        ``target`` exactly. A step that does not raise the objective (KPI, less the priced spend)
        is retried at a quarter of the radius. At the end every multiplier inside its bounds has
        the same marginal KPI per unit of spend (tested)."""
        R, k = cells.scaled.shape[0], len(idx)
        S = cells.spend_by_timeline(idx)  # [R,k]
        free = S > 0  # [R,k]: multipliers that move spend
        LO, HI = np.broadcast_to(lo, (R, k)).copy(), np.broadcast_to(hi, (R, k)).copy()
        labels = [self.regions_[i] for i in cells.region_idx]  # [R]
        for (region, channel), pair in (per_region or {}).items():
            if region not in labels or channel not in names:
                raise DataError(
                    f"`bounds` key {(region, channel)!r} names "
                    + (f"a region not among the plan's ({listed(labels, 5)})" if region not in labels else
                       f"a channel not among those reallocated ({names})")
                    + "; give (region, channel) keys for those only"
                )
            low, high = _as_number_pair(pair, f"bounds[{(region, channel)!r}]")
            if not (np.isfinite(low) and np.isfinite(high) and 0 <= low <= high):
                raise DataError(f"`bounds[{(region, channel)!r}]` must be (low, high) with 0 <= low <= high, "
                                f"found {pair!r}; e.g. (1, 1) to hold it as observed")
            LO[labels.index(region), names.index(channel)] = low
            HI[labels.index(region), names.index(channel)] = high
        if value is None and not (spent_at := float((S * LO).sum())) <= target <= (top := float((S * HI).sum())):
            raise DataError(
                f"`budget` {target:,.2f} cannot be met with the (region, channel) bounds: they allow "
                f"[{spent_at:,.2f}, {top:,.2f}]; give a budget in that range, or widen the bounds"
            )
        ones = np.ones((R, k))

        def kpis(plans: np.ndarray) -> np.ndarray:  # [B,R,k] multipliers -> [B,R] media KPI
            return self._timeline_kpis(cells, idx, plans)

        price = None if value is None else 1.0 / value  # KPI per unit of spend the plan must earn

        def spent(M: np.ndarray) -> float:
            return float((S * M).sum())

        def slopes_and_curvature(M: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
            """Media KPI at ``M`` ``[R,k]``, its first and second derivative in each multiplier
            (central differences of ``NEWTON_STEP``, each channel's step taken in every region at once)."""
            h = np.minimum(NEWTON_STEP, np.maximum(M, 1e-12) / 2)  # [R,k]: never below 0 activity
            moves = [(0, c, M[:, j] + sign * h[:, j]) for sign in (1.0, -1.0) for j, c in enumerate(idx)]
            v, stepped = self._move_kpis(cells, self._factors(idx, M[None]), moves, by_region=True)
            up, down = stepped[:k].T, stepped[k:].T  # [R,k]
            return float(v[0].sum()), (up - down) / (2 * h), (up - 2 * v[0][:, None] + down) / h**2

        def step_to(M: np.ndarray, g: np.ndarray, curv: np.ndarray, radius: float) -> np.ndarray:
            """Each multiplier's Newton step on the KPI minus the price x spend, within ``radius``
            and the bounds; without a price, the price that makes the plan spend ``target``."""
            def at(lam: float) -> np.ndarray:
                move = np.clip(-(g - lam * S) / curv, -radius, radius)  # curv < 0: uphill
                return np.where(free, np.clip(M + move, LO, HI), M)

            if price is not None:
                return at(price)
            lo_p, hi_p = 0.0, 1.0
            while spent(at(hi_p)) > target and hi_p < 1e300:
                hi_p *= 4.0
            if spent(at(lo_p)) <= target:  # even free spend stays under the budget: spend the rest evenly
                out = at(lo_p)
                room = spent(np.where(free, HI, out)) - spent(out)
                return out + (np.where(free, HI, out) - out) * ((target - spent(out)) / room if room > 0 else 0.0)
            for _ in range(200):  # spend falls as the price rises: bisect it
                mid = 0.5 * (lo_p + hi_p)
                lo_p, hi_p = (mid, hi_p) if spent(at(mid)) > target else (lo_p, mid)
            a, b = at(lo_p), at(hi_p)
            gap = spent(a) - spent(b)
            return a + (b - a) * ((spent(a) - target) / gap if gap > 0 else 0.0)  # spends it exactly

        def worth(f: float, M: np.ndarray) -> float:  # the objective: KPI, less the priced spend
            return f - (0.0 if price is None else price * spent(M))

        # start: as observed with a price; without one, every multiplier alike, spending the budget
        M = np.clip(ones, LO, HI)
        if price is None:
            M[free] = _feasible_start(LO[free], HI[free], S[free], target)
        base = float(kpis(ones[None])[0].sum())
        f, g, curv = slopes_and_curvature(M)
        radius, converged, iterations = 0.5, False, 0
        while iterations < NEWTON_ITERATIONS:
            iterations += 1
            # where the KPI does not bend down (an S-shaped curve's foot) the step goes to the radius
            proposal = step_to(M, g, np.minimum(curv, -1e-300), radius)
            f_new, g_new, curv_new = slopes_and_curvature(proposal)
            moved = float(np.abs(proposal - M).max())
            if worth(f_new, proposal) >= worth(f, M) - 1e-12 * abs(base):
                improved = worth(f_new, proposal) - worth(f, M)
                M, f, g, curv = proposal, f_new, g_new, curv_new
                radius = min(2 * radius, 1.0) if moved >= 0.99 * radius else radius
                if moved < NEWTON_TOLERANCE or improved <= 1e-10 * abs(base):
                    converged = True
                    break
            else:
                radius /= 4.0
                if radius < NEWTON_TOLERANCE:
                    converged = True  # no step, however short, does better: a (local) optimum
                    break
        message = (f"converged in {iterations} Newton iteration(s)" if converged else
                   f"stopped after {iterations} Newton iterations without converging")
        if not converged:
            warnings.warn(
                f"optimize_budget(by_region=True): {message}; the plan below is the best point reached, "
                "not a checked optimum. Check attrs['message']",
                stacklevel=3,
            )
        # the observed allocation when it is feasible and the plan is no better
        if (value is not None or abs(target - current) <= 1e-9 * current) and np.all((LO <= 1) & (1 <= HI)) \
                and worth(f, M) < worth(base, ones):
            M = ones.copy()
        table, gain = self._region_plan_table(cells, idx, names, M, "optimal")
        table["level"] = self.get_identification()["level"].reindex(table.index.get_level_values("channel")).to_numpy()
        table.attrs.update({"kpi_gain": gain, "converged": converged, "message": message, "iterations": iterations})
        if value is not None:
            change = float(((M - 1.0) * S).sum())
            table.attrs.update({"kpi_value": value, "spend_change": change, "profit_gain": value * gain - change})
        m_fit = np.ones((len(self.regions_), k))  # [R_fit,k]: each fitted region's multipliers
        m_fit[cells.region_idx] = M
        return table, m_fit

    def _timeline_kpis(self, cells: _Cells, idx: np.ndarray, plans: np.ndarray) -> np.ndarray:
        """``[B,R']`` media KPI of each timeline for plans ``[B,R',k]``: one multiplier per
        timeline and channel ``idx`` (the rest as observed), through the graph and the network."""
        return self._scaled_kpis(cells, self._factors(idx, plans), by_region=True)

    def _region_plan_table(
        self, cells: _Cells, idx: np.ndarray, names: list[str], M: np.ndarray, prefix: str
    ) -> tuple[pd.DataFrame, float]:
        """One row per (region, channel) with spend for multipliers ``M`` ``[R',k]`` (channels
        ``idx``): ``spend``, ``{prefix}_spend``, ``multiplier``, ``response`` and
        ``{prefix}_response`` (the channel's KPI in that region against switching it off there,
        as observed and under the plan), and the plan's media KPI change over all cells."""
        R, k = cells.scaled.shape[0], len(idx)
        S = cells.spend_by_timeline(idx)  # [R,k]
        # observed and planned, each with every channel switched off: [2,R] and [2k,R]
        v, off = self._move_kpis(cells, self._factors(idx, np.stack([np.ones((R, k)), M])),
                                 [(b, c, 0.0) for b in range(2) for c in idx], by_region=True)
        response = (v[0] - off[:k]).T  # [R,k]
        planned = (v[1] - off[k:]).T  # [R,k]
        labels = [self.regions_[i] for i in cells.region_idx]
        rr, jj = np.nonzero(S > 0)
        table = pd.DataFrame(
            {"spend": S[rr, jj], f"{prefix}_spend": (S * M)[rr, jj], "multiplier": M[rr, jj],
             "response": response[rr, jj], f"{prefix}_response": planned[rr, jj]},
            index=pd.MultiIndex.from_arrays([[labels[r] for r in rr], [names[j] for j in jj]],
                                            names=["region", "channel"]),
        )
        return table, float(v[1].sum() - v[0].sum())

    def evaluate_plan(
        self,
        multipliers: Mapping[str, float],
        regions: Sequence[Any] | None = None,
        period: tuple[Any, Any] | None = None,
        *,
        X: ArrayLike | None = None,
        dates: ArrayLike | None = None,
        controls: ArrayLike | Sequence[str] | None = None,
        spend: pd.DataFrame | None = None,
        n_boot: int = 0,
        level: float = 0.9,
        random_state: int = 0,
        prior_spread: float = PRIOR_SPREAD,
    ) -> pd.DataFrame:
        """What the model says a spend plan does: named channels scaled, the rest as observed.

        A what-if for several channels at once ("cut TV by 20% and raise
        search by 30%"): each named channel's activity is multiplied by its
        multiplier in the selected regions and weeks, all at once, with induced
        activity moving through the channel graph as in :meth:`optimize_budget`
        (for one channel this is :meth:`get_response_curves` at that
        multiplier). Spend scales with the multiplier.

        Parameters
        ----------
        multipliers : dict
            ``{channel: multiplier}``, each finite and ``>= 0`` (0 switches the
            channel off, 1 keeps it as observed). Keys ``(region, channel)`` set one
            region's multiplier (a channel key sets every region's); the table then
            has one row per (region, channel) with spend, as
            ``optimize_budget(by_region=True)``'s.
        regions, period
            Restrict the cells as in :meth:`get_channel_effects`.
        X, dates, controls, spend
            Score the plan on rows of your own (next quarter's flighting) instead of
            the fitted cells, as in :meth:`optimize_budget`.
        n_boot, level, random_state, prior_spread
            With ``n_boot >= 2`` the plan is scored again on ``n_boot`` region-bootstrap
            refits, each with its own prior strengths (as :meth:`get_effect_intervals`, shared
            with it inside :meth:`shared_refits`); not with ``regions`` on the fitted cells.

        Returns
        -------
        DataFrame indexed by the named channels: ``spend``, ``plan_spend``,
        ``multiplier``, ``response`` and ``plan_response`` (each channel's
        modelled KPI against switching it off, as observed and under the plan).
        ``attrs``: ``kpi_change`` (modelled KPI under the plan minus as
        observed, over the selected cells), ``kpi_change_fraction`` (of the
        modelled KPI there) and ``spend_change``; with ``n_boot`` also
        ``kpi_change_fraction_lo`` / ``_hi`` (percentile interval at ``level`` of the
        refits' ``kpi_change_fraction``, each over its own cells), ``share_positive``
        (fraction of refits in which the plan raises the KPI), ``n_boot``, ``level`` and
        ``prior_spread``. The model's forecast, not a measurement; see ``level`` in
        :meth:`get_identification` for channels whose curves rest on their assumed shape.

        Raises
        ------
        DataError
            For an empty or non-dict ``multipliers``, unknown channels, negative
            or non-finite multipliers, unknown regions or a period without fitted dates;
            ``n_boot`` of 1 or with ``regions`` on the fitted cells, and bootstrap arguments
            as :meth:`get_effect_intervals`.
        """
        check_is_fitted(self, "graph_model_")
        if not isinstance(multipliers, Mapping) or not multipliers:
            raise DataError(f"`multipliers` must be a non-empty dict {{channel: multiplier}}, found "
                            f"{multipliers!r}; e.g. evaluate_plan({{'tv': 0.8, 'search': 1.3}})")
        n_boot, prior_spread = self._bootstrap_setup(n_boot, level, prior_spread,
                                                     ["regions"] if regions is not None and X is None else [])
        boot = (n_boot, level, random_state, prior_spread) if n_boot else None
        if any(isinstance(key, tuple) for key in multipliers):
            return self._evaluate_region_plan(multipliers, regions, period, X, dates, controls, spend, boot)
        names = self._check_channels(list(multipliers))
        m = np.array([_as_number(multipliers[c], f"multipliers[{c!r}]") for c in names])
        if not np.all(np.isfinite(m) & (m >= 0)):
            raise DataError(f"`multipliers` must be finite numbers >= 0, found {dict(multipliers)}; e.g. "
                            "{'tv': 0.8} for 80% of tv's activity, 0 to switch a channel off")
        idx = np.array([self.channels_.index(c) for c in names])
        cells = self._plan_cells(regions, period, X, dates, controls, spend)
        paid = _observed_spend(cells.keep, cells.spend)[idx]  # [k]
        (observed, plan), (response, plan_response) = self._channel_responses(
            cells, idx, np.vstack([np.ones(len(idx)), m]))
        table = pd.DataFrame(
            {"spend": paid, "plan_spend": m * paid, "multiplier": m,
             "response": response, "plan_response": plan_response},
            index=pd.Index(names, name="channel"),
        )
        table.attrs.update({"kpi_change": float(plan - observed),
                            "kpi_change_fraction": float(plan - observed) / self._total_kpi(cells),
                            "spend_change": float(((m - 1) * paid).sum())})
        if boot is not None:
            self._attach_plan_intervals(table, cells, idx, np.broadcast_to(m, (len(self.regions_), len(idx))),
                                        period, boot)
        return table

    def _attach_plan_intervals(
        self, table: pd.DataFrame, cells: _Cells, idx: np.ndarray, m_fit: np.ndarray,
        period: tuple[Any, Any] | None, boot: tuple[int, float, int, float],
    ) -> None:
        """:meth:`evaluate_plan`'s bootstrap figures into ``table.attrs``: multipliers ``m_fit``
        ``[R_fit,k]`` scored on each refit (as ``optimize_budget``'s robustness)."""
        n_boot, level, random_state, prior_spread = boot
        rob = self._plan_robustness(idx, np.asarray(m_fit, dtype=float), period, n_boot, level, random_state,
                                    prior_spread, cells.rows)
        table.attrs.update({"kpi_change_fraction_lo": rob["gain_lo"], "kpi_change_fraction_hi": rob["gain_hi"],
                            "share_positive": rob["gain_share_positive"], "n_boot": n_boot, "level": level,
                            "prior_spread": prior_spread})

    def _evaluate_region_plan(
        self, multipliers: Mapping[Any, Any], regions: Any, period: tuple[Any, Any] | None,
        X: ArrayLike | None, dates: ArrayLike | None, controls: ArrayLike | Sequence[str] | None,
        spend: pd.DataFrame | None, boot: tuple[int, float, int, float] | None = None,
    ) -> pd.DataFrame:
        """:meth:`evaluate_plan` with ``(region, channel)`` keys (a channel key sets every region):
        one row per (region, channel) with spend among the named channels; ``boot`` its
        ``(n_boot, level, random_state, prior_spread)``."""
        named = [key[1] if isinstance(key, tuple) and len(key) == 2 else key for key in multipliers]
        unknown = [c for c in named if c not in self.channels_]
        if unknown:
            raise DataError(f"`multipliers` name channels {unknown} that are not fitted channels {self.channels_}; "
                            "key multipliers by channel or by (region, channel)")
        names = [c for c in self.channels_ if c in named]
        cells = self._plan_cells(regions, period, X, dates, controls, spend)
        labels = [self.regions_[i] for i in cells.region_idx]
        M = np.ones((len(labels), len(names)))
        for key in sorted(multipliers, key=lambda key_: isinstance(key_, tuple)):  # channels first
            value = _as_number(multipliers[key], f"multipliers[{key!r}]")
            if not (np.isfinite(value) and value >= 0):
                raise DataError(f"`multipliers[{key!r}]` must be a finite number >= 0, found {multipliers[key]!r}; "
                                "e.g. {('geo_1', 'tv'): 0.8} for 80% of tv's activity in geo_1")
            if isinstance(key, tuple):
                if key[0] not in labels:
                    raise DataError(f"`multipliers` key {key!r} names a region not among the plan's "
                                    f"({listed(labels, 5)}); key by the plan's regions")
                M[labels.index(key[0]), names.index(key[1])] = value
            else:
                M[:, names.index(key)] = value
        idx = np.array([self.channels_.index(c) for c in names])
        table, change = self._region_plan_table(cells, idx, names, M, "plan")
        table.attrs.update({"kpi_change": change, "kpi_change_fraction": change / self._total_kpi(cells),
                            "spend_change": float((table["plan_spend"] - table["spend"]).sum())})
        if boot is not None:
            m_fit = np.ones((len(self.regions_), len(idx)))
            m_fit[cells.region_idx] = M  # each timeline's region (a region's rows are one timeline)
            self._attach_plan_intervals(table, cells, idx, m_fit, period, boot)
        return table

    def _channel_responses(
        self, cells: _Cells, idx: np.ndarray, ms: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """For plans ``ms`` ``[B,k]`` (channels ``idx`` at those multipliers): the media KPI ``[B]``
        and each channel's KPI against switching it off ``[B,k]``, every plan and its k switch-offs
        through the graph and the network together."""
        B, k = ms.shape
        base, off = self._move_kpis(cells, self._factors(idx, ms),
                                    [(b, c, 0.0) for b in range(B) for c in idx])  # [B], [B*k]
        return base, base[:, None] - off.reshape(B, k)

    def _budget_channels(
        self, channels: Sequence[str] | str | None, regions: Sequence[Any] | None = None,
        period: tuple[Any, Any] | None = None, cells: _Cells | None = None,
    ) -> list[str]:
        """The channels :meth:`optimize_budget` reallocates: ``channels`` checked, or by default
        every channel with spend in the selected cells (``cells``, else the fitted ones in
        ``regions`` and ``period``) whose effect the fit could estimate."""
        if channels is not None:
            return self._check_channels(_as_list(channels))
        if cells is None:
            cells = self._fitted_cells(regions, period)
        spend_all = _observed_spend(cells.keep, cells.spend)  # [C]
        free = self.net_.free.cpu().numpy() > 0  # [C]: False where the effect is fixed at 0
        names = [c for c, s_, f in zip(self.channels_, spend_all, free, strict=True) if s_ > 0 and f]
        if not names:
            raise DataError(
                "no channel has spend (and an effect the fit could estimate) "
                + ("in the plan rows of `X`" if cells.grid is not None else
                   f"in the selected cells (regions {regions!r}, period {period!r})")
                + ", so there is no budget to reallocate; choose regions or a period (or plan rows) "
                "where the channels run"
            )
        return names

    def _plan_kpi(self, cells: _Cells, idx: np.ndarray, m: np.ndarray) -> float:
        """Media KPI over ``cells.keep`` with channels ``idx`` at multipliers ``m`` in
        ``cells.where``, induced activity moving through the graph."""
        return float(self._plan_kpis(cells, idx, np.asarray(m, dtype=float)[None])[0])

    def _plan_kpis(self, cells: _Cells, idx: np.ndarray, ms: np.ndarray) -> np.ndarray:
        """:meth:`_plan_kpi` for several multiplier vectors ``ms`` ``[B,k]`` at once ``[B]``."""
        return self._scaled_kpis(cells, self._factors(idx, ms))

    def _factors(self, idx: np.ndarray, ms: np.ndarray) -> np.ndarray:
        """Channel factors ``[B,C]`` (``[B,R',C]``) for multipliers ``ms`` ``[B,k]`` (``[B,R',k]``,
        per timeline) of channels ``idx``, the other channels as observed (1)."""
        ms = np.asarray(ms, dtype=float)
        factors = np.ones((*ms.shape[:-1], len(self.channels_)))
        factors[..., idx] = ms
        return factors

    def _scaled_kpis(
        self, cells: _Cells, factors: np.ndarray, by_region: bool = False, by_channel: bool = False
    ) -> np.ndarray:
        """Media KPI over ``cells.keep`` for each plan of channel ``factors`` (``[B,C]``, or
        ``[B,R',C]`` with factors per timeline) applied in ``cells.where`` through the graph:
        ``[B]``, or ``[B,R']`` per timeline with ``by_region``; ``by_channel`` adds a last axis,
        each channel's KPI. The plans go through the graph and the network together, in chunks
        of at most ``BATCH_CELLS`` activity cells."""
        size = max(1, BATCH_CELLS // cells.scaled.size)
        out = []
        for start in range(0, len(factors), size):
            activity = rescale(cells.scaled, self.graph_model_, factors[start : start + size],
                               cells.where)  # [b,R',T',C]
            if by_channel:
                kpi = np.where(cells.keep[None, :, :, None], self._media_kpi(activity, cells, True), 0.0)
            else:
                kpi = np.where(cells.keep[None], self._media_kpi(activity, cells), 0.0)  # [b,R',T']
            out.append(kpi.sum(axis=2) if by_region else kpi.sum(axis=(1, 2)))
        return np.concatenate(out)

    def _move_kpis(
        self, cells: _Cells, bases: np.ndarray, moves: Sequence[tuple[int, int, Any]], by_region: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Media KPI of plans that each change one channel of a base plan, in few passes.

        ``bases``: channel factors ``[B,C]`` (or ``[B,R',C]`` per timeline, as in
        :meth:`_scaled_kpis`); ``moves``: ``(b, c, value)``, base ``b`` with channel ``c``'s factor
        set to ``value`` (a number, or ``[R']`` per timeline). Returns the bases' KPIs ``[B]`` and
        the moves' ``[n]`` (``[B,R']`` and ``[n,R']`` with ``by_region``), each move's as if its
        plan went through the graph and the network alone. Moves whose channels reach no channel in
        common (:func:`~deepcausalmmm.analysis.effects.pack_moves`) share a pass: each channel's KPI
        depends only on its own activity, and that only on the channels that reach it. Without
        graph edges a base and its moves on distinct channels take two passes instead of
        ``1 + n``."""
        bases = np.asarray(bases, dtype=float)
        B = len(bases)
        reach_ = reach(self.graph_model_)
        groups = np.array([b for b, _, _ in moves], dtype=int)
        chans = np.array([c for _, c, _ in moves], dtype=int)
        pack = pack_moves(reach_, chans, groups)  # [n]
        plans = np.concatenate([bases, np.empty((int(pack.max(initial=-1)) + 1, *bases.shape[1:]))])
        for p in np.unique(pack):
            plans[B + p] = bases[groups[pack == p][0]]
        for (_, c, value), p in zip(moves, pack, strict=True):
            plans[B + p][..., c] = value
        per = self._scaled_kpis(cells, plans, by_region=True, by_channel=True)  # [B+P,R',C]
        base_kpi = per[:B].sum(axis=-1)  # [B,R']
        out = np.empty((len(moves), per.shape[1]))
        for i, (b, c, p) in enumerate(zip(groups, chans, pack, strict=True)):
            # the move's plan: its channels' KPIs from its pack, the rest from its base
            out[i] = np.where(reach_[c], per[B + p], per[b]).sum(axis=-1)
        return (base_kpi, out) if by_region else (base_kpi.sum(axis=1), out.sum(axis=1))

    def _total_kpi(self, cells: _Cells) -> float:
        """Modelled KPI (all parts) over ``cells.keep``."""
        if cells.total is None:
            cells.total = float(np.where(cells.keep, self._fitted_prediction(), 0.0).sum())
        return cells.total

    def _fitted_cells(self, regions: Sequence[Any] | None, period: Period | None) -> _Cells:
        """The fitted panel's cells in ``regions`` and ``period``: the observed ones scored, all
        of them scaled."""
        p = self.panel_
        return _Cells(scaled=self._activity(), keep=self._cells(regions, period),
                      where=self._cells(regions, period, observed=False), spend=self.spend_,
                      region_idx=np.arange(len(p.regions)), controls=p.control_values)

    def _plan_cells(
        self, regions: Any, period: Period | None, X: ArrayLike | None, dates: ArrayLike | None,
        controls: ArrayLike | Sequence[str] | None, spend: pd.DataFrame | None,
    ) -> _Cells:
        """The fitted cells in ``regions`` and ``period``, or with ``X`` its rows (``regions``
        then labels them, as in :meth:`predict`)."""
        if X is None:
            unused = [name for name, value in (("dates", dates), ("controls", controls), ("spend", spend))
                      if value is not None]
            if unused:
                raise DataError(
                    f"{', '.join(f'`{u}`' for u in unused)} describe plan rows and need `X`, which is None; "
                    "pass X=plan (the channel columns per region and date) with them, or drop them to "
                    "use the fitted cells (`regions` and `period` choose among those)"
                )
            return self._fitted_cells(regions, period)
        if period is not None:
            raise DataError(
                f"`period` {period!r} chooses among the fitted weeks and cannot be combined with `X`, whose "
                "rows are the plan's weeks; drop `period`, or pass only the rows you want as `X`"
            )
        return self._row_cells(X, regions, dates, controls, spend)

    def _held_controls(self, regions: ArrayLike | None, n: int) -> pd.DataFrame:
        """Controls for ``n`` plan rows: each row's region's last fitted values. A plan scales
        media, and controls add to the KPI apart from them, so they only enter the KPI total."""
        last = self.panel_.control_values[:, -1, :]  # [R,K]
        index = {r: i for i, r in enumerate(self.regions_)}
        rows = (np.zeros(n, dtype=int) if regions is None else
                np.array([index.get(r, 0) for r in np.asarray(regions, dtype=object).reshape(-1)]))
        return pd.DataFrame(last[rows], columns=self.controls_)

    def _row_cells(
        self, X: ArrayLike, regions: ArrayLike | None, dates: ArrayLike | None,
        controls: ArrayLike | Sequence[str] | None, spend: pd.DataFrame | None,
    ) -> _Cells:
        """The rows of ``X`` placed on the fitted regions' timelines, as in :meth:`predict`: their
        cells are scored and scaled, the fitted history before them carries over into them.

        Spend per cell: ``spend`` (a DataFrame, one row per row of ``X``, columns named like
        channels) where given, else the channel's activity times its cost per unit of activity
        over the region's fitted cells (1 for channels whose activity is their spend; the
        channel's cost over all regions where the region had none).
        """
        X, named = take_named_columns(X, regions=regions, dates=dates)
        regions, dates = named["regions"], named["dates"]
        if dates is None:
            raise DataError(
                "`dates` are needed with `X`: the rows are placed on the fitted timelines by their dates "
                f"(the fit covers {fmt_date(self.panel_.dates[0])}..{fmt_date(self.panel_.dates[-1])}; "
                "later dates plan ahead). Pass one date per row of `X`, or the name of its date column"
            )
        if isinstance(controls, str):
            controls = [controls]
        if controls is None and isinstance(X, pd.DataFrame) and self.controls_ and set(self.controls_) <= set(X.columns):
            controls = list(self.controls_)  # the fitted controls, found among X's columns
        if (isinstance(X, pd.DataFrame) and isinstance(controls, (list, tuple)) and controls
                and all(isinstance(k, str) for k in controls) and set(controls) <= set(X.columns)):
            X, controls = X.drop(columns=list(controls)), X[list(controls)]  # named columns of X
        if controls is None and self.controls_ and np.ndim(X) == 2:
            controls = self._held_controls(regions, len(X))
        placed = self._rows_on_history(X, regions, dates, controls)
        new, reg_idx, pos, grid, media, ctrl = placed
        R, T = media.shape[:2]
        keep = np.zeros((R, T), dtype=bool)
        ri, ti = np.nonzero(new.observed)
        keep[ri, pos[ti]] = True
        p = self.panel_
        fitted = np.where(p.observed[:, :, None], p.media, 0.0).sum(axis=1)  # [R_fit,C]
        paid = np.where(p.observed[:, :, None], self.spend_, 0.0).sum(axis=1)  # [R_fit,C]
        overall = np.divide(paid.sum(axis=0), fitted.sum(axis=0), out=np.ones(fitted.shape[1]),
                            where=fitted.sum(axis=0) > 0)  # [C]
        unit = np.divide(paid, fitted, out=np.broadcast_to(overall, paid.shape).copy(), where=fitted > 0)
        cost = np.where(keep[:, :, None], media * unit[reg_idx][:, None, :], 0.0)  # [R',T',C]
        if spend is not None:
            given = self._spend_grid(spend, new, regions, dates)  # [R',T'_new,C]: X's own where not given
            named_channels = [self.channels_.index(c) for c in spend.columns]
            cost[ri[:, None], pos[ti][:, None], np.array(named_channels)[None, :]] = \
                given[ri, ti][:, [new.channels.index(c) for c in spend.columns]]
        table, (row_region, _) = self._decompose_placed(*placed)
        X_named, ctrl_named = self._name_columns(X, controls)
        rows = None
        if np.ndim(X) == 2:  # rows as given, in plain form (for bootstrap refits); not for a 3-D cube
            ordered = table.reset_index()  # the decomposition's rows in input order
            rows = _PlanRows(
                X=pd.DataFrame(X_named).reset_index(drop=True)[self.channels_],
                region_idx=np.asarray(row_region), dates=np.asarray(ordered[DATE]),
                controls=None if ctrl_named is None else pd.DataFrame(ctrl_named).reset_index(drop=True)[self.controls_],
            )
        return _Cells(scaled=media / self.scaler_.media_scale[reg_idx][:, None, :], keep=keep, where=keep,
                      spend=cost, region_idx=reg_idx, controls=ctrl, grid=grid,
                      total=float(table["prediction"].sum()), rows=rows)

    def _plan_robustness(
        self, idx: np.ndarray, m: np.ndarray, period: tuple[Any, Any] | None, n_boot: int, level: float,
        random_state: int, prior_spread: float, rows: _PlanRows | None = None, value: float | None = None,
        per_region: np.ndarray | None = None,
    ) -> dict[str, float]:
        """Gain of multipliers ``m`` ``[R_fit,k]`` (per fitted region and chosen channel) over the
        observed allocation under region-bootstrap refits: over each refit's cells in ``period``,
        or over the plan ``rows`` of the regions it drew (a region drawn twice brings its rows
        twice, one copy per drawn label); each drawn region keeps its own multipliers. With
        ``value`` (``kpi_value``) the profit gain, the spend change priced from ``per_region``
        ``[R_fit,k]`` (this fit's spend of the plan's cells per fitted region) over the drawn regions."""
        gains = np.full(n_boot, np.nan)
        for b, (draw, refit) in enumerate(self._bootstrap_refits(n_boot, random_state, prior_spread)):
            if rows is None:
                cells = refit._fitted_cells(None, period)
            else:
                take = [(j, np.flatnonzero(rows.region_idx == r)) for j, r in enumerate(draw)]
                take = [(j, at) for j, at in take if len(at)]
                if not take:  # none of the plan's regions drawn
                    continue
                at = np.concatenate([a for _, a in take])
                labels = np.concatenate([np.full(len(a), j) for j, a in take])
                cells = refit._row_cells(rows.X.iloc[at], labels, rows.dates[at],
                                         None if rows.controls is None else rows.controls.iloc[at], None)
            plans = np.ones((2, cells.scaled.shape[0], len(idx)))  # [plan|observed, R',k]
            plans[0] = m[draw[cells.region_idx]]  # each timeline's drawn region's multipliers
            plan, observed = refit._timeline_kpis(cells, idx, plans).sum(axis=1)
            if value is None:
                gains[b] = (plan - observed) / refit._total_kpi(cells)
            else:
                assert per_region is not None
                change = float(((m - 1.0) * per_region)[draw].sum())
                gains[b] = (value * (plan - observed) - change) / (value * refit._total_kpi(cells))
        scored = gains[np.isfinite(gains)]
        lo, hi = np.percentile(scored, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
        return {"gain_lo": float(lo), "gain_hi": float(hi), "gain_share_positive": float((scored > 0).mean()),
                "n_boot": n_boot, "level": level, "prior_spread": prior_spread}

    def _cells(
        self, regions: Sequence[Any] | None, period: Period | None, observed: bool = True,
        name: str = "period",
    ) -> np.ndarray:
        """``[R,T]`` cells of the fitted panel in ``regions`` and ``period`` (observed ones only by
        default); ``name``: the argument that gave ``period``, for errors."""
        p = self.panel_
        keep = p.observed.copy() if observed else np.ones(p.observed.shape, dtype=bool)  # [R,T]
        if regions is not None:
            regions = _as_list(regions)
            unknown = [r for r in regions if r not in self.regions_]
            if unknown:
                raise DataError(
                    f"`regions` {listed(unknown, 5)} were not in the fitted data; name fitted regions "
                    f"(e.g. {self.regions_[:3]}), or None for all"
                )
            keep &= np.isin(np.asarray(self.regions_, dtype=object), np.asarray(regions, dtype=object))[:, None]
        if period is not None:
            dates = p.dates
            is_time = isinstance(dates, pd.DatetimeIndex)  # else integer periods
            example = repr(tuple(fmt_date(d) if is_time else int(d) for d in (dates[0], dates[-1])))
            given: Any = period  # as the caller wrote it, for errors
            if isinstance(period, str) and (".." in period or not is_time):
                # "first..last" (or one period number), as get_effects_over_time labels blocks of steps
                first_, _, last_ = period.partition("..")
                bounds: list[Any] = [first_.strip(), (last_ or first_).strip()]
                if not is_time:
                    try:
                        bounds = [int(b) for b in bounds]
                    except ValueError:
                        raise DataError(f"`{name}` {period!r} must be period numbers: a pair, or two joined by "
                                        f"'..' as in '{example[1:-1].replace(', ', '..')}'; e.g. "
                                        f"{name}={example}") from None
                period = tuple(bounds)
            elif is_time and isinstance(period, (str, pd.Period)):  # a calendar period: '2024Q3', '2024-07', '2024'
                try:
                    span = period if isinstance(period, pd.Period) else pd.Period(period)
                except (TypeError, ValueError) as exc:
                    raise DataError(f"`{name}` {period!r} is neither a (start, end) pair of dates nor a calendar "
                                    f"period such as '2024Q3', '2024-07' or '2024' ({exc}); e.g. "
                                    f"{name}={example}") from None
                period = (span.start_time, span.end_time)
            if isinstance(period, (str, bytes)) or not hasattr(period, "__len__") or len(period) != 2:
                raise DataError(f"`{name}` must be a (start, end) pair of dates, both included"
                                f"{' (or a calendar period such as 2024Q3)' if is_time else ''}, found "
                                f"{period!r}; e.g. {name}={example}")
            start, end = period
            if isinstance(dates, pd.DatetimeIndex):
                try:
                    start, end = pd.Timestamp(start), pd.Timestamp(end)
                except (TypeError, ValueError) as exc:
                    raise DataError(f"`{name}` {period!r} is not a pair of dates ({exc}); "
                                    f"e.g. {name}={example}") from None
            elif not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in (start, end)):
                raise DataError(f"`{name}` {period!r} must be a pair of period numbers: the fit has no calendar "
                                f"dates, its rows are periods {example[1:-1].replace(', ', '..')}; e.g. "
                                f"{name}={example}")
            inside = (dates >= start) & (dates <= end)  # [T]
            keep &= inside[None, :]
            if inside.any() and not keep.any():
                raise DataError(f"`{name}` {given!r} holds no observed week of the selected regions "
                                f"({listed(_as_list(regions), 5)}); choose a period they were observed in, or "
                                "other regions")
            if not keep.any():
                raise DataError(f"`{name}` {given!r} contains no fitted dates; the fit covers "
                                f"{fmt_date(dates[0])}..{fmt_date(dates[-1])}: give (start, end) with start <= end "
                                f"overlapping it, e.g. {name}={example}")
        return keep

    def _check_channels(self, names: list[str]) -> list[str]:
        unknown = [c for c in names if c not in self.channels_]
        if unknown or not names:
            raise DataError(
                f"`channels` {unknown or names} {'are not fitted channels' if unknown else 'is empty'}; "
                f"channels are {self.channels_}"
            )
        return names

    def _activity(self) -> np.ndarray:
        """``[R,T,C]`` the fitted activity in region-scaled units (the channel graph's units)."""
        return self.panel_.media / self.scaler_.media_scale[:, None, :]

    def _media_kpi(self, activity: np.ndarray, cells: _Cells | None = None, by_channel: bool = False) -> np.ndarray:
        """``[R,T]`` KPI from all channels with region-scaled ``activity`` ``[R,T,C]`` swapped in;
        ``[B,R,T]`` for ``B`` activities ``[B,R,T,C]`` at once (one pass of the network over
        ``B`` copies of the regions). The timelines are the fitted panel's, or those of ``cells``.
        ``by_channel``: each channel's KPI, ``[R,T,C]`` or ``[B,R,T,C]``."""
        if activity.ndim == 3:
            return self._media_kpi(activity[None], cells, by_channel)[0]
        p = self.panel_
        B, (R, T, C) = len(activity), activity.shape[1:]
        regions = np.arange(R) if cells is None else cells.region_idx  # [R]
        ctrl = p.control_values if cells is None else cells.controls  # [R,T,K]
        region_idx = np.tile(regions, B)
        media = (activity * self.scaler_.media_scale[regions][None, :, None, :]).reshape(B * R, T, C)
        batch = self._batch(self.config_, p, self.scaler_, self.knots_, region_idx, media,
                            np.tile(ctrl, (B, 1, 1)), np.arange(T, dtype=float),
                            dates=None if cells is None else cells.grid)
        channels = self._run_net(batch).channels.double().cpu().numpy()  # [B*R,T,C], the channels only
        kpi = channels * self.scaler_.y_scale[region_idx][:, None, None]
        return kpi.reshape(B, R, T, C) if by_channel else kpi.sum(axis=-1).reshape(B, R, T)

    def plot_carryover(self) -> go.Figure:
        """The carryover weights of :meth:`get_carryover` against lag, a line per channel (plotly figure)."""
        return carryover_figure(self.get_carryover())

    def plot_response_curves(self, **kwargs: Any) -> go.Figure:
        """Response (KPI) against spend per channel, from :meth:`get_response_curves` (plotly figure)."""
        return response_figure(self.get_response_curves(**kwargs))

    def lift_test_report(self, lift_tests: pd.DataFrame | None = None) -> pd.DataFrame:
        """Measured against modelled lift, one row per test.

        ``model_lift``: the fitted model's prediction minus its prediction with
        the test's channel switched off in the test's regions and weeks (and the
        activity it induced in other channels removed through the channel
        graph), summed over those regions and weeks, KPI units. ``z``:
        (model_lift - lift) / lift_se. Without ``lift_tests``, the tests given
        to :meth:`fit` (``lift_tests_``); with them, any tests in the same
        format, e.g. experiments the model was not fitted to.

        Raises
        ------
        DataError
            If ``lift_tests`` does not fit the fitted panel (see :meth:`fit`), or
            none were given here or to :meth:`fit`.
        """
        check_is_fitted(self, "net_")
        if lift_tests is None:
            stored: pd.DataFrame | None = getattr(self, "lift_tests_", None)
            if stored is None:
                raise DataError(
                    "no lift tests: pass `lift_tests` here, or to fit() to calibrate the model to them"
                )
            return stored.copy()
        p = self.panel_
        return self._lift_report(parse_lift_tests(lift_tests, self.channels_, self.regions_, p.dates))

    def plan_lift_test(self, tests: pd.DataFrame, target_precision: float = 0.2) -> pd.DataFrame:
        """What a geo lift test would measure and how precisely, before it is run.

        ``tests`` are candidate experiments in the lift-test format without
        results: ``channel``, ``start``, ``end`` (a window inside the fitted
        weeks, read as "a test like this, in a period like this") and
        optionally ``regions`` (missing: national). Per test: ``model_lift``,
        the KPI the model says the test would lose (as in
        :meth:`lift_test_report`: the channel switched off in those cells, the
        activity it induced in other channels removed through the graph);
        ``noise_se``, the standard error the KPI's own noise leaves on that
        lift, from each test region's robust residual scale and the
        residuals' persistence ``rho`` (``residual_persistence_``): a sum of
        ``w`` weeks of AR(1) noise has variance ``w + 2 sum_k (w - k) rho^k``
        times one week's; ``relative_se`` = ``noise_se / model_lift``; and
        ``weeks_needed``, the fewest weeks at which ``relative_se`` reaches
        ``target_precision`` for a test in the same regions ending in the same
        week, its lift replayed for each length (so a channel whose effect
        builds up over weeks of carryover loses less per week in a short test;
        NaN when no window up to the start of the fitted weeks would do). Also
        ``n_regions`` and ``weeks``.

        ``noise_se`` is a floor: a real test reads its counterfactual from
        control regions or a forecast, whose own error adds to it (about
        doubling the variance with equally sized test and control groups).
        ``model_lift`` is the model's belief, and for a channel whose level
        ``get_identification()`` marks ``extrapolated`` that is what the test
        is for: a true lift half as large doubles ``relative_se``.

        Raises
        ------
        DataError
            If ``target_precision`` is not a positive number, or a test does
            not fit the fitted panel (as for :meth:`lift_test_report`).
        """
        check_is_fitted(self, "net_")
        if (
            isinstance(target_precision, bool)
            or not isinstance(target_precision, numbers.Real)
            or not np.isfinite(target_precision)
            or target_precision <= 0
        ):
            raise DataError(
                f"`target_precision` must be a positive number (the lift's standard error over the "
                f"lift, e.g. 0.2), found {target_precision!r}"
            )
        if isinstance(tests, (list, tuple)) and tests and all(isinstance(x, Mapping) for x in tests):
            tests = pd.DataFrame(list(tests))
        needed = ["channel", "start", "end"]
        if not isinstance(tests, pd.DataFrame):
            raise DataError(f"`tests` must be a DataFrame (or a list of dicts) with columns {needed} and "
                            f"optionally 'regions', found {type(tests).__name__}")
        missing = [c for c in needed if c not in tests.columns]
        if missing:
            raise DataError(f"`tests` lacks column(s) {missing}; a candidate test needs {needed}, plus "
                            "'regions' (a list per row; missing means all regions) for a geo test")
        # a plan has no results yet: placeholders, so that parsing checks the rest
        tests = tests.assign(**{c: v for c, v in (("lift", 0.0), ("lift_se", 1.0)) if c not in tests.columns})
        p = self.panel_
        try:
            lifts = parse_lift_tests(tests, self.channels_, self.regions_, p.dates)
        except DataError as exc:
            message = str(exc).replace("`lift_tests`", "`tests`")
            if "holds no fitted week" in message:
                message += ("; to plan a future test, give a past window of the same length and season (the "
                            "model replays the test on the weeks it was fitted to)")
            raise DataError(message) from None
        resid, weight = self._fit_residuals()  # [R,T] KPI units
        rel = resid / self.scaler_.y_scale[:, None]
        burn = RESIDUAL_BURN_IN if rel.shape[1] - RESIDUAL_BURN_IN >= 8 else 0
        e = np.where(weight[:, burn:] > 0, rel[:, burn:], np.nan)  # [R,T']
        week_var = (robust_region_scale(e) * self.scaler_.y_scale) ** 2  # [R] one week's noise variance
        rho = float(self.residual_persistence_)
        scaled = self._activity()  # [R,T,C]
        observed = self._media_kpi(scaled)  # [R,T]
        rows = []
        for i, frame_row in enumerate(lifts.frame.itertuples(index=False)):
            w = int(lifts.weeks[i].sum())
            var = float(week_var[lifts.regions[i]].sum())
            lift = float(self._cell_lift(scaled, observed, int(lifts.channel[i]), lifts.cells(i)).sum())
            se = float(np.sqrt(var * sum_variance_factor(w, rho)))
            end = int(np.flatnonzero(lifts.weeks[i])[-1])

            def relative(length: int, i: int = i, var: float = var, end: int = end) -> float:
                window = np.zeros(p.shape[1], dtype=bool)
                window[end - length + 1 : end + 1] = True  # the `length` weeks up to the test's last
                cells = lifts.regions[i][:, None] & window[None, :]  # [R,T]
                got = float(self._cell_lift(scaled, observed, int(lifts.channel[i]), cells).sum())
                return float(np.sqrt(var * sum_variance_factor(length, rho))) / got if got > 0 else np.inf

            rows.append({
                "channel": frame_row.channel, "start": frame_row.start, "end": frame_row.end,
                "regions": frame_row.regions, "n_regions": int(lifts.regions[i].sum()), "weeks": w,
                "model_lift": lift, "noise_se": se,
                "relative_se": se / lift if lift > 0 else float("nan"),
                "weeks_needed": weeks_for_precision(relative, float(target_precision), end + 1),
            })
        out = pd.DataFrame(rows)
        out.attrs.update({"target_precision": float(target_precision), "persistence": rho})
        return out

    def roi_prior_report(self) -> pd.DataFrame:
        """The fit's ROI priors (``calibration.roi_priors``) against the fitted ROI, one row per channel.

        ``prior_mean``, ``prior_sd``: the prior; ``roi``: the fitted total effect per unit spend over
        the fitted weeks (:meth:`get_channel_effects`); ``z`` = (roi - prior_mean) / prior_sd. A
        prior counts as a measurement of the channel's total effect, weighed as a lift test of that
        precision, so ``z`` far from 0 means the data disagree with it.

        Raises
        ------
        DataError
            If the model was fitted without ROI priors.
        """
        check_is_fitted(self, "net_")
        priors = self.config_.calibration.roi_priors
        if not priors:
            raise DataError(
                "no ROI priors: set config 'calibration.roi_priors' ({channel: [mean, sd]}) and fit "
                "again to give the model a belief about a channel's ROI"
            )
        roi = self.get_channel_effects()["roi"]
        frame = pd.DataFrame(
            [(c, mean, sd, float(roi[c])) for c, (mean, sd) in priors.items()],
            columns=["channel", "prior_mean", "prior_sd", "roi"],
        ).set_index("channel")
        frame["z"] = (frame["roi"] - frame["prior_mean"]) / frame["prior_sd"]
        return frame

    def _lift_by_region(self, lifts: LiftTests) -> np.ndarray:
        """``[N,R]`` the model's lift of each test, per region (0 outside the test's regions)."""
        scaled = self._activity()  # [R,T,C]
        observed = self._media_kpi(scaled)  # [R,T]
        out = np.zeros((len(lifts.frame), observed.shape[0]))
        for i in range(len(out)):
            out[i] = self._cell_lift(scaled, observed, int(lifts.channel[i]), lifts.cells(i))
        return out

    def _cell_lift(self, scaled: np.ndarray, observed: np.ndarray, channel: int, cells: np.ndarray) -> np.ndarray:
        """``[R]`` the KPI lost in ``cells`` ``[R,T]`` with ``channel`` switched off there (and the
        activity it induced removed through the graph); ``observed`` is ``_media_kpi(scaled)``."""
        switched_off = self._media_kpi(intervene(scaled, self.graph_model_, channel, cells))
        return np.where(cells, observed - switched_off, 0.0).sum(axis=1)

    def _lift_report(self, lifts: LiftTests) -> pd.DataFrame:
        model = self._lift_by_region(lifts).sum(axis=1)  # [N]
        frame = lifts.frame.copy()
        frame["model_lift"] = model
        frame["z"] = (model - lifts.lift) / lifts.se
        return frame

    def _fitted_prediction(self) -> np.ndarray:
        """``[R,T]`` the model's KPI (baseline + channels + controls) on the fitted panel."""
        parts = self._fitted_parts(self.panel_.media)
        return parts["baseline"] + parts["channels"].sum(axis=-1) + parts["controls"].sum(axis=-1)

    def _fitted_parts(self, media: np.ndarray) -> dict[str, np.ndarray]:
        """Decomposition (KPI units, ``[R,T,*]``) of the fitted panel with ``media`` swapped in."""
        p = self.panel_
        R, T, _ = p.shape
        batch = self._batch(self.config_, p, self.scaler_, self.knots_, np.arange(R), media,
                            p.control_values, np.arange(T, dtype=float))
        return self._to_kpi(self._run_net(batch), np.arange(R))

    # ----------------------------------------------------------------- plotting
    def plot_contributions(self) -> go.Figure:
        """Stacked decomposition of the fitted KPI over time (plotly figure, not shown)."""
        table = self.get_channel_contributions()
        actual = pd.Series(self._observed_y(), index=table.index, name="actual")
        return contributions_figure(table, self.channels_, actual)

    def plot_kpi_change(
        self, base: Period, compare: Period | None = None, regions: Sequence[Any] | None = None,
        matched: bool = True, *, X: ArrayLike | None = None, dates: ArrayLike | None = None,
        controls: ArrayLike | Sequence[str] | None = None,
    ) -> go.Figure:
        """Waterfall of :meth:`get_kpi_change` (plotly figure, not shown): the base period's KPI,
        each part's change, the compare period's (or rows ``X``') KPI."""
        table = self.get_kpi_change(base, compare, regions, matched=matched, X=X, dates=dates, controls=controls)
        return change_figure(table, table.attrs["base_dates"], table.attrs["compare_dates"])

    def plot_effects_over_time(self, metric: str = "roi", freq: str | int | None = None,
                               regions: Sequence[Any] | None = None) -> go.Figure:
        """Plotly figure of one column of :meth:`get_effects_over_time` per channel against period:
        ``metric`` is ``"roi"`` (default), ``"marginal_roi"``, ``"total"``, ``"direct"``,
        ``"total_share"`` or ``"spend"``; periods the fit covers in part get hollow markers.

        Raises
        ------
        DataError
            For another ``metric``, and as :meth:`get_effects_over_time`.
        """
        allowed = ("roi", "marginal_roi", "total", "direct", "total_share", "spend")
        if metric not in allowed:
            raise DataError(f"`metric` must be one of {list(allowed)}, found {metric!r}; e.g. metric='roi'")
        frame = self.get_effects_over_time(freq, regions=regions, marginal=metric == "marginal_roi")
        return over_time_figure(frame, metric)

    def plot_dag(self) -> go.Figure:
        """The channel graph the model holds (plotly figure, not shown); edges acting after a
        lag say so in their label (``lag 1``), edges oriented by the equal-CV rule say
        ``equal-cv`` and those oriented by their dark weeks ``dark weeks``; channels bought nationally are diamonds, and edges learned from the national
        series (``direction_basis`` "national" in :meth:`get_dag_edges`) say ``national``."""
        check_is_fitted(self, "graph_")
        g = self.graph_model_
        direction = None
        if g.direction is not None:
            direction = pd.DataFrame(g.direction, index=self.channels_, columns=self.channels_)
        C = len(self.channels_)
        lags = pd.DataFrame([[[lag for lag in range(g.weights.shape[0]) if g.weights[lag, i, j] != 0]
                              for j in range(C)] for i in range(C)], index=self.channels_, columns=self.channels_)
        assumed = None
        if g.assumed is not None:
            assumed = pd.DataFrame(g.assumed, index=self.channels_, columns=self.channels_)
        national = [] if g.national is None else [c for c, f in zip(self.channels_, g.national, strict=True) if f]
        edges = self.get_dag_edges()
        learned_nationally = edges[edges.direction_basis == "national"]
        by_dark = edges[edges.direction_basis == "dark weeks"]
        by_lags = edges[edges.direction_basis == "lagged edges"]  # same-week edges only
        return dag_figure(self.graph_, self.graph_roots_, direction=direction, lags=lags, assumed=assumed,
                          national=national,
                          national_edges=list(zip(learned_nationally.parent, learned_nationally.child, strict=True)),
                          dark_edges=list(zip(by_dark.parent, by_dark.child, strict=True)),
                          ordered_edges=list(zip(by_lags.parent, by_lags.child, strict=True)))

    def get_key_findings(
        self, n_boot: int = 0, level: float = 0.9, random_state: int = 0, prior_spread: float = PRIOR_SPREAD,
    ) -> list[str]:
        """The report's key findings as plain text lines, without writing the report.

        A line each on the fit, the media's share, the highest and lowest ROI, the channel
        whose return moved most over time, what moved the KPI last quarter, the budget
        reallocation and the marginal return at today's budget, and the always-on channels
        without a lift test, each figure from the API (as :meth:`save_report`'s "Key
        findings"). With ``n_boot`` they quote bootstrap intervals from one set of refits.

        Raises
        ------
        DataError
            For bad bootstrap arguments, as :meth:`get_effect_intervals`.
        """
        check_is_fitted(self, "net_")
        from .reporting import findings_of, report_data

        return findings_of(self, report_data(self, n_boot, level, random_state, prior_spread))

    def save_report(
        self, path: str | Path, n_boot: int = 0, level: float = 0.9, random_state: int = 0,
        prior_spread: float = PRIOR_SPREAD,
    ) -> Path:
        """Write one self-contained HTML report (opens offline); returns the path.

        Sections: key findings, panel and fit (in-sample R^2 and WAPE), contributions with
        the decomposition figure, what moved the KPI last quarter (:meth:`get_kpi_change`),
        effects under intervention with ROI, the return over time
        (:meth:`get_effects_over_time`), what the data identify (with a candidate experiment
        per untested always-on channel, :meth:`plan_lift_test`), weeks the model does not
        explain, the channel graph, response curves, channel parameters, a budget
        reallocation at the same total spend (:meth:`optimize_budget`) with the budget
        frontier, and the lift tests and ROI priors when the model has them. The file is
        written atomically.

        With ``n_boot >= 2`` the effects (share, ROI, marginal ROI), the KPI change, the
        return over time and the budget plan carry region-bootstrap intervals at ``level``
        from one set of ``n_boot`` refits (:meth:`shared_refits`), each with its own prior
        strengths (``prior_spread``, ``random_state`` as in :meth:`get_effect_intervals`), and
        the key findings quote them.

        Raises
        ------
        DataError
            For a ``path`` that is a directory or under a file, and bad bootstrap arguments
            (as :meth:`get_effect_intervals`), before anything is written.
        """
        check_is_fitted(self, "net_")
        from .files import check_target
        from .reporting import write_report

        target = check_target(Path(path), "`path`", "report.html")
        return write_report(self, target, n_boot=n_boot, level=level, random_state=random_state,
                            prior_spread=prior_spread)

    # ------------------------------------------------------------------ save/load
    def save(self, path: str | Path) -> Path:
        """Write the fitted model to one ``.safetensors`` file (atomically). Returns the path."""
        from .io import save_model

        check_is_fitted(self, "net_")
        return save_model(self, Path(path))

    @classmethod
    def load(cls, path: str | Path) -> DeepCausalMMM:
        """Read a model written by :meth:`save`; raises ``ModelFileError`` if it cannot."""
        from .io import load_model

        return load_model(cls, Path(path))

    # ------------------------------------------------------------------ internals
    def _resolve_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device not in ("cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise ConfigError(
                f"`device` must be 'cpu', 'cuda' or 'auto', found {self.device!r}"
            )
        if str(self.device).startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError("`device` is 'cuda' but no CUDA GPU is available; use device='cpu'")
        return torch.device(self.device)

    @staticmethod
    def _check_config_names(cfg: MMMConfig, panel: Panel) -> None:
        unknown = [c for c in cfg.coefficients.negative_channels if c not in panel.channels]
        if unknown:
            raise ConfigError(
                f"config key 'coefficients.negative_channels' names {unknown}, which are not "
                f"channels; channels are {panel.channels}"
            )
        g = cfg.graph
        named = [*g.roots, *(c for pair in (*g.forbidden, *g.required, *g.edges) for c in pair)]
        unknown = sorted({c for c in named if c not in panel.channels})
        if unknown:
            raise ConfigError(
                f"config section 'graph' names {unknown}, which are not channels; channels are "
                f"{panel.channels}"
            )
        bad_roots = sorted({c for _, c in g.required if c in g.roots})
        if bad_roots:
            raise ConfigError(
                f"config 'graph.required' gives parents to root channel(s) {bad_roots}; drop the "
                "edge or the root"
            )
        unknown = [c for c in cfg.calibration.roi_priors if c not in panel.channels]
        if unknown:
            raise ConfigError(
                f"config key 'calibration.roi_priors' names {unknown}, which are not channels; "
                f"channels are {panel.channels}"
            )
        unknown = [c for c in cfg.controls.signs if c not in panel.controls]
        if unknown:
            raise ConfigError(
                f"config key 'controls.signs' names {unknown}, which are not controls; "
                f"controls are {panel.controls}"
            )

    def _train(
        self, cfg: MMMConfig, panel: Panel, scaler: PanelScaler, device: torch.device,
        graph: ChannelGraph, lifts: LiftTests | None = None, spend: np.ndarray | None = None,
    ) -> tuple[MMMNet, np.ndarray, History]:
        """Two phases: early stopping on the last weeks, then all weeks (see README)."""
        R, T, _ = panel.shape
        spacing = cfg.baseline.knot_spacing
        positions = np.arange(T, dtype=float)
        everything = np.arange(R)
        v = cfg.training.validation_weeks
        use_val = v > 0 and T >= 4 * v
        callback = _printer(use_val) if self.verbose else None
        knots = make_knots(T - 1, spacing)
        if not use_val:
            net = self._make_net(cfg, panel, len(knots), lifts).to(device)
            batch = self._batch(cfg, panel, scaler, knots, everything, panel.media,
                                panel.control_values, positions).to(device)
            target = self._target(cfg, panel, scaler, device, 0, knots, graph, lifts, spend)
            history = train(net, batch, target, cfg, callback)
            self._polish(cfg, net, batch, target, history)
            return net, knots, history
        # Phase 1: knots end before the validation slice, which is forecast as in use.
        knots1 = make_knots(T - v - 1, spacing)
        net = self._make_net(cfg, panel, len(knots1), lifts).to(device)
        batch = self._batch(cfg, panel, scaler, knots1, everything, panel.media,
                            panel.control_values, positions).to(device)
        history = train(net, batch, self._target(cfg, panel, scaler, device, v, knots1, graph, lifts, spend),
                        cfg, callback)
        # Phase 2: move the trend onto knots spanning all weeks and continue on all of them.
        old_at_new = trend_basis(knots, knots1, cfg.baseline.extrapolation, cfg.baseline.damping)
        net.baseline.reknot(torch.tensor(old_at_new, dtype=torch.float32, device=device))
        extra = int(round(cfg.training.refit_epochs_fraction * (history.best_epoch + 1)))
        batch = self._batch(cfg, panel, scaler, knots, everything, panel.media,
                            panel.control_values, positions).to(device)
        target = self._target(cfg, panel, scaler, device, 0, knots, graph, lifts, spend)
        if extra > 0:
            refit = train(net, batch, target, cfg, None,
                          epochs=extra, learning_rate=cfg.training.learning_rate * 0.5)
            history.refit_epochs = refit.epochs_run
            history.seconds += refit.seconds
        self._polish(cfg, net, batch, target, history)
        return net, knots, history

    def _say(self, message: str) -> None:
        """Print a progress line when the estimator is ``verbose``."""
        if self.verbose:
            print(message, flush=True)

    @staticmethod
    def _polish(cfg: MMMConfig, net: MMMNet, batch: Batch, target: Target, history: History) -> None:
        """Finish with L-BFGS on all weeks (``training.polish_steps``), timed into ``history``.

        With ``training.polish_shapes`` (the default) every parameter moves:
        where Adam stops, the baseline's seasonal shape still holds part of
        the channels' yearly budget swings, and a polish that cannot move it
        leaves those channels' effects short (see README, "The model").
        Without it the trend and seasonal shapes keep the values Adam stopped at.
        """
        start = time.perf_counter()
        frozen = () if cfg.training.polish_shapes else ("baseline.trend", "baseline.season")
        history.polish_evals = polish(net, batch, target, cfg, cfg.training.polish_steps, frozen)
        history.seconds += time.perf_counter() - start

    @staticmethod
    def _learn_graph(cfg: MMMConfig, panel: Panel, scaler: PanelScaler) -> ChannelGraph:
        g, ch = cfg.graph, panel.channels
        R = len(panel.regions)
        # Filled gaps (every channel 0 and the KPI repeating a neighbour's: a completed grid's
        # weeks after a feed stops) are not activity. Every channel is dark in them at once, a
        # switch all channels share, which links every pair alike: the MMM panel's 301 filled
        # cells at week 96 (1.6%) gave 34 linked pairs, 3 without them (Panel.measured). Other
        # weeks dark in every channel are learned both ways by learn_graph: leaving them out
        # always selects on the outcome (weights of all-flighted channels 18% low).
        try:
            return learn_graph(
                scaler.media(panel.media, np.arange(R)), panel.measured(),
                season_phase(panel.dates, cfg.baseline.period), mode=g.mode, max_lag=g.max_lag,
                lambda1=g.lambda1, threshold=g.threshold, forbidden=edge_mask(ch, g.forbidden),
                required=edge_mask(ch, g.required), roots=tuple(ch.index(c) for c in g.roots),
                fixed=edge_mask(ch, g.edges) if g.mode == "fixed" else None, min_t=g.min_t,
                lag_min_t=g.lag_min_t,
                own_lags=g.own_lags, cycle_test=g.regional_cycles, shared_driver=g.shared_driver,
                equal_cv=g.equal_cv, negative_edges=g.negative_edges, national=g.national,
                names=ch, controls=panel.control_values if g.adjust_controls else None,
                regional_orientation=g.regional_orientation, dark_weeks=g.dark_weeks,
                time_order=g.time_order,
            )
        except ValueError as exc:  # e.g. required edges that form a cycle
            raise ConfigError(f"config section 'graph': {exc}") from None

    @staticmethod
    def _spend_grid(
        spend: pd.DataFrame | None, panel: Panel, regions: ArrayLike | None, dates: ArrayLike | None
    ) -> np.ndarray:
        grid = panel.media.copy()
        if spend is None:
            return grid
        if not isinstance(spend, pd.DataFrame):
            raise DataError(f"`spend` must be a DataFrame whose columns are channel names, found {type(spend).__name__}; "
                            "e.g. spend=pd.DataFrame({\"tv\": tv_cost}) with one row per row of `X`")
        unknown = [c for c in spend.columns if c not in panel.channels]
        if unknown:
            raise DataError(
                f"`spend` columns {unknown} are not channels; name spend columns like the channels "
                f"{panel.channels}"
            )
        n = len(panel.row_index)  # rows of X
        if len(spend) != n:
            raise DataError(f"`spend` has {len(spend)} rows but `X` has {n}; pass one spend row per row "
                            "of `X`, in the same order")
        try:
            values = spend.to_numpy(dtype=float)  # [N,k]
        except (TypeError, ValueError):
            raise DataError("`spend` must hold numbers (money spent per row and channel)") from None
        bad = ~np.isfinite(values) | (values < 0)  # [N,k]
        if bad.any():
            j = int(np.argmax(bad.any(axis=0)))
            rows = np.flatnonzero(bad[:, j])
            raise DataError(
                f"`spend` column {spend.columns[j]!r} has {len(rows)} negative or NaN/infinite value(s) "
                f"(first in row {rows[0]}: {values[rows[0], j]}); spend must be finite and >= 0 "
                "(0 where nothing was spent)"
            )
        sp = build_panel(spend, None, regions, dates, purpose="predict")
        if sp.shape[:2] != panel.shape[:2] or list(sp.regions) != list(panel.regions):
            raise DataError(
                f"`spend` has {len(spend)} rows that do not line up with `X`; pass one spend row "
                "per row of `X`"
            )
        for k, c in enumerate(sp.channels):
            grid[:, :, panel.channels.index(c)] = sp.media[:, :, k]
        return grid

    @staticmethod
    def _make_net(cfg: MMMConfig, panel: Panel, n_knots: int, lifts: LiftTests | None = None) -> MMMNet:
        sign = {"+": 1, "-": -1}
        prior = np.ones(len(panel.channels))
        # channels without week-to-week variation show no effect; fixed at 0 unless a test measures it
        fixed = static_channels(panel.media, panel.measured())
        if lifts is not None and cfg.calibration.weight > 0:  # a tested channel's level is measured
            prior[np.unique(lifts.channel)] = cfg.calibration.tested_prior
            fixed[np.unique(lifts.channel)] = False
        believed = [panel.channels.index(c) for c in cfg.calibration.roi_priors]  # so is one with a prior
        prior[believed] = cfg.calibration.tested_prior
        fixed[believed] = False
        return MMMNet(
            n_regions=len(panel.regions),
            n_channels=len(panel.channels),
            n_controls=len(panel.controls),
            n_calendar=2 * cfg.context.calendar_order,
            n_knots=n_knots,
            n_fourier=2 * cfg.baseline.fourier_order + (2 * DAY_OF_WEEK_ORDER if _day_of_week(cfg) else 0),
            config=cfg,
            negative_mask=[c in cfg.coefficients.negative_channels for c in panel.channels],
            control_signs=[sign.get(cfg.controls.signs.get(k, ""), 0) for k in panel.controls],
            prior_weight=prior.tolist(),
            fixed_zero=fixed.tolist(),
        )

    @staticmethod
    def _batch(
        cfg: MMMConfig,
        panel: Panel,
        scaler: PanelScaler,
        knots: np.ndarray,
        region_idx: np.ndarray,
        media: np.ndarray,
        ctrl: np.ndarray,
        positions: np.ndarray,
        dates: pd.Index | None = None,
    ) -> Batch:
        grid = panel.dates if dates is None else dates
        phase = season_phase(grid, cfg.baseline.period)  # [T]
        f32 = torch.float32
        return Batch(
            media=torch.tensor(scaler.media(media, region_idx), dtype=f32),  # [R,T,C]
            controls=torch.tensor(scaler.controls(ctrl, region_idx), dtype=f32),  # [R,T,K]
            calendar=torch.tensor(fourier_features(phase, cfg.context.calendar_order),
                                  dtype=f32),  # [T,F]
            basis=torch.tensor(
                trend_basis(positions, knots, cfg.baseline.extrapolation, cfg.baseline.damping),
                dtype=f32,
            ),  # [T,J]
            fourier=torch.tensor(_season_terms(cfg, grid, phase), dtype=f32),  # [T,P2]
            region_idx=torch.tensor(region_idx, dtype=torch.long),  # [R]
        )

    @classmethod
    def _target(
        cls, cfg: MMMConfig, panel: Panel, scaler: PanelScaler, device: torch.device, v: int,
        knots: np.ndarray | None = None, graph: ChannelGraph | None = None,
        lifts: LiftTests | None = None, spend: np.ndarray | None = None,
    ) -> Target:
        assert panel.y is not None
        R, T, _ = panel.shape
        y = np.where(panel.observed, panel.y, 0.0) / scaler.y_scale[:, None]  # [R,T]
        w = cls._loss_weights(cfg, panel, scaler)  # [R,T]
        val_mask = np.zeros((R, T), dtype=bool)
        val_mask[:, T - v :] = v > 0
        f32 = torch.float32
        lift = None
        if lifts is not None and cfg.calibration.weight > 0:
            assert knots is not None and graph is not None
            lift = cls._lift_term(cfg, panel, scaler, knots, graph, lifts, float((w > 0).sum()), device)
        roi = None
        if cfg.calibration.roi_priors:
            assert knots is not None and graph is not None and spend is not None
            roi = cls._roi_term(cfg, panel, scaler, knots, graph, spend, float((w > 0).sum()), device)
        delta = None
        if cfg.huber_delta == "auto":  # here from the float64 KPI; training.with_huber_delta
            # fills in thresholds only for Targets built elsewhere (from their float32 copy)
            fitted_y = np.where(panel.observed & ~val_mask, y, np.nan)
            delta = torch.tensor(region_huber_delta(fitted_y)[:, None], dtype=f32, device=device)  # [R,1]
        return Target(
            y=torch.tensor(y, dtype=f32, device=device),
            weight_train=torch.tensor(np.where(val_mask, 0.0, w), dtype=f32, device=device),
            weight_val=torch.tensor(np.where(val_mask, w, 0.0), dtype=f32, device=device),
            lift=lift,
            roi=roi,
            delta=delta,
        )

    @staticmethod
    def _loss_weights(cfg: MMMConfig, panel: Panel, scaler: PanelScaler) -> np.ndarray:
        """Loss weight ``[R,T]`` of each cell: sample weight x observed x region weight."""
        size = scaler.y_scale / scaler.y_scale.mean()  # [R]
        region_w = {"equal": np.ones(len(size)), "size": size, "sqrt_size": np.sqrt(size)}[
            cfg.training.region_weighting
        ]
        return panel.weight * panel.observed * region_w[:, None]  # [R,T]

    def _set_forecast_anchor(self) -> None:
        """Fitted residual persistence and each region's last residual, for forecasts.

        Sets ``residual_persistence_`` (pooled AR(1) coefficient of the fit's
        residuals in region-relative units) and, per region, the residual
        (KPI units) of its last observed fitted week and that week's index.
        Recomputed from the fitted state on load, so saved files do not hold it.
        """
        p = self.panel_
        resid, weight = self._fit_residuals()  # [R,T] KPI units, [R,T]
        self.interval_calibration_ = None  # calibrate_intervals() sets it
        self.residual_persistence_ = residual_persistence(resid / self.scaler_.y_scale[:, None], weight)
        T = p.observed.shape[1]
        last = T - 1 - np.argmax(p.observed[:, ::-1], axis=1)  # [R] last observed week
        rows = np.arange(len(last))
        has = p.observed.any(axis=1)
        self._anchor_week = np.where(has, last, T - 1)  # [R]
        self._anchor_resid = np.where(has, resid[rows, last], 0.0)  # [R] KPI units

    def _fit_residuals(self) -> tuple[np.ndarray, np.ndarray]:
        """``[R,T]`` the fit's residuals in KPI units (NaN on unobserved cells) and its loss weights."""
        p = self.panel_
        assert p.y is not None
        resid = np.where(p.observed, p.y - self._fitted_prediction(), np.nan)
        return resid, self._loss_weights(self.config_, p, self.scaler_)

    def _anchor_forecast(self, parts: dict[str, np.ndarray], reg_idx: np.ndarray,
                         r: np.ndarray, tt: np.ndarray) -> None:
        """Add the fading last residual to the baseline of rows after the fitted period (in place)."""
        after = tt >= len(self.panel_.dates)  # [N]
        if not after.any() or not self.config_.baseline.forecast_anchor:
            return
        rr, cc = r[after], tt[after]
        fit_r = reg_idx[rr]  # fitted region of each row
        steps = cc - self._anchor_week[fit_r]  # [N'] weeks since the region's last residual
        parts["baseline"][rr, cc] += self._anchor_resid[fit_r] * self.residual_persistence_ ** steps

    @classmethod
    def _lift_term(
        cls, cfg: MMMConfig, panel: Panel, scaler: PanelScaler, knots: np.ndarray,
        graph: ChannelGraph, lifts: LiftTests, n_cells: float, device: torch.device,
    ) -> LiftTerm:
        """Counterfactual inputs for each lift test on its own regions (see ``LiftTerm``)."""
        scale = scaler.media_scale[:, None, :]  # [R,1,C]
        scaled = panel.media / scale  # [R,T,C]
        # The model is causal in time: weeks after the last window cannot change
        # any lift, so the counterfactual runs up to that week only.
        t_end = int(np.flatnonzero(lifts.weeks.any(axis=0))[-1]) + 1
        media, rows, test, cells = [], [], [], []
        for i in range(len(lifts.frame)):
            idx = np.flatnonzero(lifts.regions[i])  # [R_i]
            off = intervene(scaled[idx, :t_end], graph, int(lifts.channel[i]), lifts.cells(i)[idx, :t_end])
            media.append(off * scale[idx])  # [R_i,t_end,C]
            rows.append(idx)
            test.append(np.full(len(idx), i))
            cells.append(scaler.y_scale[idx, None] * lifts.weeks[i][None, :t_end])  # [R_i,t_end]
        idx_all = np.concatenate(rows)  # [M]
        batch = cls._batch(cfg, panel, scaler, knots, idx_all, np.concatenate(media),
                           panel.control_values[idx_all, :t_end], np.arange(t_end, dtype=float),
                           panel.dates[:t_end])
        f32 = torch.float32
        return LiftTerm(
            batch=batch.to(device),
            rows=torch.tensor(idx_all, dtype=torch.long, device=device),
            test=torch.tensor(np.concatenate(test), dtype=torch.long, device=device),
            cells=torch.tensor(np.concatenate(cells), dtype=f32, device=device),
            lift=torch.tensor(lifts.lift, dtype=f32, device=device),
            se=torch.tensor(lifts.se, dtype=f32, device=device),
            weight=cfg.calibration.weight, n_cells=n_cells,
        )

    @classmethod
    def _roi_term(
        cls, cfg: MMMConfig, panel: Panel, scaler: PanelScaler, knots: np.ndarray,
        graph: ChannelGraph, spend: np.ndarray, n_cells: float, device: torch.device,
    ) -> RoiPriorTerm:
        """Each ROI prior's channel, its spend over the observed cells and, for channels with
        descendants in the graph, their counterfactual inputs (see ``RoiPriorTerm``)."""
        R, T, _ = panel.shape
        names = list(cfg.calibration.roi_priors)
        channel = np.array([panel.channels.index(c) for c in names])  # [P]
        mean, sd = np.array([cfg.calibration.roi_priors[c] for c in names], dtype=float).T  # [P] each
        total_spend = _observed_spend(panel.observed, spend)[channel]  # [P]
        mediated = np.array([bool(graph.weights[:, c, :].any()) for c in channel])  # [P]
        f32 = torch.float32
        batch, rows, prior = None, np.zeros(0, dtype=int), np.zeros(0, dtype=int)
        if mediated.any():
            scale = scaler.media_scale[:, None, :]  # [R,1,C]
            scaled = panel.media / scale  # [R,T,C]
            media = [_switched_off(panel.media, scaled, scale, graph, int(channel[p]))
                     for p in np.flatnonzero(mediated)]
            rows = np.tile(np.arange(R), int(mediated.sum()))  # [M]
            prior = np.repeat(np.flatnonzero(mediated), R)  # [M]
            batch = cls._batch(cfg, panel, scaler, knots, rows, np.concatenate(media),
                               panel.control_values[rows], np.arange(T, dtype=float)).to(device)
        cells = np.where(panel.observed, scaler.y_scale[:, None], 0.0)  # [R,T]
        return RoiPriorTerm(
            channel=torch.tensor(channel, dtype=torch.long, device=device),
            cells=torch.tensor(cells, dtype=f32, device=device),
            batch=batch,
            rows=torch.tensor(rows, dtype=torch.long, device=device),
            prior=torch.tensor(prior, dtype=torch.long, device=device),
            mediated=torch.tensor(mediated, device=device),
            target=torch.tensor(mean * total_spend, dtype=torch.float64, device=device),
            se=torch.tensor(sd * total_spend, dtype=torch.float64, device=device),
            n_cells=n_cells,
        )

    def _run_net(self, batch: Batch) -> Decomposition:
        device = next(self.net_.parameters()).device
        with torch.no_grad(), full_precision():
            return self.net_(batch.to(device))

    def _to_kpi(self, dec: Decomposition, region_idx: np.ndarray) -> dict[str, np.ndarray]:
        s = self.scaler_.y_scale[region_idx]  # [R']
        return {
            "baseline": dec.baseline.double().cpu().numpy() * s[:, None],  # [R',T]
            "channels": dec.channels.double().cpu().numpy() * s[:, None, None],  # [R',T,C]
            "controls": dec.controls.double().cpu().numpy() * s[:, None, None],  # [R',T,K]
        }

    def _decompose_fitted(self) -> pd.DataFrame:
        p = self.panel_
        parts = self._fitted_parts(p.media)
        r, t = p.row_index[:, 0], p.row_index[:, 1]
        return contributions_frame(
            [p.regions[i] for i in r], p.dates[t], self.channels_,
            parts["baseline"][r, t], parts["channels"][r, t], parts["controls"][r, t],
        )

    def _observed_y(self) -> np.ndarray:
        p = self.panel_
        assert p.y is not None
        return p.y[p.row_index[:, 0], p.row_index[:, 1]]

    def _decompose_rows(
        self,
        X: ArrayLike,
        regions: ArrayLike | None,
        dates: ArrayLike | None,
        controls: ArrayLike | Sequence[str] | None,
    ) -> tuple[pd.DataFrame, Panel, tuple[np.ndarray, np.ndarray]]:
        """Decomposition of input rows, their panel, and per row its fitted region and grid position."""
        placed = self._rows_on_history(X, regions, dates, controls)
        table, at = self._decompose_placed(*placed)
        return table, placed[0], at

    def _decompose_placed(
        self, new: Panel, reg_idx: np.ndarray, pos: np.ndarray, grid: pd.Index, media: np.ndarray,
        ctrl: np.ndarray,
    ) -> tuple[pd.DataFrame, tuple[np.ndarray, np.ndarray]]:
        """:meth:`_decompose_rows` for rows already placed (:meth:`_rows_on_history`)."""
        batch = self._batch(self.config_, self.panel_, self.scaler_, self.knots_, reg_idx, media, ctrl,
                            np.arange(len(grid), dtype=float), dates=grid)
        parts = self._to_kpi(self._run_net(batch), reg_idx)
        r, t = new.row_index[:, 0], new.row_index[:, 1]
        tt = pos[t]
        self._anchor_forecast(parts, reg_idx, r, tt)
        if self.config_.data.continue_fills:
            self._continue_fills(parts, new, reg_idx, r, t, tt)
        table = contributions_frame(
            [new.regions[i] for i in r], grid[tt], self.channels_,
            parts["baseline"][r, tt], parts["channels"][r, tt], parts["controls"][r, tt],
        )
        return table, (reg_idx[r], tt)

    def _rows_on_history(
        self,
        X: ArrayLike,
        regions: ArrayLike | None,
        dates: ArrayLike | None,
        controls: ArrayLike | Sequence[str] | None,
    ) -> tuple[Panel, np.ndarray, np.ndarray, pd.Index, np.ndarray, np.ndarray]:
        """The rows' panel, each of its regions' fitted index ``[R']``, each of its dates' grid
        position ``[T']``, and the fitted history of those regions with the rows written over it
        (:func:`extend_history`: grid ``[T]``, media ``[R',T,C]``, controls ``[R',T,K]``)."""
        check_is_fitted(self, "net_")
        X, controls = self._name_columns(X, controls)
        new = build_panel(X, None, regions, dates, controls, purpose="predict")
        reg_idx, pos = align_to_fit(self.panel_, new)
        grid, media, ctrl = extend_history(self.panel_, new, reg_idx, pos)
        return new, reg_idx, pos, grid, media, ctrl

    def _name_columns(
        self, X: ArrayLike, controls: ArrayLike | Sequence[str] | None
    ) -> tuple[ArrayLike, ArrayLike | Sequence[str] | None]:
        """Unnamed 2-D arrays as DataFrames with the fitted channel / control names (columns in fit order)."""
        def named(values: Any, names: list[str], what: str) -> Any:
            if not isinstance(values, np.ndarray) or values.ndim != 2:
                return values
            if values.shape[1] != len(names):
                raise DataError(
                    f"`{what}` has {values.shape[1]} column(s) but the model was fitted on {len(names)} "
                    f"{'channels' if what == 'X' else 'controls'} {names}; pass them in that order (or a "
                    "DataFrame with those column names)"
                )
            return pd.DataFrame(values, columns=names)

        out_controls = controls
        if isinstance(controls, np.ndarray):
            out_controls = named(controls, list(self.controls_), "controls")
        return named(X, list(self.channels_), "X"), out_controls

    def _continue_fills(
        self,
        parts: dict[str, np.ndarray],
        new: Panel,
        reg_idx: np.ndarray,
        r: np.ndarray,
        t: np.ndarray,
        tt: np.ndarray,
    ) -> None:
        """Set dark future rows of regions whose fit ends in filled cells to the filled value.

        Such a region's feed stopped: its last fitted weeks repeat one KPI value
        with every channel at 0 (:func:`stale_cells`). Its rows after the fitted
        period with every channel at 0 are more of the same fill, so their
        prediction is that value; the baseline takes the difference from the
        model's forecast, keeping the decomposition additive. In place on ``parts``.
        """
        level = fill_levels(self.panel_)  # [R_fit]
        region_level = level[reg_idx]  # [R']
        dark = ~(new.media[r, t] != 0).any(axis=1)  # [N]
        hit = dark & (tt >= len(self.panel_.dates)) & np.isfinite(region_level[r])  # [N]
        if not hit.any():
            return
        rr, cc = r[hit], tt[hit]
        rest = parts["channels"][rr, cc].sum(axis=1) + parts["controls"][rr, cc].sum(axis=1)
        parts["baseline"][rr, cc] = region_level[rr] - rest


WEAK_TEST = 0.3  # a lift test whose standard error is above 30% of its lift pins a channel little


def _as_list(values: Any) -> list[Any]:
    """A list of labels from a list-like, or a one-label list from a single label (``"tv"``, ``501``)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        return [values]
    return list(values)


def _as_number(value: object, name: str) -> float:
    """``value`` as a float, or a ``DataError`` naming the argument."""
    if isinstance(value, bool):
        raise DataError(f"`{name}` must be a number, found {value!r}")
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DataError(f"`{name}` must be a number, found {value!r}") from None


def _as_number_pair(bounds: object, name: str) -> tuple[float, float]:
    """``(low, high)`` multipliers as floats, or a ``DataError`` naming ``name``."""
    if isinstance(bounds, (str, bytes)) or not hasattr(bounds, "__len__") or len(bounds) != 2:
        raise DataError(f"`{name}` must be (low, high) with 0 <= low <= high, found {bounds!r}; "
                        "e.g. bounds=(0.5, 1.5)")
    return _as_number(bounds[0], name), _as_number(bounds[1], name)  # type: ignore[index]


def _channel_bounds(bounds: object, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``[k]`` low and high multipliers for channels ``names`` from one pair or a dict of pairs."""
    default = (0.5, 1.5)
    if isinstance(bounds, Mapping):
        unknown = [c for c in bounds if c not in names]
        if unknown:
            raise DataError(
                f"`bounds` names {unknown}, which are not among the channels reallocated {names}; "
                "give bounds for those channels only (name others in `channels` to reallocate them)"
            )
        pairs = [_as_number_pair(bounds.get(c, default), f"bounds[{c!r}]") for c in names]
    else:
        pairs = [_as_number_pair(bounds, "bounds")] * len(names)
    lo, hi = (np.array(v, dtype=float) for v in zip(*pairs, strict=True))
    bad = ~(np.isfinite(lo) & np.isfinite(hi) & (lo >= 0) & (lo <= hi))
    if bad.any() or not (lo < hi).any():
        raise DataError(
            f"`bounds` must be (low, high) with 0 <= low <= high, and low < high for at least one "
            f"channel, found {bounds}; e.g. bounds=(0.5, 1.5) or bounds={{'tv': (1, 1), 'search': (0.8, 2)}}"
        )
    return lo, hi


def _split_region_bounds(bounds: object, by_region: object) -> tuple[object, dict[tuple[Any, str], Any]]:
    """``optimize_budget``'s ``bounds`` without its ``(region, channel)`` keys, and those keys'
    pairs (allowed with ``by_region=True`` only)."""
    if not isinstance(bounds, Mapping):
        return bounds, {}
    regional = {key: pair for key, pair in bounds.items() if isinstance(key, tuple)}
    if regional and by_region is not True:
        raise DataError(
            f"`bounds` has (region, channel) keys {list(regional)[:3]}, which need by_region=True (one "
            "multiplier per region and channel); pass by_region=True, or key the bounds by channel"
        )
    return {key: pair for key, pair in bounds.items() if not isinstance(key, tuple)}, regional


def _check_flag(value: object, name: str) -> bool:
    """``value`` if it is True or False, else a ``DataError`` naming the argument ``name``."""
    if not isinstance(value, (bool, np.bool_)):
        raise DataError(f"`{name}` must be True or False, found {value!r}; e.g. {name}=True")
    return bool(value)


def _kpi_value(kpi_value: object, budget: object) -> float | None:
    """``optimize_budget``'s ``kpi_value`` checked: None, or a positive number given without ``budget``."""
    if kpi_value is None:
        return None
    value = _as_number(kpi_value, "kpi_value")
    if not (np.isfinite(value) and value > 0):
        raise DataError(f"`kpi_value` must be a positive number, the money one unit of KPI is worth (e.g. "
                        f"kpi_value=2.5 for a margin of 2.5 per sale), found {kpi_value!r}")
    if budget is not None:
        raise DataError(
            f"`budget` {budget!r} and `kpi_value` {kpi_value!r} were both given: `budget` fixes the total spend "
            "and moves it between channels, `kpi_value` lets the total move to where each channel's last unit "
            "of spend returns its cost. Give one of them"
        )
    return value


def _feasible_start(lo: np.ndarray, hi: np.ndarray, spend: np.ndarray, target: float,
                    shape: np.ndarray | None = None) -> np.ndarray:
    """``[k]`` multipliers within the bounds spending ``target``: one common multiplier ``s``, or
    ``s`` times ``shape`` (positive multipliers, e.g. another budget's plan), clipped.

    Total spend at ``clip(s * shape, lo, hi)`` rises with ``s``, so a bisection finds ``s``.
    """
    shape = np.ones(len(lo)) if shape is None else np.asarray(shape, dtype=float)
    a, b = float((lo / shape).min()), float((hi / shape).max())
    for _ in range(100):
        s = 0.5 * (a + b)
        if np.clip(s * shape, lo, hi) @ spend < target:
            a = s
        else:
            b = s
    return np.clip(0.5 * (a + b) * shape, lo, hi)


def _check_n_boot(n_boot: object) -> int:
    """``n_boot`` as an int: 0 (no intervals) or at least 2, else a ``DataError``."""
    if not isinstance(n_boot, numbers.Integral) or isinstance(n_boot, bool) or n_boot == 1 or n_boot < 0:
        raise DataError(f"`n_boot` must be 0 (no intervals) or a whole number of at least 2, found {n_boot!r}; "
                        "e.g. n_boot=20")
    return int(n_boot)


def _check_level(level: object) -> None:
    """Raise ``DataError`` unless ``level`` is a number in (0, 1) (an interval's coverage)."""
    if (isinstance(level, bool) or not isinstance(level, (int, float, np.integer, np.floating))
            or not 0 < level < 1):
        raise DataError(f"`level` must be in (0, 1), e.g. 0.9 for a 90% interval, found {level!r}")


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one, e.g. a
    container limited to some cores), else the machine's count; at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS and Windows have no affinity mask here
        return os.cpu_count() or 1


def _spread(replicates: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile bounds at ``level`` and standard deviation over the first axis of bootstrap
    ``replicates`` (NaN where a replicate has no figure, e.g. no spend; all NaN: NaN)."""
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    with warnings.catch_warnings():  # a figure missing in every replicate
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanpercentile(replicates, q, axis=0)
        sd = np.nanstd(replicates, axis=0, ddof=1)
    return lo, hi, sd


def _conformity(y: np.ndarray, pred: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """The factor each interval (``lower``, ``upper`` around ``pred``) would need, scaled around
    ``pred``, to hold ``y``: at most 1 where it holds; 0 where ``y`` is the prediction; inf
    where the interval has no width on the side ``y`` lies."""
    above = y >= pred
    need = np.where(above, y - pred, pred - y)
    half = np.where(above, upper - pred, pred - lower)
    return np.divide(need, half, out=np.where(need > 0, np.inf, 0.0), where=half > 0)


def _per_spend(value: np.ndarray, spend: np.ndarray) -> np.ndarray:
    """``value / spend`` where ``spend`` is positive, else NaN (arrays of one shape)."""
    return np.where(spend > 0, value / np.where(spend > 0, spend, 1.0), np.nan)


def _observed_spend(observed: np.ndarray, spend: np.ndarray) -> np.ndarray:
    """``[C]`` each channel's spend ``[R,T,C]`` summed over the observed cells ``[R,T]``."""
    return np.where(observed[:, :, None], spend, 0.0).sum(axis=(0, 1))


def _finish_change(table: pd.DataFrame, delta: pd.Series, by_region: bool, **attrs: Any) -> pd.DataFrame:
    """:meth:`DeepCausalMMM.get_kpi_change`'s last steps: ``delta`` (each channel's total-effect
    change, by channel or by (region, channel)) as ``total_effect_change`` on the channel rows, and
    the KPI of each period, its change and ``attrs`` in ``table.attrs``."""
    if by_region:
        delta.index = delta.index.set_names(["region", "part"])
        table["total_effect_change"] = delta.reindex(table.index).where(table["kind"] == "channel")
    else:
        table["total_effect_change"] = delta.rename_axis("part").reindex(table.index)
    totals = table[["base", "compare"]].sum()
    table.attrs.update({
        "base_kpi": float(totals["base"]), "compare_kpi": float(totals["compare"]),
        "change": float(totals["compare"] - totals["base"]),
        "change_pct": float((totals["compare"] - totals["base"]) / abs(totals["base"]) * 100)
        if totals["base"] != 0 else float("nan"),
        **attrs,
    })
    return table


def _warn_uneven(per_base: np.ndarray, per_compare: np.ndarray, regions: Sequence[Any], later: str = "`compare`",
                 stacklevel: int = 3) -> None:
    """:meth:`DeepCausalMMM.get_kpi_change`'s warning when the periods hold different numbers of
    region-weeks (``per_base``, ``per_compare`` ``[R]``), naming the regions or, where every region
    is alike, the periods' lengths."""
    n_base, n_compare = int(per_base.sum()), int(per_compare.sum())
    if n_base == n_compare:
        return
    counted = np.flatnonzero((per_base > 0) | (per_compare > 0))
    pairs = {(int(per_base[r]), int(per_compare[r])) for r in counted}
    if len(pairs) == 1:  # every region alike: the periods differ in length
        (b_weeks, c_weeks), = pairs
        where = f"each of the {len(counted)} regions holds {b_weeks} observed weeks in `base` and {c_weeks} in {later}"
    else:
        uneven = np.flatnonzero(per_base != per_compare)
        counts = [f"{regions[r]} {int(per_base[r])} / {int(per_compare[r])}" for r in uneven[:5]]
        where = (f"regions whose weeks differ (base / {later.strip('`')}): " + ", ".join(counts)
                 + (f" and {len(uneven) - 5} more" if len(uneven) > 5 else ""))
    warnings.warn(
        f"`base` holds {n_base} observed region-weeks and {later} {n_compare}: the KPI of the extra ones shows "
        f"as change (mostly in `level`); {where}. Compare periods of equal length (with matched=True, over the "
        "regions observed throughout both) to compare like with like",
        UserWarning, stacklevel=stacklevel,
    )


def _switched_off(media: np.ndarray, scaled: np.ndarray, scale: np.ndarray, graph: ChannelGraph,
                  channel: int | np.ndarray) -> np.ndarray:
    """Media ``[R,T,C]`` under do(``channel`` = 0) through the graph (:func:`rescale` on the
    region-scaled activity ``scaled``, rescaled by ``scale`` ``[R,1,C]``); ``channel`` may be
    several channels, switched off at once. Cells the intervention leaves alone keep ``media``
    exactly, so a channel without descendants has total == direct (no rounding noise from
    rescaling)."""
    factors = np.ones(scaled.shape[2])
    factors[channel] = 0.0
    off = rescale(scaled, graph, factors, np.ones(scaled.shape[:2], dtype=bool))
    return np.where(off != scaled, off * scale, media)


def _check_roi_priors(cfg: MMMConfig, panel: Panel, spend: np.ndarray) -> None:
    """An ROI prior needs spend on the channel in the fitted (observed) weeks."""
    total = _observed_spend(panel.observed, spend)  # [C]
    none = [c for c in cfg.calibration.roi_priors if not total[panel.channels.index(c)] > 0]
    if none:
        raise DataError(
            f"config key 'calibration.roi_priors' names {none}, whose spend over the fitted weeks is 0, "
            "so they have no ROI; drop their priors, or pass their spend with fit(spend=...) when "
            "`X` holds something else"
        )


def _warn_weak_tests(cfg: MMMConfig, lifts: LiftTests, channels: Sequence[str]) -> None:
    """Warn when a channel loses (part of) its coefficient prior to imprecise lift tests only."""
    prior = cfg.calibration.tested_prior
    if cfg.calibration.weight == 0 or prior >= 1:
        return
    rel = lifts.se / np.maximum(np.abs(lifts.lift), np.finfo(float).tiny)  # [N]
    for c in np.unique(lifts.channel):
        best = float(rel[lifts.channel == c].min())
        if best > WEAK_TEST:
            warnings.warn(
                f"the most precise lift test on {channels[c]!r} has a standard error of {best:.0%} of "
                f"its lift; with calibration.tested_prior {prior:g} the channel's coefficient prior is "
                f"{'dropped' if prior == 0 else 'weakened'} and that test alone holds its level. Set "
                "calibration.tested_prior closer to 1 to keep the prior for imprecise tests",
                UserWarning,
                stacklevel=3,
            )


def fill_levels(panel: Panel) -> np.ndarray:
    """Per region ``[R]``: the KPI its fitted weeks end on if that last week is a filled cell, else NaN."""
    assert panel.y is not None
    stale = stale_cells(panel.y, panel.media, panel.observed)  # [R,T]
    T = panel.observed.shape[1]
    last = T - 1 - np.argmax(panel.observed[:, ::-1], axis=1)  # [R] last observed week
    rows = np.arange(len(last))
    ends_stale = panel.observed.any(axis=1) & stale[rows, last]
    return np.where(ends_stale, panel.y[rows, last], np.nan)


_MARGINAL_GRID = (0.9, 1.0, 1.1)
# the priors that decide the level of what the data do not observe (the coefficient ridge and the
# Hill-slope prior), drawn per replicate by get_effect_intervals(prior_spread=...)
_SPREAD_PRIORS = ("l2", "hill_slope")


def _check_prior_spread(prior_spread: Any) -> float:
    """``prior_spread`` as a float, or ``DataError`` naming it."""
    try:
        value = float(prior_spread)
    except (TypeError, ValueError):
        value = float("nan")
    if not (np.isfinite(value) and value >= 0):
        raise DataError(
            f"`prior_spread` must be a finite number >= 0 (the sd of each replicate's log multiplier on "
            f"the prior strengths {list(_SPREAD_PRIORS)}), found {prior_spread!r}; e.g. prior_spread="
            f"{PRIOR_SPREAD} (90% of replicates within 0.1-10 times the fitted strengths) or 0 "
            "(sampling variation only)")
    return value


def _marginal_roi(curves: pd.DataFrame, channels: Sequence[str]) -> np.ndarray:
    """Per channel ``[C]``: ``marginal_roi`` at multiplier 1 of a :meth:`get_response_curves` table."""
    at_one = curves[np.isclose(curves["multiplier"], 1.0)].set_index("channel")["marginal_roi"]
    return at_one.reindex(list(channels)).to_numpy(dtype=float)


def _response_slope(curves: pd.DataFrame, channels: Sequence[str]) -> np.ndarray:
    """Per channel ``[C]``: response change per unit multiplier across the ``_MARGINAL_GRID`` ends."""
    table = curves.pivot(index="channel", columns="multiplier", values="response").reindex(list(channels))
    lo, hi = _MARGINAL_GRID[0], _MARGINAL_GRID[-1]
    return ((table[hi] - table[lo]) / (hi - lo)).to_numpy(dtype=float)


def season_cycles(dates: pd.Index, period: float) -> float:
    """How many seasonal periods the grid ``dates`` spans (one step counted per date)."""
    phase = season_phase(dates, period)  # [T] in cycles
    T = len(phase)
    return float((phase[-1] - phase[0]) * T / (T - 1)) if T > 1 else 0.0


def _day_of_week(cfg: MMMConfig) -> bool:
    """Whether a fitted configuration's baseline has the day-of-week terms (``auto`` is resolved
    at fit time; a saved file without the setting predates it and has none)."""
    return cfg.baseline.day_of_week == "on"


def _season_terms(cfg: MMMConfig, dates: pd.Index, phase: np.ndarray) -> np.ndarray:
    """The baseline's seasonal columns ``[T,P2]``: yearly harmonics, then the day of the week."""
    yearly = fourier_features(phase, cfg.baseline.fourier_order)  # [T,2F]
    if not _day_of_week(cfg):
        return yearly
    return np.concatenate([yearly, day_of_week_features(dates)], axis=1)  # [T,2F+6]


def _resolved_day_of_week(cfg: MMMConfig, dates: pd.Index) -> MMMConfig:
    """``baseline.day_of_week`` as ``on`` or ``off`` for these dates (``auto``: on when dated rows
    are less than a week apart)."""
    days = step_days(dates)
    sub_weekly = days is not None and days < 7
    setting = cfg.baseline.day_of_week
    if setting == "on" and not sub_weekly:
        found = "integer periods" if days is None else f"dates {days:g} days apart"
        raise ConfigError(
            f"baseline.day_of_week is 'on' but the rows have {found}: a day-of-week pattern needs "
            "dated rows less than a week apart (daily data); use 'auto' or 'off'"
        )
    resolved = "on" if setting == "on" or (setting == "auto" and sub_weekly) else "off"
    return cfg.model_copy(update={"baseline": cfg.baseline.model_copy(update={"day_of_week": resolved})})


def _warn_sub_weekly(dates: pd.Index, cfg: MMMConfig) -> None:
    """Warn when the grid's steps are shorter than a week and the settings counted in weeks are
    the weekly defaults: they then count those steps (and, with ``baseline.day_of_week`` off,
    nothing models the weekday). Setting ``baseline.knot_spacing``, ``baseline.short_knot_spacing``
    or ``carryover.max_lag`` says the caller has chosen them, and silences it."""
    days = step_days(dates)
    if days is None or days >= 7:
        return
    b, co = cfg.baseline, cfg.carryover
    fields = type(b).model_fields
    if (b.knot_spacing, b.short_knot_spacing, co.max_lag) != (
            fields["knot_spacing"].default, fields["short_knot_spacing"].default,
            type(co).model_fields["max_lag"].default):
        return  # the caller has set the step-counted settings
    short = season_cycles(dates, b.period) < b.min_season_cycles  # the short-history knots apply
    knots = (f"baseline.short_knot_spacing {b.short_knot_spacing} (the fit spans under "
             f"baseline.min_season_cycles {b.min_season_cycles:g} years): a trend knot every "
             f"{b.short_knot_spacing * days:g} day(s)" if short else
             f"baseline.knot_spacing {b.knot_spacing}: a trend knot every {b.knot_spacing * days:g} day(s)")
    weekday = ("the baseline has a day-of-week pattern (baseline.day_of_week)" if _day_of_week(cfg)
               else "nothing models the day of the week (baseline.day_of_week is off)")
    warnings.warn(
        f"dates are {days:g} day(s) apart: the settings counted in weeks count steps of the data "
        f"here ({knots}; carryover.max_lag {co.max_lag}: {co.max_lag * days:g} day(s) of carryover; "
        f"graph.max_lag {cfg.graph.max_lag}: lags of {cfg.graph.max_lag * days:g} day(s)); "
        f"{weekday}. The defaults were chosen on weekly data: aggregate the rows to weeks, or "
        "scale those settings to the step (the weekly defaults are baseline.knot_spacing "
        f"{round(b.knot_spacing * 7 / days)}, baseline.short_knot_spacing "
        f"{round(b.short_knot_spacing * 7 / days)} and carryover.max_lag {round(co.max_lag * 7 / days)} "
        "in these steps)",
        UserWarning,
        stacklevel=3,
    )


def _applied_calendar_effects(cfg: MMMConfig, dates: pd.Index) -> MMMConfig:
    """``cfg`` without calendar effects when the fit spans too few cycles.

    Under ``baseline.min_season_cycles`` periods, neither a yearly baseline
    shape nor carryover gates that move with the calendar can be told from
    the trend: the Fourier seasonality is dropped, the context GRU no longer
    shifts the gates (``carryover.context_scale`` 0), and the trend gets knots
    every ``baseline.short_knot_spacing`` weeks, so that the KPI's national
    path (which shared budget seasons follow too) sits in the baseline rather
    than in media effects.
    """
    b, co = cfg.baseline, cfg.carryover
    if season_cycles(dates, b.period) >= b.min_season_cycles:
        return cfg
    return cfg.model_copy(update={
        "baseline": b.model_copy(update={"fourier_order": 0, "knot_spacing": b.short_knot_spacing}),
        "carryover": co.model_copy(update={"context_scale": 0.0}),
    })


def _stale_weighted(
    y: np.ndarray, media: np.ndarray, observed: np.ndarray, weight: np.ndarray, stale_weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """``weight`` ``[R,T]`` times ``stale_weight`` on filled-looking cells, and those cells."""
    stale = stale_cells(y, media, observed)  # [R,T]
    return np.where(stale, weight * stale_weight, weight), stale


def _down_weight_stale(panel: Panel, stale_weight: float) -> Panel:
    """Give filled-looking cells (:func:`stale_cells`) the loss weight ``stale_weight``, with a warning."""
    assert panel.y is not None
    weight, stale = _stale_weighted(panel.y, panel.media, panel.observed, panel.weight, stale_weight)
    if stale_weight == 1.0 or not stale.any():
        return panel
    regions = [panel.regions[i] for i in np.flatnonzero(stale.any(axis=1))]
    warnings.warn(
        f"{int(stale.sum())} week(s) in {len(regions)} region(s) (e.g. {regions[:5]}) have every "
        "channel at 0 and repeat an adjacent week's KPI exactly; they look like filled gaps and "
        f"get loss weight data.stale_weight={stale_weight}. Pass `sample_weight` to weight rows "
        "yourself, or set data.stale_weight=1 to treat them as measurements",
        UserWarning,
        stacklevel=3,
    )
    return dataclasses.replace(panel, weight=weight)


def _printer(use_val: bool) -> Any:
    """Adam's progress every 50 epochs (the validation loss only where weeks are held out)."""
    def cb(epoch: int, loss: float, val: float) -> None:
        if epoch % 50 == 0:
            tail = f"  validation {val:.6f}" if use_val else ""
            print(f"Adam epoch {epoch:5d}  loss {loss:.6f}{tail}", flush=True)

    return cb


