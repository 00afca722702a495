"""Anomaly detection on a robust seasonal baseline, and insights in plain words."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.stats import anomalies
from pipeline.store.query import events_frame


def weekly(values_per_week: list[list[int]]) -> pd.Series:
    values = [v for week in values_per_week for v in week]
    return pd.Series(
        values,
        index=pd.date_range("2026-10-05", periods=len(values), freq="D", tz="UTC"),
        dtype=float,
    )


def test_a_spike_is_flagged_and_the_weekly_rhythm_is_not():
    quiet = [100, 110, 105, 100, 95, 40, 35]  # weekdays busy, weekends quiet
    series = weekly([quiet, quiet, quiet, [100, 110, 600, 100, 95, 40, 35]])
    flagged = anomalies.flag(series, 7)
    assert flagged.index[flagged["anomaly"]].strftime("%Y-%m-%d").tolist() == ["2026-10-28"]
    assert (
        flagged.loc["2026-10-28", "baseline"].item() == 105
        and flagged.loc["2026-10-28", "ratio"].item() == 600 / 105
    )


def test_a_drop_is_flagged_too():
    steady = [200] * 7
    flagged = anomalies.flag(weekly([steady, steady, [200, 200, 20, 200, 200, 200, 200]]), 7)
    assert flagged["anomaly"].sum() == 1 and flagged["ratio"][flagged["anomaly"]].item() == 0.1


def test_without_enough_history_nothing_is_flagged():
    assert not anomalies.flag(weekly([[10] * 7, [500] * 7]), 7)[
        "anomaly"
    ].any()  # one earlier week only


def test_small_changes_are_noise():
    rng = np.random.default_rng(1)
    series = pd.Series(
        rng.poisson(50, 56).astype(float),
        index=pd.date_range("2026-10-05", periods=56, freq="D", tz="UTC"),
    )
    assert anomalies.flag(series, 7)["anomaly"].sum() == 0


def _visits(day: str, source: str, count: int) -> list[dict]:
    ts = int(pd.Timestamp(f"{day}T12:00:00Z").timestamp() * 1000)
    return [
        {
            "ts": ts + i,
            "visitor": f"{source}-{day}-{i}",
            "name": "pageview",
            "path": "/",
            "site": "s",
            "referrer_source": source,
            "country": "DE",
        }
        for i in range(count)
    ]


def test_insights_name_the_source_and_the_weekday():
    records = []
    for day in pd.date_range("2026-10-05", "2026-10-28", freq="D").strftime("%Y-%m-%d"):
        records += _visits(day, "Google", 30)
        records += _visits(day, "Hacker News", 240 if day == "2026-10-28" else 10)
    found = anomalies.insights(events_frame(records))
    assert (
        found[0]
        == "Visitors from Hacker News: 24.0× the usual Wednesday on Wed 28 Oct (240 visitors, usually 10)"
    )
    assert not any("Google" in line for line in found)


def _days(values: list[float], first: str = "2026-10-01") -> pd.Series:
    return pd.Series(
        values, index=pd.date_range(first, periods=len(values), freq="D", tz="UTC"), dtype=float
    )


def test_the_zeros_before_a_sites_first_visit_are_no_history():
    # A 30-day view of a site that started on day 10: the nine zero days before are not "a
    # usual level of nothing", so its first day (and any of its first two weeks) is never unusual.
    week = [100, 110, 105, 100, 95, 40, 35]
    flagged = anomalies.flag(_days([0] * 9 + week * 3), anomalies.PERIODS["day"])
    assert not flagged["anomaly"].any()
    first_day = flagged.loc["2026-10-10"]
    assert first_day["value"].item() == 100 and pd.isna(first_day["baseline"].item())


def test_the_first_two_weeks_of_data_are_never_flagged_and_the_third_can_be():
    week = [100, 110, 105, 100, 95, 40, 35]
    spike = [100, 110, 900, 100, 95, 40, 35]
    early = anomalies.flag(_days([0] * 5 + week + spike), 7)
    assert not early["anomaly"].any()  # a spike in week two: only one earlier week of data
    later = anomalies.flag(_days([0] * 5 + week + week + spike), 7)
    assert later.index[later["anomaly"]].strftime("%Y-%m-%d").tolist() == ["2026-10-22"]


def test_insights_say_nothing_about_a_site_that_just_started():
    daily = _days([0] * 20 + [40, 45, 38, 50, 42, 20, 18, 44, 41])
    assert anomalies.insights_from(daily, {"Visitors from Google": daily * 0.5}) == []


def test_a_day_still_counting_is_news_when_it_rises_and_silent_when_it_is_low():
    week = [100, 110, 105, 100, 95, 40, 35]
    history = week * 3
    today = _days([*history, 100]).index[-1].date()
    # Three hours into a Monday: 12 visitors, usually 100. Low by construction, not news.
    morning = _days([*history, 12])
    assert anomalies.flag(morning, 7)["anomaly"].iloc[-1]  # the rule alone would flag it
    assert anomalies.insights_from(morning, {}, counting=today) == []
    # Already 900 by mid-morning: a spike happening now is exactly what to say.
    surge = _days([*history, 900])
    found = anomalies.insights_from(surge, {}, counting=today)
    assert len(found) == 1 and "900 visitors" in found[0]
    # A closed day's drop is still a finding.
    assert anomalies.insights_from(morning, {}) != []


def test_a_new_source_on_a_site_with_history_is_news():
    # The site has three weeks of data; Hacker News brought nobody until today's 60 visitors.
    total = _days([100, 110, 105, 100, 95, 40, 35] * 3 + [160])
    news = _days([0] * 21 + [60])
    found = anomalies.insights_from(total, {"Visitors from Hacker News": news})
    assert any(line.startswith("Visitors from Hacker News: 60 visitors") for line in found)
    # The same source on a site that started with it today has no history: nothing to say.
    assert anomalies.insights_from(_days([60]), {"Visitors from Hacker News": _days([60])}) == []
