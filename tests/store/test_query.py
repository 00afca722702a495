"""load_events: time arguments, day partitions in parallel, pagination, the frame's shape."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from pipeline import COLUMNS, aws, load_events
from pipeline.errors import BackendUnavailable, MissingResource
from pipeline.stack import settings_from_env
from pipeline.store.query import days_between, to_utc
from pipeline.store.storage import BatchWriter, event_item

BASE = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)


def store(settings, moments: list[datetime], site: str = "example.com") -> None:
    items = [
        event_item(
            {
                "site": site,
                "ts": int(m.timestamp() * 1000),
                "request_id": f"r{i}",
                "name": "pageview",
                "path": f"/{i}",
                "visitor": "v",
            },
            retention_days=30,
        )
        for i, m in enumerate(moments)
    ]
    assert BatchWriter(aws.client("dynamodb", settings), settings.events_table).write(items) == []


def test_range_is_start_inclusive_end_exclusive_across_days(settings):
    moments = [BASE + timedelta(hours=h) for h in range(6)]  # 22:00 day 1 … 03:00 day 2
    store(settings, moments)
    frame = load_events(
        "example.com", BASE + timedelta(hours=1), BASE + timedelta(hours=4), settings=settings
    )
    assert list(frame["ts"]) == [pd.Timestamp(m) for m in moments[1:4]]


def test_other_sites_are_not_returned(settings):
    store(settings, [BASE], site="other.com")
    store(settings, [BASE + timedelta(minutes=1)])
    assert (
        len(
            load_events(
                "example.com", BASE.date(), BASE.date() + timedelta(days=1), settings=settings
            )
        )
        == 1
    )


def test_reads_follow_every_page(settings):
    moments = [BASE - timedelta(hours=10) + timedelta(seconds=s) for s in range(57)]
    store(settings, moments)
    frame = load_events(
        "example.com",
        BASE.date(),
        BASE.date() + timedelta(days=1),
        settings=settings,
        page_limit=10,
    )
    assert len(frame) == 57 and frame["path"].tolist() == [f"/{i}" for i in range(57)]


@pytest.mark.parametrize(
    "start",
    [
        pytest.param(date(2026, 11, 20), id="date"),
        pytest.param(datetime(2026, 11, 20), id="naive-datetime-is-utc"),
        pytest.param(
            datetime(2026, 11, 20, 1, tzinfo=UTC) + timedelta(hours=-1), id="aware-datetime"
        ),
        pytest.param("2026-11-20", id="iso-date"),
        pytest.param("2026-11-20T01:00:00+01:00", id="iso-with-offset"),
    ],
)
def test_time_arguments(start):
    assert to_utc(start) == datetime(2026, 11, 20, tzinfo=UTC)


def test_days_between():
    assert days_between(to_utc("2026-11-20T23:00"), to_utc("2026-11-22")) == [
        date(2026, 11, 20),
        date(2026, 11, 21),
    ]
    assert days_between(to_utc("2026-11-22"), to_utc("2026-11-20")) == []


def test_empty_result_has_the_documented_columns(settings):
    frame = load_events("example.com", "2026-01-01", "2026-01-03", settings=settings)
    assert frame.empty and tuple(frame.columns) == COLUMNS
    assert str(frame["ts"].dtype).startswith("datetime64") and frame["ts"].dt.tz is not None


def test_unreachable_endpoint_says_what_to_set():
    with pytest.raises(BackendUnavailable, match="AWS_ENDPOINT_URL"):
        load_events("example.com", "2026-01-01", "2026-01-02", endpoint_url="http://127.0.0.1:9")


def test_missing_table_says_what_to_set(settings):
    with pytest.raises(MissingResource, match="PIPELINE_"):
        load_events(
            "example.com",
            "2026-01-01",
            "2026-01-02",
            settings=settings.with_overrides(events_table="nope"),
        )


def test_settings_from_env_with_explicit_arguments_winning(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("PIPELINE_EVENTS_TABLE", "from-env")
    monkeypatch.setenv("PIPELINE_RESPECT_DNT", "yes")
    found = settings_from_env(events_table="explicit")
    assert (found.endpoint_url, found.region, found.events_table, found.respect_dnt) == (
        "http://127.0.0.1:4566",
        "eu-west-1",
        "explicit",
        True,
    )
    with pytest.raises(TypeError, match="unknown setting"):
        settings_from_env(event_table="typo")


def test_items_stored_before_engagement_read_as_empty_and_nan(settings):
    # `store` writes items as the consumer did before issue 14: none of the three new fields.
    store(settings, [BASE, BASE + timedelta(minutes=1)])
    new = {
        "site": "example.com",
        "ts": int((BASE + timedelta(minutes=2)).timestamp() * 1000),
        "request_id": "new",
        "name": "engagement",
        "path": "/0",
        "visitor": "v",
        "prev_visitor": "p",
        "engagement_ms": 42_000,
        "scroll_depth": 87,
    }
    writer = BatchWriter(aws.client("dynamodb", settings), settings.events_table)
    assert writer.write([event_item(new, retention_days=30)]) == []
    frame = load_events("example.com", BASE, BASE + timedelta(hours=1), settings=settings)
    assert tuple(frame.columns[-3:]) == ("prev_visitor", "engagement_ms", "scroll_depth")
    assert frame["prev_visitor"].tolist() == ["", "", "p"]
    assert frame["engagement_ms"].iloc[:2].isna().all() and frame["engagement_ms"].iloc[2] == 42_000
    assert frame["scroll_depth"].iloc[:2].isna().all() and frame["scroll_depth"].iloc[2] == 87
    assert frame["engagement_ms"].dtype == "float64" and frame["scroll_depth"].dtype == "float64"
    # The two hashes share a dtype, so the metrics compare and join them as they are.
    assert frame["prev_visitor"].dtype == frame["visitor"].dtype
    assert (frame["prev_visitor"] == frame["visitor"]).tolist() == [False, False, False]


def test_an_empty_frame_has_the_new_columns_too(settings):
    frame = load_events("example.com", "2026-01-01", "2026-01-02", settings=settings)
    assert {"prev_visitor", "engagement_ms", "scroll_depth"} <= set(frame.columns)
