"""Every dashboard page under Streamlit's AppTest, on the embedded default with demo data."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.context import today
from dashboard.data import backend
from dashboard.format import country_label, md_escape
from dashboard.view import View, comparison_dates, period_dates, utc_bounds
from pipeline import load_events
from pipeline.local.demo import DEMO_SITE
from pipeline.stats import metrics
from pipeline.stats.metrics import Filter
from tests.support import fresh_embedded_demo

APP = str(Path(__file__).resolve().parents[1] / "dashboard_entry.py")
PAGES_DIR = Path(__file__).resolve().parents[2] / "pages"
PAGES = [
    "overview",
    "top_pages",
    "sources",
    "geography",
    "devices",
    "goals",
    "realtime",
    "explorer",
    "health",
]


def run(**params: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=180)
    for key, value in params.items():
        app.query_params[key] = value
    return app.run()


@pytest.fixture(scope="module")
def app() -> AppTest:
    fresh_embedded_demo()
    return run()


def expected_cards(view: View) -> dict[str, str]:
    first, last = period_dates(view, today(view))
    events = load_events(view.site, *utc_bounds(first, last, view.tz), settings=backend().settings)
    s = metrics.summary(metrics.select(events, view.filters))
    return {
        "Unique visitors": f"{s.visitors:,}",
        "Total visits": f"{s.visits:,}",
        "Total pageviews": f"{s.pageviews:,}",
        "Views per visit": f"{s.views_per_visit:.2f}",
        "Bounce rate": f"{s.bounce_rate * 100:.1f}%",
    }


def cards(app: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in app.metric if metric.label != "Visit duration"}


def test_embedded_default_is_labelled_demo_data(app):
    assert not app.exception
    assert any("Demo data" in info.value for info in app.info)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_exception_or_error(app, page):
    app.switch_page(str(PAGES_DIR / f"{page}.py")).run()
    assert not app.exception, app.exception
    assert not app.error, [error.value for error in app.error]
    assert app.title


def test_overview_numbers_equal_pipeline_metrics(app):
    app.switch_page(str(PAGES_DIR / "overview.py")).run()
    assert cards(app) == expected_cards(View(site=DEMO_SITE))
    assert int(cards(app)["Total pageviews"].replace(",", "")) > 1000


def test_a_filter_in_the_url_changes_the_numbers_and_shows_a_removable_chip():
    unfiltered = cards(run())
    filtered_app = run(**{"f.country": "DE"})
    assert cards(filtered_app) == expected_cards(View(site=DEMO_SITE, filters=(("country", "DE"),)))
    assert cards(filtered_app) != unfiltered
    chip = filtered_app.button(key="chip-is-country")
    assert chip.label == f"✕ Country is {md_escape(country_label('DE'))}"  # 🇩🇪 Germany
    chip.click().run()
    assert cards(filtered_app) == unfiltered
    assert "f.country" not in filtered_app.query_params


def test_adding_a_filter_from_the_sidebar(app):
    fresh = run()
    fresh.session_state["filter_box"] = True  # the box reads values only while open
    fresh.run()
    fresh.sidebar.selectbox(key="filter_dimension").set_value("referrer_source").run()
    offered = fresh.sidebar.multiselect(key="filter_values").options
    assert offered[0] == "Direct / None" and "Google" in offered  # the week's, most first
    assert fresh.sidebar.button(key="filter_add").disabled  # nothing chosen yet
    fresh.sidebar.radio(key="filter_operator").set_value("is_not").run()
    fresh.sidebar.multiselect(key="filter_values").set_value(["Google", "Direct / None"]).run()
    fresh.sidebar.button(key="filter_add").click().run()
    assert not fresh.exception
    chosen = Filter("referrer_source", "is_not", ("Google", "Direct / None"))
    assert cards(fresh) == expected_cards(View(site=DEMO_SITE, filters=(chosen,)))
    assert fresh.query_params["fn.referrer_source"] == ["Google", "Direct / None"]
    assert fresh.button(key="chip-is_not-referrer_source").label == (
        f"✕ {md_escape('Source is not Google or Direct / None')}"
    )
    # "contains" takes typed text, any case.
    fresh.sidebar.selectbox(key="filter_dimension").set_value("path").run()
    fresh.sidebar.radio(key="filter_operator").set_value("contains").run()
    fresh.sidebar.text_input(key="filter_text").input("BLOG").run()
    fresh.sidebar.button(key="filter_add").click().run()
    both = View(site=DEMO_SITE, filters=(chosen, Filter("path", "contains", ("BLOG",))))
    assert cards(fresh) == expected_cards(both)
    assert fresh.query_params["fc.path"] == "BLOG"
    fresh.button(key="chip-is_not-referrer_source").click().run()
    assert "fn.referrer_source" not in fresh.query_params
    assert cards(fresh) == expected_cards(
        View(site=DEMO_SITE, filters=(Filter("path", "contains", ("BLOG",)),))
    )


def test_a_link_with_an_unknown_operator_or_property_says_what_it_ignored():
    odd = run(**{"fx.path": "/a", "f.props.nosuchkey": "1", "f.bogus": "2", "fn.path": "/"})
    assert not odd.exception and not odd.error
    said = " ".join(w.value for w in odd.warning)
    for part in ("fx.path", "unknown operator", "f.bogus", "nosuchkey"):
        assert md_escape(part) in said, part
    assert "fn.path" in odd.query_params
    assert not any(k.startswith(("fx.", "f.props", "f.bogus")) for k in odd.query_params)
    assert cards(odd) == expected_cards(
        View(site=DEMO_SITE, filters=(Filter("path", "is_not", ("/",)),))
    )


def test_a_comparison_adds_a_change_column_to_every_table():
    # Filtered, so both ranges are read raw: the rollups' own equality with raw events is
    # tests/store's; this checks the change column's wiring.
    compared = run(compare="previous", period="7d", **{"f.device": "Desktop"})
    compared.switch_page(str(PAGES_DIR / "top_pages.py")).run()
    assert not compared.exception
    for frame in compared.dataframe:
        assert "change" in frame.value.columns
    compared.switch_page(str(PAGES_DIR / "sources.py")).run()
    assert all("change" in frame.value.columns for frame in compared.dataframe)
    # The change of a row is metrics.with_change of the two ranges' breakdowns.
    view = View(site=DEMO_SITE, period="7d", compare="previous", filters=(("device", "Desktop"),))
    first, last = period_dates(view, today(view))
    settings = backend().settings
    now_events = load_events(DEMO_SITE, *utc_bounds(first, last, "UTC"), settings=settings)
    previous = comparison_dates(first, last, "previous")
    before = load_events(DEMO_SITE, *utc_bounds(*previous, "UTC"), settings=settings)
    expected = metrics.with_change(
        metrics.breakdown(metrics.select(now_events, view.filters), "referrer_source"),
        metrics.breakdown(metrics.select(before, view.filters), "referrer_source"),
    ).head(10)
    shown = compared.dataframe[0].value
    assert shown["value"].tolist() == expected["value"].tolist()
    assert [None if c is None else round(c, 6) for c in shown["change"]] == [
        None if c is None else round(c, 6) for c in expected["change"]
    ]


def test_the_url_restores_the_view():
    restored = run(period="7d", compare="previous", tz="America/New_York")
    assert not restored.exception
    assert restored.sidebar.selectbox(key="period").value == "7d"
    assert restored.sidebar.selectbox(key="compare").value == "previous"
    assert restored.sidebar.selectbox(key="tz").value == "America/New_York"
    view = View(site=DEMO_SITE, period="7d", compare="previous", tz="America/New_York")
    assert cards(restored) == expected_cards(view)
    # Deltas against the previous 7 days are shown.
    assert any(metric.delta for metric in restored.metric)


def test_changing_the_period_changes_the_numbers(app):
    fresh = run()
    before = cards(fresh)
    fresh.sidebar.selectbox(key="period").set_value("today").run()
    assert cards(fresh) == expected_cards(View(site=DEMO_SITE, period="today"))
    assert cards(fresh) != before
    assert fresh.query_params["period"] == "today"


def test_a_malformed_url_falls_back_to_defaults():
    odd = run(period="forever", tz="Mars/Olympus", compare="yesterday", **{"f.nope": "x"})
    assert not odd.exception
    assert odd.sidebar.selectbox(key="period").value == "30d"
    assert odd.sidebar.selectbox(key="tz").value == "UTC"


def test_an_unknown_site_shows_an_empty_state_not_an_error():
    empty = run(site="nobody.example")
    assert not empty.exception and not empty.error
    site = md_escape("nobody.example")  # shown through Markdown, so escaped
    assert any(f"No events for **{site}**" in info.value for info in empty.info)
    # The picker offers the registered sites, and keeps the one asked for.
    assert empty.sidebar.selectbox(key="site").options == [DEMO_SITE, "nobody.example"]


def test_pages_table_numbers_equal_the_breakdown(app):
    app.switch_page(str(PAGES_DIR / "top_pages.py")).run()
    shown = app.dataframe[0].value  # the top ten, with "Show all" below
    view = View(site=DEMO_SITE)
    first, last = period_dates(view, today(view))
    events = load_events(DEMO_SITE, *utc_bounds(first, last, "UTC"), settings=backend().settings)
    expected = metrics.breakdown(events, "path").head(10)
    assert shown["value"].tolist() == expected["value"].tolist()
    assert shown["visitors"].tolist() == expected["visitors"].tolist()
    assert shown["pageviews"].tolist() == expected["pageviews"].tolist()
    assert {"bounce_rate", "time_on_page", "scroll_depth"} <= set(shown.columns)
    assert "visits" not in shown and "change" not in shown  # no comparison: no change
    app.switch_page(str(PAGES_DIR / "top_pages.py")).run()
    exits = app.dataframe[2].value
    assert {"exits", "exit_rate"} <= set(exits.columns)


def test_refresh_reads_events_stored_since_the_page_was_cached():
    from datetime import UTC, datetime

    from pipeline.consume.consumer import Consumer
    from pipeline.ingest.contract import build_message, encode_message
    from tests.conftest import CHROME_UA

    fresh = run(period="today")
    before = int(cards(fresh)["Total pageviews"].replace(",", ""))
    body = encode_message(
        build_message(
            f"d={DEMO_SITE}&u=https%3A%2F%2F{DEMO_SITE}%2Frefresh",
            {"User-Agent": CHROME_UA},
            "198.51.100.1",
            int(datetime.now(UTC).timestamp() * 1000),
            "refresh-test",
        )
    )
    assert Consumer(backend().settings).process([{"messageId": "r", "body": body}]).stored == 1
    assert int(cards(fresh.run())["Total pageviews"].replace(",", "")) == before  # cached
    fresh.sidebar.button(key="refresh").click().run()
    assert int(cards(fresh)["Total pageviews"].replace(",", "")) == before + 1


def test_the_overview_reads_rollups_for_whole_utc_days_and_raw_events_otherwise():
    from pipeline.store.compactor import compact

    compact(backend().settings)  # what the background compaction does after the first page
    assert any("Computed from daily rollups." in caption.value for caption in run().caption)
    assert any(
        "Computed from raw events." in caption.value
        for caption in run(**{"f.country": "DE"}).caption
    )
    assert any(
        "Computed from raw events." in caption.value for caption in run(tz="Europe/Berlin").caption
    )


def test_health_page_lists_dropped_hits_by_reason_with_their_meaning(app):
    from datetime import UTC, datetime, timedelta

    from pipeline import load_drops
    from pipeline.enrich.steps import DROP_EXPLANATIONS

    app.switch_page(str(PAGES_DIR / "health.py")).run()
    now = datetime.now(UTC)
    expected = load_drops(DEMO_SITE, now - timedelta(days=30), now, settings=backend().settings)
    assert expected.get("bot", 0) > 0  # the demo's crawlers
    shown = app.dataframe[0].value
    assert dict(zip(shown["Reason"], shown["Hits"], strict=True)) == expected.to_dict()
    assert set(shown["What it means"]) == {DROP_EXPLANATIONS[r] for r in expected.index}
    # The cost estimate's event count (30 UTC days, from rollups or raw) equals the raw count.
    first = now.date() - timedelta(days=29)
    start = datetime.combine(first, datetime.min.time(), UTC)
    stored = len(load_events(DEMO_SITE, start, now, settings=backend().settings))
    assert any(f"For {stored:,} events in the last 30 days" in c.value for c in app.caption)


def test_filter_values_from_the_url_reach_the_chips_escaped():
    value = "**bold** [x](https://evil.test)"
    chip = run(**{"f.utm_source": value}).button(key="chip-is-utm_source")
    assert chip.label == f"✕ {md_escape('UTM source is ' + value)}"


def test_goals_take_wildcard_page_goals_and_never_list_engagement(app):
    app.switch_page(str(PAGES_DIR / "goals.py")).run()
    assert not app.exception
    app.text_input(key="goals_pages").input("/blog/**, /docs/*").run()
    assert not app.exception
    shown = app.dataframe[0].value
    view = View(site=DEMO_SITE)
    first, last = period_dates(view, today(view))
    events = load_events(DEMO_SITE, *utc_bounds(first, last, "UTC"), settings=backend().settings)
    assert (events["name"] == metrics.ENGAGEMENT).any(), "the demo sends engagement events"
    assert metrics.ENGAGEMENT not in shown["value"].tolist()
    names = sorted(set(events["name"]) - {metrics.PAGEVIEW, metrics.ENGAGEMENT})
    expected = metrics.goal_conversions(metrics.select(events), [*names, "/blog/**", "/docs/*"])
    assert shown["value"].tolist() == expected["goal"].tolist()
    assert shown["visitors"].tolist() == expected["visitors"].tolist()
    assert expected.set_index("goal").loc["/blog/**", "visitors"] > 0
    # The property breakdown reads every event, "(none)" for those without the key.
    keys = metrics.property_keys(events)
    assert keys, "the demo's events carry properties"
    table = app.dataframe[1].value
    full = metrics.breakdown(metrics.select(events), f"props.{keys[0]}")
    assert table["value"].tolist() == full["value"].head(10).tolist()
    assert metrics.NONE_VALUE in full["value"].tolist()  # pageviews without the key count too
