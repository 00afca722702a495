"""Hand-worked tables for each filter operator and for property breakdowns.

One small frame, every expected number worked out by hand below. Events (2021-01-01, UTC):

    #  time   visitor name      path         hostname       source  props
    1  10:00  v1      pageview  /pricing     a.example.com  Google  plan=pro
    2  10:01  v1      Signup    /pricing     a.example.com  Google  plan=pro
    3  10:00  v2      pageview  /Blog/Post   b.example.com  Direct  -
    4  10:02  v2      pageview  /blog/other  b.example.com  Direct  plan=free
    5  10:00  v3      pageview  /            a.example.com  Direct  plan=pro
    6  11:00  v4      pageview  /pricing     c.test         Direct  -
    7  12:00  v5      pageview  /pricing     c.test         Direct  -
    8  12:05  v5      pageview  /            c.test         Direct  -

Visits (one per visitor):   duration  bounce  entry
    v1 (events 1, 2)           60 s    no      /pricing
    v2 (3, 4)                 120 s    no      /Blog/Post
    v3 (5)                      0 s    yes     /
    v4 (6)                      0 s    yes     /pricing
    v5 (7, 8)                 300 s    no      /pricing

An event filter keeps the matching events and measures the visits that contain one, whole.
With a page (path) filter, bounce rate counts only the visits that entered on a matching page.
"""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.stats import metrics
from pipeline.stats.metrics import Filter
from tests.stats.conftest import ev, frame, row

A, B, C = "a.example.com", "b.example.com", "c.test"
GOOGLE = {"referrer_source": "Google"}
PRO, FREE = {"plan": "pro"}, {"plan": "free"}


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return frame(
        [
            ev("2021-01-01 10:00:00", "v1", "pageview", "/pricing", host=A, props=PRO, **GOOGLE),
            ev("2021-01-01 10:01:00", "v1", "Signup", "/pricing", host=A, props=PRO, **GOOGLE),
            ev("2021-01-01 10:00:00", "v2", "pageview", "/Blog/Post", host=B),
            ev("2021-01-01 10:02:00", "v2", "pageview", "/blog/other", host=B, props=FREE),
            ev("2021-01-01 10:00:00", "v3", "pageview", "/", host=A, props=PRO),
            ev("2021-01-01 11:00:00", "v4", "pageview", "/pricing", host=C),
            ev("2021-01-01 12:00:00", "v5", "pageview", "/pricing", host=C),
            ev("2021-01-01 12:05:00", "v5", "pageview", "/", host=C),
        ]
    )


# (filters, visitors, visits, pageviews, bounce rate, visit duration s) — worked by hand:
TABLE = [
    # is /pricing: events 1, 2, 6, 7; visits v1, v4, v5 (all entered there): 1 bounce of 3;
    # (60 + 0 + 300) / 3 = 120 s.
    ([Filter("path", "is", ("/pricing",))], 3, 3, 3, 1 / 3, 120),
    # is not /pricing: events 3, 4, 5, 8; visits v2, v3, v5; entered on a non-/pricing page:
    # v2 (no bounce), v3 (bounce) → 1/2; (120 + 0 + 300) / 3 = 140 s.
    ([Filter("path", "is_not", ("/pricing",))], 3, 3, 4, 1 / 2, 140),
    # contains "BLOG" (any case): events 3, 4 → v2: 2 pageviews, entered on /Blog/Post, 120 s.
    ([Filter("path", "contains", ("BLOG",))], 1, 1, 2, 0.0, 120),
    # "is" is exact: /blog/post is not /Blog/Post → nothing.
    ([Filter("path", "is", ("/blog/post",))], 0, 0, 0, 0.0, 0),
    # several values OR: / or /Blog/Post → events 3, 5, 8; visits v2, v3, v5; entries v2
    # (no bounce) and v3 (bounce) — v5 entered on /pricing → 1/2; (120 + 0 + 300)/3 = 140 s.
    ([Filter("path", "is", ("/", "/Blog/Post"))], 3, 3, 3, 1 / 2, 140),
    # is /: visits v3 and v5 contain it, only v3 entered there (a bounce) → 100 %;
    # (0 + 300) / 2 = 150 s.
    ([Filter("path", "is", ("/",))], 2, 2, 2, 1.0, 150),
    # hostname is a.example.com: events 1, 2, 5 → v1, v3: 1 bounce of 2; (60 + 0) / 2 = 30 s.
    ([Filter("hostname", "is", (A,))], 2, 2, 2, 1 / 2, 30),
    # hostname contains "EXAMPLE.com": events 1-5 → v1, v2, v3; 1 bounce of 3; 180/3 = 60 s.
    ([Filter("hostname", "contains", ("EXAMPLE.com",))], 3, 3, 4, 1 / 3, 60),
    # hostname is not c.test: the same events 1-5.
    ([Filter("hostname", "is_not", (C,))], 3, 3, 4, 1 / 3, 60),
    # props.plan is pro: events 1, 2, 5 → v1, v3 (as hostname a.example.com).
    ([Filter("props.plan", "is", ("pro",))], 2, 2, 2, 1 / 2, 30),
    # props.plan is not pro (no plan counts as "not pro"): events 3, 4, 6, 7, 8 → v2, v4, v5:
    # 5 pageviews, 1 bounce (v4) of 3; (120 + 0 + 300) / 3 = 140 s.
    ([Filter("props.plan", "is_not", ("pro",))], 3, 3, 5, 1 / 3, 140),
    # props.plan contains "FR": event 4 → v2 (2 pageviews: not a bounce), 120 s.
    ([Filter("props.plan", "contains", ("FR",))], 1, 1, 1, 0.0, 120),
    # props.plan is pro or free: events 1, 2, 4, 5 → v1, v2, v3: 1 bounce of 3; 180/3 = 60 s.
    ([Filter("props.plan", "is", ("pro", "free"))], 3, 3, 3, 1 / 3, 60),
    # name is Signup: event 2 → v1, no pageview among the matching events, not a bounce, 60 s.
    ([Filter("name", "is", ("Signup",))], 1, 1, 0, 0.0, 60),
    # a visit filter keeps whole visits: source is not Google → v2, v3, v4, v5 (events 3-8):
    # 6 pageviews, 2 bounces of 4; (120 + 0 + 0 + 300) / 4 = 105 s.
    ([Filter("referrer_source", "is_not", ("Google",))], 4, 4, 6, 1 / 2, 105),
    # filters AND: path contains "pricing" and plan is pro → events 1, 2 → v1, 60 s.
    (
        [Filter("path", "contains", ("pricing",)), Filter("props.plan", "is", ("pro",))],
        1,
        1,
        1,
        0.0,
        60,
    ),
    # source Google and path not /pricing: v1 is the only Google visit and has no other page.
    (
        [Filter("referrer_source", "is", ("Google",)), Filter("path", "is_not", ("/pricing",))],
        0,
        0,
        0,
        0.0,
        0,
    ),
]


@pytest.mark.parametrize(
    ("filters", "visitors", "visits", "pageviews", "bounce_rate", "duration"),
    TABLE,
    ids=[
        " & ".join(f"{f.dimension} {f.operator} {'|'.join(f.values)}" for f in t[0]) for t in TABLE
    ],
)
def test_filter_table(events, filters, visitors, visits, pageviews, bounce_rate, duration):
    got = metrics.summary(metrics.select(events, filters))
    assert (got.visitors, got.visits, got.pageviews) == (visitors, visits, pageviews)
    assert got.bounce_rate == pytest.approx(bounce_rate)
    assert got.visit_duration == pytest.approx(duration)


def test_a_legacy_equality_dict_is_the_is_operator(events):
    legacy = metrics.summary(metrics.select(events, {"path": "/pricing"}))
    assert legacy == metrics.summary(metrics.select(events, [Filter("path", "is", ("/pricing",))]))
    assert metrics.as_filters({"path": "/pricing"}) == (Filter("path", "is", ("/pricing",)),)


@pytest.mark.parametrize(
    ("dimension", "operator", "values"),
    [("path", "like", ("/x",)), ("no_such_column", "is", ("x",)), ("props.", "is", ("x",))],
)
def test_filter_from_refuses_an_unknown_operator_or_dimension(dimension, operator, values):
    with pytest.raises(ValueError):
        metrics.filter_from(dimension, operator, values)


def test_filter_from_builds_the_filter():
    assert metrics.filter_from("props.plan", "contains", ["pro", "free"]) == Filter(
        "props.plan", "contains", ("pro", "free")
    )


# --- Property breakdowns ------------------------------------------------------------------


def test_property_breakdown_over_all_events(events):
    # props.plan over all events: (none) events 3, 6, 7, 8 (v2, v4, v5): 3 visitors, 4 events;
    # pro events 1, 2, 5 (v1, v3): 2 visitors, 3 events; free event 4 (v2): 1 visitor, 1 event.
    report = metrics.breakdown(events, "props.plan")
    assert list(report["value"].astype(str)) == ["(none)", "pro", "free"]
    assert list(report["visitors"]) == [3, 2, 1]
    assert list(report["events"]) == [4, 3, 1]


def test_property_breakdown_of_a_filtered_selection(events):
    # Filtered to hostname a.example.com (events 1, 2, 5): pro only, 2 visitors, 3 events.
    selection = metrics.select(events, [Filter("hostname", "is", (A,))])
    report = metrics.breakdown(selection, "props.plan")
    assert list(report["value"].astype(str)) == ["pro"]
    assert (row(report, "pro")["visitors"], row(report, "pro")["events"]) == (2, 3)
    # Filtered to /pricing (events 1, 2, 6, 7): (none) v4, v5 with 2 events; pro v1 with 2.
    selection = metrics.select(events, [Filter("path", "is", ("/pricing",))])
    report = metrics.breakdown(selection, "props.plan")
    assert list(report["value"].astype(str)) == ["(none)", "pro"]
    assert list(report["visitors"]) == [2, 1] and list(report["events"]) == [2, 2]


def test_property_keys_most_used_first(events):
    # "plan" is on events 1, 2, 4, 5; no other key.
    assert metrics.property_keys(events) == ["plan"]
    extra = frame([ev(props={"a": "1", "b": "2"}), ev(props={"b": "3"})])
    assert metrics.property_keys(extra) == ["b", "a"]


def test_engagement_for_a_page_never_viewed_in_its_visit_counts_for_no_page():
    from tests.stats.conftest import engagement, ev, frame

    events = frame(
        [
            ev("2021-01-01 10:00:00", "U", path="/a"),
            engagement("2021-01-01 10:01:00", "U", "/a", ms=30_000, scroll=80),
            # /b was never viewed in U's visit: the engagement counts for nothing.
            engagement("2021-01-01 10:02:00", "U", "/b", ms=600_000, scroll=10),
            # V has no visit at all: only an engagement.
            engagement("2021-01-01 12:00:00", "V", "/a", ms=5_000, scroll=5),
        ]
    )
    assert metrics.orphan_engagement(events) == 2
    pages = metrics.breakdown(events, "path")
    assert list(pages["value"]) == ["/a"]
    assert (pages.loc[0, "time_on_page"], pages.loc[0, "scroll_depth"]) == (30.0, 80.0)
    assert metrics.orphan_engagement(events[events["name"] != "engagement"]) == 0
