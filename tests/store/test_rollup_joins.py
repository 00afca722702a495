"""Rollups across a day's start: visits that go on across the UTC salt change (through
`prev_visitor`), long ones whose start lies hours back, and the Pages measures of issue 14.

Pure: frames in, records out. `read` stands for the table read the compactor makes.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from pipeline.stats import metrics
from pipeline.store import rollups
from pipeline.store.query import events_frame
from pipeline.store.storage import day_bounds


def stamp(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def record(moment: datetime, visitor: str, path: str = "/", **extra) -> dict:
    return {
        "ts": stamp(moment),
        "site": "e.com",
        "name": extra.pop("name", "pageview"),
        "path": path,
        "hostname": "e.com",
        "visitor": visitor,
        "referrer_source": extra.pop("source", "Direct / None"),
        **extra,
    }


def day_records(frame: pd.DataFrame, days: list[date], tz: str = "UTC") -> list[dict]:
    """What the compactor stores for `days`, reading `frame` as the table."""

    def read(lo: datetime, hi: datetime) -> pd.DataFrame:
        inside = (frame["ts"] >= pd.Timestamp(lo)) & (frame["ts"] < pd.Timestamp(hi))
        return frame[inside].reset_index(drop=True)

    found = []
    for day in days:
        events = read(*day_bounds(day, tz))
        before = rollups.read_before(read, events, day, tz)
        found.append(rollups.compute(events, "e.com", day, tz, before))
    return found


MIDNIGHT = datetime(2026, 11, 21, tzinfo=UTC)


def test_a_visit_across_the_salt_change_is_one_visit_in_the_rollups_as_in_raw():
    # A reads from 23:50 to 00:10: after midnight its hash is A2, which carries A as
    # prev_visitor. B bounces at 23:55 and comes back at 00:40 (45 min: a new visit).
    frame = events_frame(
        [
            record(MIDNIGHT - timedelta(minutes=10), "A", "/blog"),
            record(MIDNIGHT - timedelta(minutes=2), "A", "/blog/post"),
            record(MIDNIGHT + timedelta(minutes=10), "A2", "/pricing", prev_visitor="A"),
            record(MIDNIGHT - timedelta(minutes=5), "B", "/"),
            record(MIDNIGHT + timedelta(minutes=40), "B2", "/", prev_visitor=""),
        ]
    )
    raw = metrics.summary(frame)
    assert (raw.visitors, raw.visits, raw.pageviews) == (4, 3, 5)
    assert raw.bounce_rate == pytest.approx(2 / 3) and raw.visit_duration == pytest.approx(400)
    days = day_records(frame, [date(2026, 11, 20), date(2026, 11, 21)])
    assert days[1]["join"]  # the correction exists, in UTC too
    assert rollups.summary(days) == raw
    pd.testing.assert_frame_equal(
        rollups.breakdown(days, "path"), metrics.breakdown(frame, "path"), check_dtype=False
    )
    # The second day alone is what raw events of that day alone give: A2 starts a visit.
    alone = metrics.summary(frame[frame["ts"] >= pd.Timestamp(MIDNIGHT)])
    assert rollups.summary(days[1:]) == alone


def test_a_visit_begun_hours_before_midnight_is_read_back_to_its_start():
    # One visit, a page every 20 minutes from 19:00 to 00:00: /c, then /x (a move from /c to
    # another page), then /c until midnight, and /x again after it. The move across midnight
    # is the same (page, next page, visit) move as at 19:20, so it adds no move to /c's legacy
    # time on page; only reading back to 19:00, past the first two hours, shows that.
    moments = [MIDNIGHT - timedelta(hours=5) + timedelta(minutes=20 * n) for n in range(16)]
    paths = ["/c", "/x"] + ["/c"] * 13 + ["/x"]
    rows = [
        record(
            m,
            "A" if m < MIDNIGHT else "A2",
            path,
            **({"prev_visitor": "A"} if m >= MIDNIGHT else {}),
        )
        for m, path in zip(moments, paths, strict=True)
    ]
    frame = events_frame(rows)
    assert len(metrics.visits(frame)) == 1
    days = day_records(frame, [date(2026, 11, 20), date(2026, 11, 21)])
    summary = rollups.summary(days)
    assert summary == metrics.summary(frame)
    assert (summary.visits, summary.visit_duration) == (1, 5 * 3600)
    pages = rollups.breakdown(days, "path")
    pd.testing.assert_frame_equal(pages, metrics.breakdown(frame, "path"), check_dtype=False)
    # /c: 15 x 20 minutes up to the next event, over its 1 distinct move to another page.
    assert pages.set_index("value").loc["/c", "time_on_page"] == pytest.approx(14 * 1200)


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin", "Asia/Tokyo", "America/Los_Angeles"])
def test_random_traffic_with_engagement_and_midnight_visits_adds_up_as_raw(tz):
    rng = random.Random(tz)
    rows = []
    for person in range(160):
        moment = datetime(2026, 11, 18, tzinfo=UTC) + timedelta(minutes=rng.uniform(0, 4 * 1440))
        for _ in range(rng.randint(1, 5)):
            day_hash = f"{person}-{moment.date()}"
            previous = f"{person}-{moment.date() - timedelta(days=1)}"
            carry = moment - datetime.combine(moment.date(), datetime.min.time(), UTC)
            path = rng.choice(["/", "/blog", "/pricing", "/docs"])
            extra = {"prev_visitor": previous} if carry < timedelta(minutes=31) else {}
            rows.append(record(moment, day_hash, path, source=f"s{person % 3}", **extra))
            if rng.random() < 0.7:  # the page reports engagement when left
                rows.append(
                    record(
                        moment + timedelta(seconds=rng.uniform(1, 60)),
                        day_hash,
                        path,
                        name="engagement",
                        engagement_ms=rng.randint(0, 90_000),
                        scroll_depth=rng.choice([0, 25, 60, 100, 140]),  # 140: out of range
                        **extra,
                    )
                )
            moment += timedelta(minutes=rng.choice([2, 12, 29, 45]))
    frame = events_frame(rows).sort_values("ts").reset_index(drop=True)
    days = [date(2026, 11, 18) + timedelta(days=n) for n in range(4)]
    stored = day_records(frame, days, tz)
    start, end = day_bounds(days[0], tz)[0], day_bounds(days[-1], tz)[1]
    raw = frame[(frame["ts"] >= pd.Timestamp(start)) & (frame["ts"] < pd.Timestamp(end))]
    raw = rollups.with_versions(raw)
    assert rollups.summary(stored).as_dict() == pytest.approx(metrics.summary(raw).as_dict())
    for dimension in ("path", "entry_page", "exit_page", "referrer_source", "name"):
        expected = metrics.breakdown(raw, dimension)
        got = rollups.breakdown(stored, dimension)
        pd.testing.assert_frame_equal(got, expected, check_dtype=False, atol=1e-9)
    pages = metrics.breakdown(raw, "path")
    assert pages["time_on_page"].notna().any() and pages["scroll_depth"].between(0, 100).all()


def test_a_page_row_is_the_summary_under_that_page_filter():
    rng = random.Random(3)
    rows = []
    for person in range(60):
        moment = MIDNIGHT + timedelta(minutes=rng.uniform(0, 600))
        for _ in range(rng.randint(1, 4)):
            rows.append(record(moment, str(person), rng.choice(["/", "/a", "/b"])))
            if rng.random() < 0.3:
                rows.append(record(moment, str(person), "/a", name="Signup"))
            moment += timedelta(minutes=rng.choice([1, 5, 40]))
    frame = events_frame(rows)
    for row in metrics.breakdown(frame, "path").itertuples():
        page = metrics.select(frame, [metrics.filter_from("path", "is", [row.value])])
        summary = metrics.summary(page)
        assert (summary.visitors, summary.visits, summary.pageviews) == (
            row.visitors,
            row.visits,
            row.pageviews,
        )
        assert summary.bounce_rate == pytest.approx(row.bounce_rate)
        assert summary.visit_duration == pytest.approx(row.visit_duration)
        engagement = metrics.page_engagement(page)
        assert math.isnan(engagement["time_on_page"]) == math.isnan(row.time_on_page)
