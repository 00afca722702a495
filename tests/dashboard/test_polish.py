"""The dashboard's polish rules, as units and under AppTest: each measure written one way
(dashboard.format), countries with flags, the bucket still filling drawn as partial and
nothing after now, the offline map, the live feed's human columns, "—" for a change without
a baseline, and the viewer toolbar and file-watcher settings."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import charts
from dashboard import format as fmt
from tests.support import fresh_embedded_demo

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "tests" / "dashboard_entry.py")
PAGES_DIR = ROOT / "pages"


# --- one way to write each measure ---
@pytest.mark.parametrize(
    ("formatter", "value", "shown"),
    [
        pytest.param(fmt.number, 1234, "1,234", id="count"),
        pytest.param(fmt.number, 1234.4, "1,234", id="count-float"),
        pytest.param(fmt.number, 0, "0", id="count-zero"),
        pytest.param(fmt.percent, 0.389, "38.9%", id="rate"),
        pytest.param(fmt.percent, 0.43, "43.0%", id="rate-whole"),
        pytest.param(fmt.percent, 0.4007, "40.1%", id="rate-rounded"),
        pytest.param(fmt.duration, 45, "45s", id="seconds"),
        pytest.param(fmt.duration, 91.4, "1m 31s", id="minutes"),
        pytest.param(fmt.duration, 3725, "1h 02m", id="hours"),
        pytest.param(fmt.duration, 0, "0s", id="no-time"),
        pytest.param(fmt.ratio, 2.3149, "2.31", id="views-per-visit"),
        pytest.param(fmt.change, 12.4, "+12%", id="rise"),
        pytest.param(fmt.change, -3.0, "-3%", id="fall"),
        pytest.param(fmt.change, None, "—", id="no-baseline"),
        pytest.param(fmt.change, float("nan"), "—", id="nan-baseline"),
        pytest.param(fmt.percent, None, "—", id="missing-rate"),
        pytest.param(fmt.dollars, 1204.5, "$1,204.50", id="dollars"),
    ],
)
def test_each_kind_of_measure_reads_one_way(formatter, value, shown):
    assert formatter(value) == shown


def test_every_measure_column_has_its_formatter():
    assert [
        fmt.measure(name, value)
        for name, value in [
            ("visitors", 1234),
            ("bounce_rate", 0.389),
            ("visit_duration", 91),
            ("views_per_visit", 2.314),
            ("conversion_rate", 0.025),
        ]
    ] == ["1,234", "38.9%", "1m 31s", "2.31", "2.5%"]


def test_a_styled_table_shows_the_formats_and_keeps_the_numbers():
    table = pd.DataFrame(
        {"value": ["/a", "/b"], "visitors": [1234, 5], "bounce_rate": [0.389, 1.0], "visit_duration": [91.0, 3725.0]}
    )  # fmt: skip
    styled = fmt.styled(table)
    shown = styled.to_string()
    for text in ["1,234", "38.9%", "100.0%", "1m 31s", "1h 02m", "/a"]:
        assert text in shown
    assert "0.389" not in shown and "91.0" not in shown
    pd.testing.assert_frame_equal(styled.data, table)  # sorting and row selection see numbers
    assert fmt.measure_column("visit_duration", "Visit duration")["label"] == "Visit duration"


# --- countries ---
@pytest.mark.parametrize(
    ("code", "label"),
    [
        ("DE", "🇩🇪 Germany"),
        ("US", "🇺🇸 United States"),
        ("KR", "🇰🇷 South Korea"),
        ("", "Unknown"),
        ("XX", "XX"),  # not a country: no flag that could be wrong
    ],
)
def test_countries_read_as_flag_and_name(code, label):
    assert fmt.country_label(code) == label


def test_the_flag_is_the_codes_regional_indicator_letters():
    flag = fmt.country_label("JP").split(" ")[0]
    assert [ord(c) - 0x1F1E6 for c in flag] == [ord("J") - ord("A"), ord("P") - ord("A")]


# --- the time chart ---
def hours(first: str, count: int, tz: str = "UTC") -> pd.DataFrame:
    buckets = pd.date_range(first, periods=count, freq="h", tz=tz)
    return pd.DataFrame(
        {"bucket": buckets, "visitors": range(10, 10 + count), "visits": 1, "pageviews": 1}
    )


def utc(x: object) -> pd.Timestamp:
    """A plotly x value (plotly keeps the wall time and drops the zone) as a UTC timestamp."""
    return pd.Timestamp(x).tz_localize("UTC")


def traces(figure: go.Figure) -> dict[str, go.Scatter]:
    return {trace.name: trace for trace in figure.data}


def test_no_bucket_after_now_and_the_current_one_is_partial():
    series = hours("2026-11-27 00:00", 24)  # today's hours, 14:20 now: 9 of them in the future
    now = pd.Timestamp("2026-11-27 14:20", tz="UTC")
    figure = charts.time_chart(series, "visitors", now=now)
    drawn = traces(figure)
    assert set(drawn) == {"Visitors", "Visitors (so far)"}
    full, partial = drawn["Visitors"], drawn["Visitors (so far)"]
    assert utc(full.x[-1]) == pd.Timestamp("2026-11-27 13:00", tz="UTC")
    assert [utc(x) for x in partial.x] == [
        pd.Timestamp("2026-11-27 13:00", tz="UTC"),
        pd.Timestamp("2026-11-27 14:00", tz="UTC"),
    ]  # a dotted segment from the last full hour to the one still filling
    assert partial.line.dash == "dot" and partial.marker.symbol[-1] == "circle-open"
    assert "partial" in partial.hovertemplate
    every_x = [utc(x) for trace in figure.data for x in trace.x]
    assert max(every_x) <= now
    assert figure.layout.yaxis.title.text == "Visitors"


def test_the_pipelines_partial_column_wins():
    series = hours("2026-11-20 00:00", 3).assign(partial=[False, True, False])
    table = charts.settled(series)
    assert table["partial"].tolist() == [False, True, False]
    full_week = hours("2026-11-20 00:00", 3)
    # Without a partial column and a now after the last bucket, nothing is partial.
    assert not charts.settled(full_week, pd.Timestamp("2026-11-21", tz="UTC"))["partial"].any()


def test_the_current_month_is_partial_whatever_its_length():
    months = pd.DataFrame(
        {
            "bucket": pd.date_range("2026-08-01", periods=3, freq="MS", tz="Europe/Berlin"),
            "visitors": [5, 6, 7],
        }
    )  # Aug, Sep, Oct: the shortest gap is 30 days, October has 31
    assert charts.settled(months, pd.Timestamp("2026-10-31 12:00", tz="UTC"))[
        "partial"
    ].tolist() == [False, False, True]
    assert not charts.settled(months, pd.Timestamp("2026-11-01 00:30", tz="Europe/Berlin"))[
        "partial"
    ].any()


def test_a_bucket_still_filling_is_never_marked_unusual():
    series = hours("2026-11-27 00:00", 3)
    flagged = pd.DataFrame(
        {"value": [10.0, 11, 2], "baseline": [10.0, 10, 10], "ratio": 1.0, "anomaly": [False, False, True]},
        index=series["bucket"],
    )  # fmt: skip
    figure = charts.time_chart(
        series, "visitors", flagged=flagged, now=pd.Timestamp("2026-11-27 02:30", tz="UTC")
    )
    assert "Unusual" not in traces(figure)


# --- the map ---
def test_one_map_countries_and_cities_with_human_hover():
    countries = pd.DataFrame({"value": ["DE", "FR", "XX"], "visitors": [120, 30, 4]})
    cities = pd.DataFrame(
        {
            "city": ["Berlin", "Paris"],
            "lat": [52.5, 48.9],
            "lon": [13.4, 2.35],
            "visitors": [100, 30],
        }
    )
    figure = charts.world_map(countries, cities)
    kinds = [trace.type for trace in figure.data]
    assert kinds == ["choropleth", "scattergeo"]
    choropleth = figure.data[0]
    assert list(choropleth.locations) == ["DEU", "FRA"]
    assert choropleth.customdata[0][0] == "🇩🇪 Germany"
    assert figure.layout.geo.showcountries is True
    assert list(figure.data[1].customdata[0]) == ["Berlin", "100"]


# --- the live feed ---
def test_the_live_feed_has_human_columns_and_local_times():
    events = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2026-11-27 10:00:05", "2026-11-27 10:02:30"], utc=True),
            "name": ["pageview", "Signup"],
            "path": ["/", "/pricing"],
            "referrer_source": ["", "Google"],
            "country": ["DE", ""],
            "device": ["Desktop", "Mobile"],
            "visitor": ["a", "b"],
        }
    )
    feed = fmt.live_feed(events, "Asia/Tokyo")
    assert feed.to_dict("records") == [
        {"Time": "19:02:30", "Event": "Signup", "Page": "/pricing", "Source": "Google", "Country": "Unknown", "Device": "Mobile"},
        {"Time": "19:00:05", "Event": "Pageview", "Page": "/", "Source": "Direct / None", "Country": "🇩🇪 Germany", "Device": "Desktop"},
    ]  # fmt: skip


# --- the server's settings ---
def test_the_config_hides_deploy_and_keeps_the_watcher_off_the_venv():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["toolbarMode"] == "viewer"
    server = config["server"]
    # Watchdog would watch the project folder recursively, .venv included: poll the sources.
    assert server["fileWatcherType"] == "poll"
    assert {".venv", ".local-data", "node_modules", "test-artifacts"} <= set(
        server["folderWatchBlacklist"]
    )


# --- the pages, under AppTest on the demo ---
@pytest.fixture(scope="module", autouse=True)
def own_demo() -> None:
    fresh_embedded_demo()


def run(page: str, **params: str) -> AppTest:
    """`page` of a fresh app whose URL carries `params` (the view is read from the URL once)."""
    app = AppTest.from_file(APP, default_timeout=180)
    for key, value in params.items():
        app.query_params[key] = value
    app.run()
    if page != "overview":
        app.switch_page(str(PAGES_DIR / f"{page}.py")).run()
    assert not app.exception, app.exception
    return app


def test_a_change_without_a_baseline_reads_as_a_dash():
    # The demo has four weeks of data: the 30 days before "last 30 days" hold none.
    cards = {m.label: m for m in run("overview", period="30d", compare="previous").metric}
    assert set(cards) >= {"Unique visitors", "Bounce rate", "Visit duration"}
    assert {card.delta for card in cards.values()} == {"—"}
    assert {card.proto.direction for card in cards.values()} == {
        cards["Bounce rate"].proto.direction
    }
    assert cards["Visit duration"].value.endswith("s") and "%" in cards["Bounce rate"].value
    assert cards["Bounce rate"].value == fmt.percent(float(cards["Bounce rate"].value[:-1]) / 100)


def test_the_chart_selector_has_human_labels():
    app = run("overview", period="7d")
    radio = app.radio(key="overview_metric")
    assert radio.options == ["Visitors", "Visits", "Pageviews"]
    assert all(m.delta == "" for m in app.metric)  # no comparison asked: no delta at all


def test_the_real_time_feed_shows_human_columns():
    app = run("realtime")
    frames = [frame.value for frame in app.dataframe]
    feeds = [frame for frame in frames if "Event" in frame.columns]
    if not feeds:
        pytest.skip("the demo has no event in the last 30 minutes")
    assert list(feeds[0].columns) == fmt.LIVE_FEED_COLUMNS
