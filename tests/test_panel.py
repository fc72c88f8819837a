"""The panel contract: layouts accepted, and a clear error for each kind of bad input."""

import warnings

import numpy as np
import pandas as pd
import pytest

from deepcausalmmm import DataError, DeepCausalMMM
from deepcausalmmm.data import build_panel


def frame(n_regions=2, n_weeks=10, seed=0):
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-01-01", periods=n_weeks, freq="7D")
    rows = []
    for r in range(n_regions):
        for d in dates:
            rows.append({"region": f"r{r}", "date": d, "tv": rng.uniform(0, 10),
                         "search": rng.uniform(0, 5), "price": rng.normal(10, 1),
                         "kpi": rng.uniform(90, 110)})
    return pd.DataFrame(rows)


def panel_of(df, **kw):
    return build_panel(df[["tv", "search"]], df["kpi"], df["region"], df["date"],
                       df[["price"]], **kw)


def test_long_frame_layout():
    df = frame()
    p = panel_of(df)
    assert p.shape == (2, 10, 2)
    assert p.controls == ["price"]
    assert p.observed.all()
    np.testing.assert_allclose(p.media[1, 3], df[["tv", "search"]].iloc[13])


def test_controls_by_column_name_and_cube():
    df = frame()
    p = build_panel(df[["tv", "search", "price"]], df["kpi"], df["region"], df["date"], ["price"])
    assert p.channels == ["tv", "search"] and p.controls == ["price"]
    cube = np.ones((3, 12, 2))
    pc = build_panel(cube, np.ones((3, 12)))
    assert pc.shape == (3, 12, 2) and pc.regions == ["region_0", "region_1", "region_2"]


def test_ragged_panel_is_masked_not_invented():
    df = frame().drop(index=[3, 4])  # region r0 misses two weeks
    p = panel_of(df)
    assert p.shape == (2, 10, 2)
    assert not p.observed[0, 3] and not p.observed[0, 4]
    assert np.isnan(p.y[0, 3]) and p.weight[0, 3] == 0
    assert p.media[0, 3].sum() == 0
    assert p.control_values[0, 3, 0] == p.control_values[0, 2, 0]  # forward filled


def test_missing_dates_and_region_labels_are_counted():
    df = frame()
    dates = df["date"].astype(object).copy()
    dates.iloc[[2, 5]] = pd.NaT
    with pytest.raises(DataError, match=r"`dates` contain 2 missing value\(s\) \(NaT\); .* fill them or drop"):
        panel_of(df.assign(date=dates))
    regions = df["region"].astype(object).copy()
    regions.iloc[4] = None
    with pytest.raises(DataError, match=r"`regions` contains 1 missing label\(s\); .* fill them or drop"):
        panel_of(df.assign(region=regions))


@pytest.mark.parametrize("col", ["tv", "price", "kpi"])
def test_nan_and_inf(col):
    df = frame()
    df.loc[12, col] = np.nan
    name = {"tv": "X", "price": "controls", "kpi": "y"}[col]
    shown = "y" if col == "kpi" else col
    fix = {"tv": "missing spend is usually 0", "price": "carry the last known value forward",
           "kpi": "`sample_weight` 0"}[col]  # the fix fits the argument
    with pytest.raises(DataError, match=rf"`{name}` column '{shown}' has 1 NaN.*region 'r1', dates 2024-01-15.*{fix}"):
        panel_of(df)
    df.loc[12, col] = np.inf
    with pytest.raises(DataError, match="infinite"):
        panel_of(df)


def test_negative_spend_names_column_region_dates():
    df = frame()
    df.loc[[2, 3, 4], "tv"] = -1.0
    with pytest.raises(DataError, match=r"`X` column 'tv' has 3 negative value\(s\) \(region 'r0', "
                                        r"dates 2024-01-15..2024-01-29\); spend/activity must be >= 0"):
        panel_of(df)


def test_duplicate_rows():
    df = frame()
    df = pd.concat([df, df.iloc[[5]]], ignore_index=True)
    with pytest.raises(DataError, match=r"duplicate \(region, date\) rows.*region 'r0', dates 2024-02-05"):
        panel_of(df)


def test_irregular_dates():
    df = frame()
    df.loc[5, "date"] = df.loc[5, "date"] + pd.Timedelta(days=2)
    with pytest.raises(DataError, match="`dates` are irregular.*off that grid"):
        panel_of(df)


def test_calendar_months_and_quarters_are_a_grid():
    """Month starts (or ends) are a grid although their spacing in days varies; a month a region
    lacks is masked, quarters step 3 months, and a date off the month anchor is irregular."""
    from deepcausalmmm.data.history import extend_grid, grid_positions, grid_spacing

    df = frame(n_weeks=14)
    months = pd.date_range("2023-11-01", periods=14, freq="MS")
    df["date"] = np.tile(months, 2)
    df = df.drop(index=3)  # region r0 lacks 2024-02-01
    p = panel_of(df)
    assert list(p.dates) == list(months) and not p.observed[0, 3] and p.observed[1, 3]
    ends = panel_of(df.assign(date=df["date"] + pd.offsets.MonthEnd(0)))
    assert ends.dates[2] == pd.Timestamp("2024-01-31") and ends.dates[4] == pd.Timestamp("2024-03-31")
    periods = panel_of(df.assign(date=df["date"].dt.to_period("M")))
    assert list(periods.dates) == list(months)
    quarters = pd.date_range("2020-01-01", periods=10, freq="QS")
    q = build_panel(np.arange(1.0, 10.0)[:, None], np.ones(9), dates=quarters.delete(4))
    assert list(q.dates) == list(quarters) and not q.observed[0, 4]
    assert grid_spacing(q.dates) == "3 month(s), at month starts"
    # positions on the grid continue both ways; off the month anchor is fractional (off the grid)
    later = pd.DatetimeIndex(["2019-10-01", "2022-07-01", "2023-01-01", "2022-07-15"])
    np.testing.assert_allclose(grid_positions(q.dates, later), [-1, 10, 12, 10.5])
    assert list(extend_grid(q.dates, 12)[-2:]) == [pd.Timestamp("2022-07-01"), pd.Timestamp("2022-10-01")]
    assert extend_grid(ends.dates, 16)[-1] == pd.Timestamp("2025-02-28")
    weekly = panel_of(frame())  # a fixed spacing stays a fixed spacing
    assert weekly.dates[1] - weekly.dates[0] == pd.Timedelta(days=7)
    mixed = df.copy()
    mixed.loc[mixed.index[5], "date"] = pd.Timestamp("2024-04-15")
    with pytest.raises(DataError, match="`dates` are irregular.*calendar months"):
        panel_of(mixed)
    with pytest.raises(DataError, match="month starts whose smallest spacing is 2 month"):
        build_panel(np.arange(1.0, 4.0)[:, None], np.ones(3),
                    dates=pd.DatetimeIndex(["2024-01-01", "2024-03-01", "2024-06-01"]))


def test_monthly_fit_is_the_integer_period_fit_with_period_12(tmp_path):
    """With the calendar-dependent parts off (no Fourier terms, no graph), a fit on month starts is
    the fit on period numbers 0, 1, ... with a 12-period year, and forecasts continue the months."""
    from deepcausalmmm.datasets import simulate_panel

    from .conftest import FAST

    sim = simulate_panel(4, 30, 2, seed=3)
    week_index = {d: i for i, d in enumerate(sorted(sim.data["date"].unique()))}
    step = sim.data["date"].map(week_index).to_numpy()
    months = pd.date_range("2021-01-01", periods=30, freq="MS")[step]
    cfg = {**FAST, "baseline": {"fourier_order": 0}, "graph": {"mode": "none"}}
    train = step < 24
    X, y, reg = sim.X[train], sim.y[train], sim.regions[train]
    by_month = DeepCausalMMM(config=cfg, random_state=0).fit(X, y, regions=reg, dates=months[train])
    by_step = DeepCausalMMM(config={**cfg, "baseline": {"fourier_order": 0, "period": 12}}, random_state=0)
    by_step.fit(X, y, regions=reg, dates=step[train])
    kw = dict(regions=sim.regions[~train])
    forecast = by_month.predict(sim.X[~train], dates=months[~train], **kw)
    np.testing.assert_allclose(forecast, by_step.predict(sim.X[~train], dates=step[~train], **kw), rtol=1e-6)
    assert np.isfinite(forecast).all()
    loaded = DeepCausalMMM.load(by_month.save(tmp_path / "monthly.safetensors"))  # the month grid survives
    np.testing.assert_allclose(loaded.predict(sim.X[~train], dates=months[~train], **kw), forecast, rtol=1e-6)
    with pytest.raises(DataError, match="every 1 month\\(s\\), at month starts"):  # a date off the grid
        one = step == 24
        by_month.predict(sim.X[one], regions=sim.regions[one], dates=months[one] + pd.Timedelta(days=3))


def test_mismatched_lengths():
    df = frame()
    with pytest.raises(DataError, match=r"`y` has 19 values but `X` has 20 rows"):
        build_panel(df[["tv"]], df["kpi"].iloc[:-1], df["region"], df["date"])
    with pytest.raises(DataError, match=r"`regions` has 19 labels"):
        build_panel(df[["tv"]], df["kpi"], df["region"].iloc[:-1], df["date"])
    with pytest.raises(DataError, match=r"`controls` has 19 rows"):
        build_panel(df[["tv"]], df["kpi"], df["region"], df["date"], df[["price"]].iloc[:-1])


def test_pandas_inputs_whose_index_reorders_x_are_refused():
    """Rows are matched by position. A pandas `y` (or regions, dates, controls, weights) holding
    `X`'s index labels in another order would pair every row with another row's value: refused,
    naming the argument, a mismatched row and the fix. An index that differs only in its labels
    (one side reset) is matched by position, with a warning; the panel equals the arrays'."""
    df = frame()
    shuffled = df.sample(frac=1.0, random_state=0)
    cases = {"y": dict(y=shuffled["kpi"]), "regions": dict(regions=shuffled["region"]),
             "dates": dict(dates=shuffled["date"]), "controls": dict(controls=shuffled[["price"]]),
             "sample_weight": dict(sample_weight=shuffled["kpi"] * 0 + 1)}
    for name, kw in cases.items():
        args = {**dict(y=df["kpi"], regions=df["region"], dates=df["date"], controls=df[["price"]]), **kw}
        with pytest.raises(DataError, match=rf"`{name}` has the same index labels as `X` in a "
                           rf"different order \(row 0: `X` has label 0, `{name}` has \d+\).*"
                           rf"{name}\.loc\[X\.index\]"):
            build_panel(df[["tv", "search"]], **args)
    reset = df["kpi"].copy()
    reset.index = reset.index + 1000
    with pytest.warns(UserWarning, match="`y`'s index differs from `X`'s; rows are matched by position"):
        p = build_panel(df[["tv", "search"]], reset, df["region"], df["date"])
    q = build_panel(df[["tv", "search"]], df["kpi"].to_numpy(), df["region"], df["date"])
    np.testing.assert_array_equal(p.y, q.y)


def test_non_numeric_column():
    df = frame()
    df["tv"] = df["tv"].astype(str)
    df.loc[0, "tv"] = "lots"
    with pytest.raises(DataError, match=r"`X` column\(s\) \['tv'\] are not numeric \(1 of \d+ cells of 'tv' "
                                        r"are not numbers, e.g. 'lots'\)"):
        panel_of(df)
    # a text column of numbers with an empty cell is numeric with a missing value, and says so
    df.loc[0, "tv"] = None
    with pytest.raises(DataError, match=r"`X` column 'tv' has 1 NaN/non-finite value\(s\)"):
        panel_of(df)


def test_too_few_weeks_and_single_week_region():
    df = frame(n_weeks=5)
    with pytest.raises(DataError, match=r"spans 5 weeks but the model needs at least 8 \(config data.min_weeks\)"):
        panel_of(df, min_weeks=8)
    df = frame()
    df = df[(df.region == "r0") | (df.date == df.date.min())]
    with pytest.raises(DataError, match=r"region\(s\) \['r1'\] have a single week"):
        panel_of(df)


def test_unknown_control_name():
    df = frame()
    with pytest.raises(DataError, match=r"`controls` names \['weather'\] that are not columns of `X`"):
        build_panel(df[["tv"]], df["kpi"], df["region"], df["date"], ["weather"])


def test_all_zero_channel_warns():
    df = frame()
    df["search"] = 0.0
    with pytest.warns(UserWarning, match=r"channel\(s\) \['search'\] are zero in every row"):
        panel_of(df)


def test_region_with_kpi_zero_in_every_fitted_week_warns():
    df = frame(n_regions=3)
    df.loc[df.region == "r1", "kpi"] = 0.0
    with pytest.warns(UserWarning, match=r"1 region\(s\) \(\['r1'\]\) have KPI 0 in every fitted week"):
        panel_of(df)
    # a zero KPI only in weeks the fit ignores (weight 0), or in some weeks, is not flagged
    df = frame(n_regions=3)
    r1 = (df.region == "r1").to_numpy()
    df.loc[r1 & (df.date < "2024-02-01"), "kpi"] = 0.0
    weight = np.where(r1 & (df.date < "2024-02-01"), 0.0, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        panel_of(df, sample_weight=weight)
        panel_of(df)


def test_bad_input_leaves_fitted_model_unchanged(fitted, small_sim):
    before = {k: v.clone() for k, v in fitted.net_.state_dict().items()}
    scale = fitted.scaler_.y_scale.copy()
    X = small_sim.X.copy()
    X.iloc[0, 0] = -5.0
    with pytest.raises(DataError, match="negative"):
        fitted.fit(X, small_sim.y, regions=small_sim.regions, dates=small_sim.dates,
                   controls=small_sim.control_frame)
    after = fitted.net_.state_dict()
    assert all(bool((before[k] == after[k]).all()) for k in before)
    np.testing.assert_array_equal(scale, fitted.scaler_.y_scale)


def test_fit_reports_negative_spend_via_estimator():
    df = frame()
    df.loc[0, "tv"] = -1
    with pytest.raises(DataError, match="column 'tv' has 1 negative"):
        DeepCausalMMM().fit(df[["tv", "search"]], df["kpi"], regions=df["region"], dates=df["date"])


def test_sample_weights_must_leave_something_to_fit():
    df = frame()
    with pytest.raises(DataError, match=r"`sample_weight` is 0 for every row, so the fit has no KPI"):
        panel_of(df, sample_weight=np.zeros(len(df)))
    w = np.ones(len(df))
    w[4] = -0.5
    with pytest.raises(DataError, match=r"found -0.5 in row 4; use 0 for rows whose KPI the fit should ignore"):
        panel_of(df, sample_weight=w)
    # predictions need no weights at all
    assert build_panel(df[["tv", "search"]], None, df["region"], df["date"], purpose="predict").y is None


def test_date_column_inside_X_is_rejected():
    df = frame()
    with pytest.raises(DataError, match=r"`X` column\(s\) \['date'\] hold dates, not activity; pass them as `dates=`"):
        build_panel(df[["tv", "date"]], df["kpi"], df["region"])


def test_counterfactual_without_dates_uses_row_order(fitted, small_sim):
    model = DeepCausalMMM(config={"training": {"epochs": 20, "polish_steps": 0}}).fit(
        small_sim.X, small_sim.y, regions=small_sim.regions)
    X0 = small_sim.X.copy()
    X0["channel_1"] = 0.0
    table = model.get_channel_contributions(X0, regions=small_sim.regions)
    assert (table["channel_1"] == 0).all()
    assert list(table.index.get_level_values("date")[:3]) == [0, 1, 2]


@pytest.mark.parametrize("dates", [list(range(100, 112)), np.arange(100, 112).astype(object)])
def test_integer_periods_stay_periods(dates):
    cube = np.ones((2, 12, 1))
    p = build_panel(cube, np.ones((2, 12)), dates=list(dates))
    assert list(p.dates) == list(range(100, 112))
    flat = build_panel(np.ones((24, 1)), np.ones(24), regions=["a"] * 12 + ["b"] * 12,
                       dates=np.tile(np.asarray(dates), 2))
    assert not isinstance(flat.dates, pd.DatetimeIndex) and flat.dates[0] == 100


def test_pandas_periods_read_as_their_first_day():
    df = frame(n_weeks=12)
    weeks = df["date"].dt.to_period("W-SUN")  # Monday-Sunday weeks
    p = panel_of(df.assign(date=weeks))
    assert isinstance(p.dates, pd.DatetimeIndex)
    assert list(p.dates) == list(pd.date_range("2024-01-01", periods=12, freq="7D"))
    daily = build_panel(np.ones((6, 1)), np.ones(6), dates=pd.period_range("2024-01-01", periods=6, freq="D"))
    assert daily.dates[1] == pd.Timestamp("2024-01-02")


def test_time_zone_aware_dates_are_read_as_their_calendar_dates():
    df = frame(n_weeks=12)
    aware = df["date"].dt.tz_localize("America/New_York")
    p = panel_of(df.assign(date=aware))
    assert p.dates.tz is None and p.dates[0] == pd.Timestamp("2024-01-01")
    model = DeepCausalMMM(config={"training": {"epochs": 5, "polish_steps": 0}})
    model.fit(df[["tv", "search"]], df["kpi"], regions=df["region"], dates=aware)
    later = df.assign(date=df["date"] + pd.Timedelta(weeks=12))  # naive dates continue an aware fit
    assert np.isfinite(model.predict(later[["tv", "search"]], regions=later["region"], dates=later["date"])).all()


def test_static_channels_known_answers():
    from deepcausalmmm.data import static_channels

    media = np.ones((2, 6, 5))
    media[1, :, 1] = 7.0  # a constant of its own per region: still no week-to-week variation
    media[0, 3, 2] = 2.0  # varies in one region only: its effect shows there
    media[:, :, 3] = 0.0  # never active: a zero channel, not a static one
    media[1, 0, 4] = 50.0  # differs only in a week no one observed
    observed = np.ones((2, 6), dtype=bool)
    observed[1, 0] = False
    np.testing.assert_array_equal(static_channels(media, observed), [True, True, False, False, True])


def test_twin_channels_known_answers():
    """Two columns with the same activity relative to each region's mean (a copy, or the
    same plan in other units with a different factor per region) correlate at 1; channels
    with movements of their own, flat ones and dark ones are not twins."""
    from deepcausalmmm.data.panel import twin_channels

    rng = np.random.default_rng(0)
    base = rng.lognormal(0, 0.3, (4, 30))
    media = np.stack([base, base * np.array([[2.0], [3.0], [0.5], [9.0]]),  # 1: 0 in other units
                      rng.lognormal(0, 0.3, (4, 30)),  # 2: its own movements
                      base + rng.normal(0, 0.05, (4, 30)),  # 3: close to 0 (correlation 0.986), not the same
                      np.full((4, 30), 5.0), np.zeros((4, 30))], axis=2)  # 4 flat, 5 dark
    observed = np.ones((4, 30), dtype=bool)
    twins = twin_channels(media, observed)
    assert [(a, b) for a, b, _ in twins] == [(0, 1)]
    assert twins[0][2] == pytest.approx(1.0)
    observed[:, 10:] = False  # fewer weeks, the same answer
    assert [(a, b) for a, b, _ in twin_channels(media, observed)] == [(0, 1)]


def test_the_same_channel_twice_warns_naming_the_pair(small_sim):
    X = small_sim.X.assign(tv_impressions=small_sim.X["channel_1"] * 1e3)
    with pytest.warns(UserWarning, match=r"'channel_1' and 'tv_impressions' \(1\.0000\) move together"):
        model = DeepCausalMMM(config={"training": {"epochs": 5, "polish_steps": 0}}).fit(
            X, small_sim.y, regions=small_sim.regions, dates=small_sim.dates)
    moves = model.get_identification()["moves_with"]
    assert moves["channel_1"] == "tv_impressions" and moves["tv_impressions"] == "channel_1"
    assert (moves.drop(["channel_1", "tv_impressions"]) == "").all()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no twins: no warning of any kind
        build_panel(small_sim.X, small_sim.y, regions=small_sim.regions, dates=small_sim.dates)


def test_constant_channel_is_fixed_at_zero_with_a_warning(small_sim):
    X = small_sim.X.assign(sponsorship=2500.0)
    kw = dict(regions=small_sim.regions, dates=small_sim.dates)
    with pytest.warns(UserWarning, match=r"\['sponsorship'\] have the same activity in every observed week"):
        model = DeepCausalMMM(config={"training": {"epochs": 40, "polish_steps": 0}}).fit(X, small_sim.y, **kw)
    contrib = model.get_channel_contributions()
    assert (contrib["sponsorship"] == 0).all() and (contrib["channel_1"] > 0).any()
    effects = model.get_channel_effects()
    assert effects.loc["sponsorship", "total"] == 0 and effects.loc["sponsorship", "total_share"] == 0
    assert model.get_identification().loc["sponsorship", "level"] == "no variation"
    assert "sponsorship" not in model.optimize_budget().index  # left as observed
    assert "sponsorship" in model.optimize_budget(channels=["channel_1", "sponsorship"]).index


def test_filled_gaps_are_not_measured_activity():
    # A completed grid: region r1's feed stops after week 5, its media set to 0 and its KPI
    # carried forward. Those weeks are not data: a flat fee is still a flat fee there.
    df = frame(n_regions=2, n_weeks=12).assign(fee=100.0)
    stop = (df["region"] == "r1") & (df["date"] >= df["date"].unique()[6])
    df.loc[stop, ["tv", "search", "fee"]] = 0.0
    df.loc[stop, "kpi"] = np.nan
    df["kpi"] = df.groupby("region")["kpi"].ffill()
    with pytest.warns(UserWarning, match=r"\['fee'\] have the same activity"):
        p = build_panel(df[["tv", "search", "fee"]], df["kpi"], df["region"], df["date"])
    assert p.observed.all() and p.measured().sum() == 24 - 6
    assert not p.measured()[1, 6:].any()


def test_stale_cells_flag_filled_gaps_only():
    from deepcausalmmm.data import stale_cells

    y = np.array([[5.0, 7.0, 7.0, 7.0, 8.0, 8.0, 3.0, 3.0]])
    media = np.ones((1, 8, 2))
    media[0, 2:4] = 0.0  # weeks 2-3: dark and repeating week 1 -> forward-filled
    media[0, 5, :] = [0.0, 1.0]  # week 5 repeats week 4 but one channel is live -> genuine
    media[0, 6] = 0.0  # week 6: dark and equal to week 7 -> backward-filled
    observed = np.ones((1, 8), dtype=bool)
    np.testing.assert_array_equal(stale_cells(y, media, observed)[0],
                                  [0, 0, 1, 1, 0, 0, 1, 0])
    observed[0, 7] = False  # an unobserved neighbour is no evidence
    assert not stale_cells(y, media, observed)[0, 6]


def test_fit_down_weights_stale_weeks_unless_weights_given(small_sim):
    df = small_sim.data.copy()
    weeks = df["date"].unique()
    geo1 = df["region"] == "geo_001"
    gone = geo1 & (df["date"] >= weeks[40])  # the feed stopped; the grid was forward-filled
    channels = small_sim.channels
    df.loc[gone, channels] = 0.0
    df.loc[gone, "kpi"] = df.loc[geo1 & (df["date"] == weeks[39]), "kpi"].iloc[0]
    args = (df[channels], df["kpi"], df["region"], df["date"])
    fast = {"training": {"epochs": 2, "polish_steps": 0}}
    with pytest.warns(UserWarning, match=r"20 week\(s\) in 1 region\(s\).*'geo_001'.*filled gaps"):
        model = DeepCausalMMM(config=fast).fit(*args)
    w = model.panel_.weight
    assert np.all(w[1, 40:] == 0.1) and np.all(w[1, :40] == 1.0) and np.all(w[0] == 1.0)
    # explicit weights and stale_weight=1 leave every week as given
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        given = DeepCausalMMM(config=fast).fit(*args, sample_weight=np.ones(len(df)))
        off = DeepCausalMMM(config={**fast, "data": {"stale_weight": 1.0}}).fit(*args)
    assert np.all(given.panel_.weight == 1.0) and np.all(off.panel_.weight == 1.0)


def test_backtest_weights_stale_weeks_like_fit(small_sim):
    df = small_sim.data.copy()
    weeks = df["date"].unique()
    geo1 = df["region"] == "geo_001"
    gone = geo1 & (df["date"] >= weeks[40])
    df.loc[gone, small_sim.channels] = 0.0
    df.loc[gone, "kpi"] = df.loc[geo1 & (df["date"] == weeks[39]), "kpi"].iloc[0]
    args = (df[small_sim.channels], df["kpi"].to_numpy(), df["region"], df["date"])
    model = DeepCausalMMM(config={"training": {"epochs": 3, "polish_steps": 0}})
    auto = model.backtest(*args, n_splits=1, horizon=8)
    explicit = model.backtest(*args, n_splits=1, horizon=8,
                              sample_weight=np.where(gone, 0.1, 1.0))
    cols = ["wape_pct", "r2", "national_mape_pct"]
    pd.testing.assert_frame_equal(auto[cols], explicit[cols])
    unweighted = DeepCausalMMM(config={"training": {"epochs": 3, "polish_steps": 0}, "data": {"stale_weight": 1.0}})
    assert not unweighted.backtest(*args, n_splits=1, horizon=8)[cols].equals(auto[cols])


def test_forecast_continues_a_stopped_feed_at_its_filled_value(small_sim):
    df = small_sim.data.copy()
    weeks = df["date"].unique()
    channels = small_sim.channels
    geo1 = df["region"] == "geo_001"
    gone = geo1 & (df["date"] >= weeks[40])  # feed stopped at week 40; the grid was filled
    filled = df.loc[geo1 & (df["date"] == weeks[39]), "kpi"].iloc[0]
    df.loc[gone, channels] = 0.0
    df.loc[gone, "kpi"] = filled
    fit_rows, future = df[df["date"] < weeks[50]], df[df["date"] >= weeks[50]].copy()
    fast = {"training": {"epochs": 3, "polish_steps": 0}}
    with pytest.warns(UserWarning, match="filled gaps"):
        on = DeepCausalMMM(config=fast).fit(fit_rows[channels], fit_rows["kpi"],
                                            fit_rows["region"], fit_rows["date"])
        off = DeepCausalMMM(config={**fast, "data": {"continue_fills": False}}).fit(
            fit_rows[channels], fit_rows["kpi"], fit_rows["region"], fit_rows["date"])
    args = (future[channels], future["region"], future["date"])
    table = on.get_channel_contributions(*args)
    pred_on, pred_off = on.predict(*args), off.predict(*args)
    stopped = (future["region"] == "geo_001").to_numpy()
    np.testing.assert_allclose(pred_on[stopped], filled, rtol=1e-9)
    assert np.abs(pred_off[stopped] / filled - 1).max() > 1e-3  # the model alone would not say so
    np.testing.assert_allclose(pred_on[~stopped], pred_off[~stopped], rtol=1e-6)  # others untouched
    parts = table[channels].sum(axis=1) + table["baseline"] + table["controls"]
    np.testing.assert_allclose(parts.to_numpy(), table["prediction"].to_numpy(), rtol=1e-9)
    # a week with activity again is a measurement, not a fill: the model forecasts it
    live = future.copy()
    live.loc[live["region"] == "geo_001", channels] = 1.0
    relit = on.predict(live[channels], live["region"], live["date"])
    assert np.abs(relit[stopped] / filled - 1).max() > 1e-3
    # weeks inside the fitted period are never overwritten
    past = fit_rows[fit_rows["region"] == "geo_001"]
    inside = on.predict(past[channels], past["region"], past["date"])
    np.testing.assert_allclose(inside, off.predict(past[channels], past["region"], past["date"]),
                               rtol=1e-6)


def test_arguments_may_name_columns_of_x():
    df = frame(n_regions=3)
    df["w"] = np.linspace(0.5, 1.0, len(df))
    expected = build_panel(df[["tv", "search"]], df["kpi"], df["region"], df["date"], df[["price"]],
                           sample_weight=df["w"])
    before = df.copy()
    p = build_panel(df, "kpi", "region", "date", "price", sample_weight="w")
    pd.testing.assert_frame_equal(df, before)  # the caller's frame is not modified
    assert p.channels == ["tv", "search"] and p.controls == ["price"]
    assert p.regions == expected.regions and list(p.dates) == list(expected.dates)
    for a, b in ((p.media, expected.media), (p.y, expected.y), (p.weight, expected.weight),
                 (p.control_values, expected.control_values)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(DataError, match=r"`regions` is the string 'dma', which is not a column of `X` "
                                        r"\(columns: \['region', 'date', 'tv', .*\]\); pass one value per row"):
        build_panel(df, "kpi", "dma", "date")
    with pytest.raises(DataError, match=r"`regions` and `dates` both name the column 'region' of `X`"):
        build_panel(df, "kpi", "region", "region")
    with pytest.raises(DataError, match=r"`regions` is the string 'region', but `X` is a ndarray, not a "
                                        r"DataFrame with named columns"):
        build_panel(df[["tv", "search"]].to_numpy(), df["kpi"], "region")
    with pytest.raises(DataError, match=r"or name the column: `dates='date'`"):
        build_panel(df[["tv", "date"]], df["kpi"], df["region"])


def test_fit_and_predict_with_named_columns_match_arrays(small_sim):
    d = small_sim.data
    cfg = {"training": {"epochs": 10, "polish_steps": 0}}
    by_array = DeepCausalMMM(config=cfg).fit(d[small_sim.channels], d["kpi"], regions=d["region"],
                                             dates=d["date"], controls=d[small_sim.controls])
    by_name = DeepCausalMMM(config=cfg).fit(d, "kpi", regions="region", dates="date",
                                            controls=small_sim.controls)
    assert by_name.channels_ == small_sim.channels and by_name.controls_ == small_sim.controls
    rows = d.drop(columns="kpi")
    np.testing.assert_array_equal(
        by_array.predict(d[small_sim.channels], regions=d["region"], dates=d["date"],
                         controls=d[small_sim.controls]),
        by_name.predict(rows, regions="region", dates="date", controls=small_sim.controls))
    # score reads a named KPI and weight column the same way
    w = np.linspace(0.5, 1.5, len(d))
    assert by_name.score(d.assign(w=w), "kpi", regions="region", dates="date", controls=small_sim.controls,
                         sample_weight="w") == by_array.score(
        d[small_sim.channels], d["kpi"], regions=d["region"], dates=d["date"], controls=d[small_sim.controls],
        sample_weight=w)


def test_steps_shorter_than_a_week_warn_what_the_settings_mean():
    fast = {"training": {"epochs": 2, "polish_steps": 0}, "graph": {"mode": "none"}}
    df = frame(n_regions=3, n_weeks=70)
    daily = df.assign(date=np.tile(pd.date_range("2024-01-01", periods=70, freq="D"), 3))
    with pytest.warns(UserWarning, match=r"dates are 1 day\(s\) apart: .*baseline.short_knot_spacing 2 \(the "
                                         r"fit spans under baseline.min_season_cycles 1.1 years\): a trend knot "
                                         r"every 2 day\(s\); carryover.max_lag 26: 26 day\(s\).*the weekly "
                                         r"defaults are baseline.knot_spacing 56, baseline.short_knot_spacing 14 "
                                         r"and carryover.max_lag 182 in these steps"):
        DeepCausalMMM(config=fast).fit(daily, "kpi", regions="region", dates="date", controls="price")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        DeepCausalMMM(config=fast).fit(df, "kpi", regions="region", dates="date", controls="price")
        chosen = {**fast, "baseline": {"knot_spacing": 56}, "carryover": {"max_lag": 60}}
        DeepCausalMMM(config=chosen).fit(daily, "kpi", regions="region", dates="date", controls="price")
    assert not [w for w in caught if "apart" in str(w.message)]  # weekly, or settings chosen: none


def test_written_dates_day_or_month_first():
    """pandas settles a text date's form from its first value ('02/01/2024' as February 1st) and
    then fails on '16/01/2024'; the form that reads every value is taken instead."""
    df = frame(n_weeks=10)
    expected = panel_of(df)
    for form in ("%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y", "%Y/%m/%d", "%d/%m/%y", "%m/%d/%y", "%Y-%m-%d"):
        written = df.assign(date=df["date"].dt.strftime(form))
        p = panel_of(written)
        assert p.dates.equals(expected.dates), form
        np.testing.assert_array_equal(p.y, expected.y)
    # ISO weeks, as their Mondays (frame()'s dates are Mondays)
    iso = df["date"].dt.isocalendar()
    for form in ("{y}-W{w:02d}", "{y}W{w:02d}", "{y}-W{w:02d}-1"):
        weeks = [form.format(y=y, w=w) for y, w in zip(iso["year"], iso["week"], strict=True)]
        assert panel_of(df.assign(date=weeks)).dates.equals(expected.dates), form
    with pytest.raises(DataError, match=r"`dates` could not be read as dates .* ISO weeks \(2024-W05\), dates "
                                        r"written in one of the forms \['31/12/2024', '12/31/2024'"):
        panel_of(df.assign(date=["someday"] * len(df)))


def test_regions_on_different_weekdays_are_an_error():
    df = frame(n_regions=3, n_weeks=10)
    shifted = df.assign(date=df["date"] - pd.to_timedelta(np.where(df["region"] == "r1", 1, 0), unit="D"))
    with pytest.raises(DataError, match=r"`dates` are at least 7 days apart within each region, but the regions' "
                                        r"dates are offset from each other \(most regions' dates fall on Mondays, "
                                        r"\['r1'\] on Sundays\), so the regions' shared grid would step by 1 day"
                                        r"\(s\), most of its cells empty. Put every region's dates on the same days: "
                                        r"shift 'r1' by \+1 day\(s\)"):
        panel_of(shifted)
    # the shift the message gives puts them back on one grid
    fixed = shifted.assign(date=shifted["date"] + pd.to_timedelta(np.where(df["region"] == "r1", 1, 0), unit="D"))
    assert panel_of(fixed).dates.equals(panel_of(df).dates)
    # two regions three days late and early: each its nearest move
    moved = df.assign(date=df["date"] + pd.to_timedelta(df["region"].map({"r0": 0, "r1": 3, "r2": -3}), unit="D"))
    with pytest.raises(DataError, match=r"shift 'r1' by -3 day\(s\), 'r2' by \+3 day\(s\)"):
        panel_of(moved)
    # a region with a missing week, or biweekly data everywhere, is not offset
    assert panel_of(df.drop(index=3)).shape == (3, 10, 2)
    assert panel_of(df[df["date"].isin(df["date"].unique()[::2])]).shape == (3, 5, 2)
