"""`python -m pipeline.archive`: backfill writes the files of existing days (issue 16).

Over moto's HTTP server, with the settings in the environment as a user would set them.
"""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pyarrow.parquet as pq
import pytest

from pipeline import aws, load_events
from pipeline.archive import main
from pipeline.consume.consumer import Consumer
from pipeline.store import archive
from pipeline.store.storage import DIRTY_PK, dirty_days

pytestmark = pytest.mark.integration

SITE = "example.com"


@pytest.fixture
def env(server_settings, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", server_settings.endpoint_url)
    monkeypatch.setenv("PIPELINE_EVENTS_TABLE", server_settings.events_table)
    monkeypatch.setenv("PIPELINE_SITES_TABLE", server_settings.sites_table)
    monkeypatch.setenv("PIPELINE_SALTS_TABLE", server_settings.salts_table)
    monkeypatch.setenv("PIPELINE_ARCHIVE_BUCKET", server_settings.archive_bucket)
    return server_settings


def stored(settings, message_factory, sqs_record, moments) -> list[str]:
    """Pageviews through the consumer, each processed in its own day (as they arrived)."""
    consumer, ids = Consumer(settings), []
    for n, moment in enumerate(moments):
        rid = f"bf-{n}"
        body = message_factory(
            query=urlencode({"d": SITE, "u": f"https://{SITE}/p{n % 3}"}),
            received_at_ms=int(moment.timestamp() * 1000),
            request_id=rid,
        )
        outcome = consumer.process([sqs_record(body)], now=moment + timedelta(seconds=1))
        assert outcome.stored == 1
        ids.append(rid)
    return ids


def file_ids(settings, day) -> set[str] | None:
    s3 = aws.client("s3", settings)
    try:
        body = s3.get_object(Bucket=settings.archive_bucket, Key=archive.object_key(SITE, day))
    except s3.exceptions.NoSuchKey:
        return None
    table = pq.read_table(io.BytesIO(body["Body"].read()), columns=["request_id"])
    return set(table["request_id"].to_pylist())


def test_backfill_writes_the_days_it_says(env, message_factory, sqs_record, capsys):
    now = datetime.now(UTC)
    today = now.date()
    start = datetime.combine(today, datetime.min.time(), UTC)
    # Two events on each of the last four days and one today; none five days ago.
    moments = [start - timedelta(days=d, hours=h) for d in (0, 1, 2, 3) for h in (3, 13)]
    moments += [min(now, start + timedelta(minutes=1))]
    ids = stored(env, message_factory, sqs_record, sorted(moments))
    by_day: dict = {}
    for moment, rid in zip(sorted(moments), ids, strict=True):
        by_day.setdefault(moment.date(), set()).add(rid)
    first, last_closed = today - timedelta(days=5), today - timedelta(days=1)
    # Those days were rolled up before the archive existed: no marker is left on them.
    dynamodb = aws.client("dynamodb", env)
    for site, day, _ in dirty_days(dynamodb, env.events_table):
        if day < today:
            key = {"pk": {"S": DIRTY_PK}, "sk": {"S": f"{site}#{day.isoformat()}"}}
            dynamodb.delete_item(TableName=env.events_table, Key=key)

    assert main(["backfill", SITE, "--since", first.isoformat()]) == 0

    out = capsys.readouterr().out.splitlines()
    written = [line.split()[0] for line in out[:-1]]
    closed_days = sorted(d for d in by_day if d <= last_closed)
    assert written == [d.isoformat() for d in closed_days]
    for line, day in zip(out[:-1], closed_days, strict=True):
        assert f"{len(by_day[day])} events" in line
    assert out[-1].startswith(f"wrote {len(closed_days)} file(s)")
    for day in closed_days:
        assert file_ids(env, day) == by_day[day]
    assert file_ids(env, today) is None  # today is still being written
    assert file_ids(env, first) is None  # no events, no file
    # The files answer load_events once DynamoDB no longer holds the days' items.
    for day in closed_days:
        pk = f"{SITE}#{day.isoformat()}"
        items = dynamodb.query(
            TableName=env.events_table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": pk}},
        )["Items"]
        for item in items:
            dynamodb.delete_item(
                TableName=env.events_table, Key={"pk": item["pk"], "sk": item["sk"]}
            )
    frame = load_events(SITE, closed_days[0], today, settings=env, now=now)
    assert sorted(frame["path"].astype(str)) == sorted(
        f"/p{ids.index(rid) % 3}" for day in closed_days for rid in by_day[day]
    )

    # `--until` bounds the range; `list` prints the days that have a file.
    assert main(["list", SITE]) == 0
    assert capsys.readouterr().out.split() == [d.isoformat() for d in closed_days]


def test_a_missing_bucket_says_what_to_set(env, monkeypatch, capsys):
    monkeypatch.setenv("PIPELINE_ARCHIVE_BUCKET", "no-such-archive-bucket")
    since = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    assert main(["backfill", SITE, "--since", since, "--until", since]) == 2
    err = capsys.readouterr().err
    assert "PIPELINE_ARCHIVE_BUCKET" in err and len(err.strip().splitlines()) == 1


def test_bad_dates_are_refused_before_any_request(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["backfill", SITE, "--since", "last tuesday"])
    assert exit_.value.code == 2 and "YYYY-MM-DD" in capsys.readouterr().err
    assert main(["backfill", SITE, "--since", "2026-11-20", "--until", "2026-11-10"]) == 2


def test_the_module_runs_as_a_command():
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.archive", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and "backfill" in done.stdout
