"""The consumer: partial batch failures, idempotency, and writes that DynamoDB refuses."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from botocore.exceptions import ClientError, ParamValidationError

from pipeline import aws, load_drops, load_events
from pipeline.consume.consumer import Consumer
from pipeline.enrich import steps as enrich_module
from pipeline.enrich.sites import new_site, register_site
from pipeline.enrich.steps import STEPS
from pipeline.ingest.contract import build_event_message, build_message, encode_message
from pipeline.ops.dlq import count as dlq_count
from pipeline.resources import queue_url
from pipeline.store.storage import DIRTY_PK, BatchWriter, event_from_item
from tests.conftest import CHROME_UA, GOOGLEBOT_UA
from tests.faults import DynamoFaults
from tests.support import Pipeline, wait_for

EVENTS = Path(__file__).resolve().parents[1] / "events"


def all_items(settings) -> list[dict]:
    client = aws.client("dynamodb", settings)
    items, kwargs = [], {}
    while True:
        page = client.scan(TableName=settings.events_table, **kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def event_items(settings) -> list[dict]:
    return [item for item in all_items(settings) if "e" in item]


def today_events(settings):
    now = datetime.now(UTC)
    return load_events(
        "example.com", now.date(), now.date().isoformat() + "T23:59:59.999", settings=settings
    )


def test_canonical_event_one_stored_one_failed(settings):
    event = json.loads((EVENTS / "sqs_event.json").read_text())
    received = json.loads(event["Records"][0]["body"])["received_at"]
    consumer = Consumer(settings, clock=lambda: received / 1000 + 5)
    assert consumer.handle(event, None) == {
        "batchItemFailures": [{"itemIdentifier": "0e5a4c7c-0002-4a53-9c6e-1c1b0f1d0002"}]
    }
    (stored,) = event_items(settings)
    fields = json.loads(stored["e"]["S"])
    assert (fields["path"], fields["url"], fields["referrer_source"], fields["city"]) == (
        "/pricing",
        "example.com/pricing?utm_source=newsletter",
        "Google",
        "Paris",
    )


def test_a_malformed_message_fails_alone(settings, message_factory, sqs_record):
    records = [sqs_record(message_factory()) for _ in range(4)]
    records.insert(2, sqs_record('{"v": 1, "broken', message_id="poison"))
    outcome = Consumer(settings).process(records)
    assert outcome.failures == ["poison"]
    assert outcome.stored == 4
    assert len(today_events(settings)) == 4


def test_the_same_message_twice_stores_one_event(settings, message_factory, sqs_record):
    body = message_factory()
    consumer = Consumer(settings)
    consumer.process([sqs_record(body)])
    consumer.process(
        [sqs_record(body), sqs_record(body)]
    )  # redelivery, and a duplicate in one batch
    assert len(event_items(settings)) == 1


def test_bots_are_dropped_and_counted(settings, message_factory, sqs_record):
    consumer = Consumer(settings)
    outcome = consumer.process([sqs_record(message_factory(headers={"User-Agent": GOOGLEBOT_UA}))])
    assert (outcome.stored, dict(outcome.dropped), outcome.failures) == (0, {"bot": 1}, [])
    today = datetime.now(UTC).date()
    drops = load_drops("example.com", today, today + timedelta(days=1), settings=settings)
    assert drops.to_dict() == {"bot": 1}


def test_throttling_and_unprocessed_items_are_retried_until_stored(
    settings, message_factory, sqs_record
):
    dynamodb = aws.client("dynamodb", settings)
    faults = DynamoFaults(dynamodb, throttle_calls=2, partial_calls=3, hold_back=7)
    consumer = Consumer(settings, dynamodb=dynamodb)
    consumer.writer = BatchWriter(dynamodb, settings.events_table, sleep=lambda _: None)
    records = [sqs_record(message_factory()) for _ in range(60)]
    outcome = consumer.process(records)
    assert faults.throttled == 2 and faults.held_back > 0
    assert outcome.failures == []
    assert len(event_items(settings)) == 60


def test_writes_that_never_succeed_are_reported_for_redelivery(
    settings, message_factory, sqs_record
):
    dynamodb = aws.client("dynamodb", settings)
    DynamoFaults(dynamodb, throttle_calls=10**6)
    consumer = Consumer(settings, dynamodb=dynamodb)
    consumer.writer = BatchWriter(
        dynamodb, settings.events_table, max_attempts=3, sleep=lambda _: None
    )
    # Salts must exist before DynamoDB starts refusing batch writes (they use PutItem).
    records = [sqs_record(message_factory(), message_id=f"m{i}") for i in range(30)]
    outcome = consumer.process(records)
    assert sorted(outcome.failures) == sorted(f"m{i}" for i in range(30))
    assert event_items(settings) == []


def at(hour: int, minute: int = 0) -> datetime:
    return datetime.combine(datetime.now(UTC).date(), dtime(hour, minute), UTC)


def test_writes_go_in_batches_of_25(settings, message_factory, sqs_record):
    consumer = Consumer(settings, clock=lambda: at(12).timestamp())
    consumer.process([sqs_record(message_factory())])  # today's salt, and the day's marker
    before = consumer.writer.requests
    consumer.process([sqs_record(message_factory()) for _ in range(100)])
    # 100 events; the open day already carries this consumer's marker: 4 requests, not 5.
    assert consumer.writer.requests - before == 4


def marker_times(settings) -> dict[str, int]:
    items = aws.client("dynamodb", settings).query(
        TableName=settings.events_table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": DIRTY_PK}},
    )["Items"]
    return {item["sk"]["S"]: int(item["marked_at"]["N"]) for item in items}


def test_an_open_day_is_marked_once_and_again_near_midnight(settings, message_factory, sqs_record):
    day = f"example.com#{at(0).date().isoformat()}"
    consumer = Consumer(settings)
    consumer.process([sqs_record(message_factory())], now=at(12))
    first = marker_times(settings)[day]
    consumer.process([sqs_record(message_factory())], now=at(23, 54))
    assert marker_times(settings)[day] == first  # the marker stands: not written again
    consumer.process([sqs_record(message_factory())], now=at(23, 56))
    assert marker_times(settings)[day] == int(at(23, 56).timestamp() * 1000)
    # A new consumer (another Lambda instance) knows of no marker: it writes its own.
    Consumer(settings).process([sqs_record(message_factory())], now=at(13))
    assert marker_times(settings)[day] == int(at(13).timestamp() * 1000)


def test_every_event_of_a_closed_day_marks_it(settings, message_factory, sqs_record):
    yesterday = at(0) - timedelta(hours=2)
    day = f"example.com#{yesterday.date().isoformat()}"
    late = lambda: message_factory(received_at_ms=int(yesterday.timestamp() * 1000))  # noqa: E731
    consumer = Consumer(settings)
    consumer.process([sqs_record(late())], now=at(1))
    consumer.process([sqs_record(late())], now=at(2))
    assert marker_times(settings)[day] == int(at(2).timestamp() * 1000)


def test_an_item_dynamodb_rejects_fails_alone(settings, message_factory, sqs_record, monkeypatch):
    from pipeline.consume import consumer as consumer_module

    real = consumer_module.event_item

    def oversized_for_one(event, *args):
        item = real(event, *args)
        if event["path"] == "/huge":
            item["e"] = {"S": "x" * 500_000}  # over DynamoDB's 400 KB item limit
        return item

    monkeypatch.setattr(consumer_module, "event_item", oversized_for_one)
    good = [sqs_record(message_factory()) for _ in range(5)]
    bad = sqs_record(
        message_factory("d=example.com&u=https%3A%2F%2Fexample.com%2Fhuge"), message_id="huge"
    )
    outcome = Consumer(settings).process([*good, bad])
    assert outcome.failures == ["huge"]
    assert len(event_items(settings)) == 5


def test_the_consumers_writes_skip_botocores_validation_not_dynamodbs(
    settings, message_factory, sqs_record
):
    """The hot writes go without client-side validation (~4 µs an item); every other client
    keeps it. DynamoDB still refuses a bad item (the test above runs on this client)."""
    consumer = Consumer(settings)
    request = {
        "TableName": settings.events_table,
        "Key": {"pk": {"S": "x"}, "sk": {"S": "y"}},
        "ConsistentRead": "yes",  # not a boolean: botocore's validation refuses it
    }
    with pytest.raises(ParamValidationError):
        aws.client("dynamodb", settings).get_item(**request)
    # Sent as it is: the service's own answer (a ClientError, if it minds), not botocore's.
    with contextlib.suppress(ClientError):
        consumer._dynamodb.get_item(**request)
    outcome = consumer.process([sqs_record(message_factory()) for _ in range(3)])
    assert (outcome.stored, outcome.failures) == (3, [])
    assert len(event_items(settings)) == 3


def test_lambda_handler_reads_its_settings_from_the_environment(
    settings, message_factory, sqs_record, monkeypatch
):
    from pipeline.consume import consumer as consumer_module

    monkeypatch.setenv("PIPELINE_EVENTS_TABLE", settings.events_table)
    monkeypatch.setenv("PIPELINE_SALTS_TABLE", settings.salts_table)
    monkeypatch.setenv("PIPELINE_SITES_TABLE", settings.sites_table)
    monkeypatch.setattr(consumer_module, "_default_consumer", None)
    response = consumer_module.handler(
        {"Records": [sqs_record(message_factory()), sqs_record("{}", "bad")]}, None
    )
    assert response == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    assert len(event_items(settings)) == 1


@pytest.mark.parametrize("age_days", [0, 1])
def test_late_events_within_the_salt_window_are_stored(
    settings, message_factory, sqs_record, age_days
):
    received = int((time.time() - age_days * 86400) * 1000)
    outcome = Consumer(settings).process([sqs_record(message_factory(received_at_ms=received))])
    assert outcome.stored == 1


def test_events_older_than_the_salt_window_are_dropped_as_stale(
    settings, message_factory, sqs_record
):
    received = int((time.time() - 3 * 86400) * 1000)
    outcome = Consumer(settings).process([sqs_record(message_factory(received_at_ms=received))])
    assert dict(outcome.dropped) == {"stale": 1}


# Crafted messages, each carrying a visitor's IP, User-Agent and page URL that no log may show.
PROBE_IP = "198.51.100.77"
PROBE_UA = CHROME_UA + " ProbeUA/7.7"
PROBE_PAGE = "https://example.com/probe-page?token=PROBESECRET"
PROBE_SECRETS = (PROBE_IP, "ProbeUA", "probe-page", "PROBESECRET")


class ProbeFailure(Exception):
    """What one enrichment step raises for one message: any exception type at all."""


def crafted(request_id: str, query=None, headers=None, **fields) -> str:
    """A contract message with a visitor's data in it, then changed as a producer never would."""
    message = build_message(
        "d=example.com&u=" + quote(PROBE_PAGE, safe=""),
        {"User-Agent": PROBE_UA, "CloudFront-Viewer-Address": f"{PROBE_IP}:443"},
        PROBE_IP,
        int(time.time() * 1000),
        request_id,
    )
    message["query"].update(query or {})
    message["headers"].update(headers or {})
    return encode_message({**message, **fields})


def old_cap(text: str) -> str:
    """The cap as it was: a plain cut at 2,048 UTF-16 units, through a surrogate pair."""
    return text.encode("utf-16-le", "surrogatepass")[:4096].decode("utf-16-le", "surrogatepass")


def stored_events(settings) -> dict[str, dict]:
    return {e["request_id"]: e for e in map(event_from_item, event_items(settings))}


def step_raising_for(request_id: str):
    """`enrich`'s default steps with one step (add_geo) raising for one request id."""

    def wrap(step):
        def raising(hit, event, ctx):
            if hit.request_id == request_id:
                raise ProbeFailure(f"{hit.user_agent} from {hit.ip} on {hit.page_url}")
            return step(hit, event, ctx)

        return raising

    return tuple(wrap(step) if step is enrich_module.add_geo else step for step in STEPS)


def test_crafted_messages_fail_alone_and_their_logs_name_only_the_exception_type(
    settings, message_factory, sqs_record, monkeypatch, caplog
):
    caplog.set_level(logging.DEBUG, logger="pipeline")
    monkeypatch.setattr(enrich_module.enrich, "__defaults__", (step_raising_for("raises"),))
    split_ua = old_cap(PROBE_UA + "x" * (1 - len(PROBE_UA) % 2) + "😀" * 1500)
    assert "\ud800" <= split_ua[-1] <= "\udbff"  # what the cap used to leave: half an emoji
    escapes = crafted(
        "escapes",
        query={"n": "signup\ud800", "u": PROBE_PAGE + "\udfff"},
        headers={"user-agent": PROBE_UA + "\ud800", "referer": "\udc00"},
    )
    assert "\\ud800" in escapes and "\\udfff" in escapes  # raw JSON escapes, as SQS carries them
    end_of_calendar = int(datetime(9999, 12, 31, 12, tzinfo=UTC).timestamp() * 1000)
    stored_crafted = {
        "split-ua": crafted("split-ua", headers={"user-agent": split_ua}),
        "escapes": escapes,
        "deep-props": crafted("deep-props", query={"p": "[" * 100_000}),
    }
    failing_crafted = {
        "raises": crafted("raises"),
        "deep-body": '{"v":1,"query":' + "[" * 100_000,
        "beyond-time": crafted("beyond-time", received_at=2**62),
        "end-of-calendar": crafted("end-of-calendar", received_at=end_of_calendar),
    }
    good = {
        f"good-{i}": message_factory(
            f"d=example.com&u=https%3A%2F%2Fexample.com%2Fp{i}&p=%7B%22i%22%3A{i}%7D",
            request_id=f"good-{i}",
        )
        for i in range(34)
    }
    records = [sqs_record(body, message_id=f"m-{rid}") for rid, body in good.items()]
    for position, (rid, body) in enumerate({**stored_crafted, **failing_crafted}.items()):
        records.insert(5 * position + 2, sqs_record(body, message_id=f"m-{rid}"))
    assert len(records) == 41

    outcome = Consumer(settings).process(records)

    assert sorted(outcome.failures) == sorted(f"m-{rid}" for rid in failing_crafted)
    assert outcome.stored == len(good) + len(stored_crafted) and outcome.malformed == 1
    events = stored_events(settings)
    assert set(events) == {*good, *stored_crafted}
    assert [events[f"good-{i}"]["props"] for i in range(3)] == [{"i": "0"}, {"i": "1"}, {"i": "2"}]
    assert events["deep-props"]["props"] == {}  # the event kept, its props dropped
    assert events["split-ua"]["browser"] == events["escapes"]["browser"] == "Chrome"
    assert events["escapes"]["name"] == "signup"
    lines = [record.getMessage() for record in caplog.records]
    assert any("m-raises" in line and "ProbeFailure" in line for line in lines)
    assert any("m-beyond-time" in line and "ValueError" in line for line in lines)
    assert any("m-deep-body" in line and "nested too deeply" in line for line in lines)
    assert any("9999-12-31" in line and "OverflowError" in line for line in lines)  # its salt
    for secret in PROBE_SECRETS:
        assert not any(secret in line for line in lines), secret


def test_a_fully_qualified_domain_is_counted_and_dropped_under_its_site(
    settings, message_factory, sqs_record
):
    page = "u=https%3A%2F%2FExample.com.%2Fpricing"
    outcome = Consumer(settings).process(
        [
            sqs_record(message_factory(f"d=Example.COM.&{page}")),
            sqs_record(message_factory(f"d=EXAMPLE.com.&{page}", headers={"User-Agent": "curl/8"})),
        ]
    )
    assert (outcome.stored, dict(outcome.dropped), outcome.failures) == (1, {"bot": 1}, [])
    (event,) = stored_events(settings).values()
    assert (event["site"], event["hostname"], event["path"]) == (
        "example.com",
        "example.com",
        "/pricing",
    )
    today = datetime.now(UTC).date()
    drops = load_drops("example.com", today, today + timedelta(days=1), settings=settings)
    assert drops.to_dict() == {"bot": 1}


@pytest.mark.integration
def test_over_http_a_crafted_hit_among_good_ones_costs_nothing(server_settings):
    """Collector → moto's SQS → worker → consumer: deep props and half an emoji (sent straight to
    the queue, as the old template could) no longer fail their batch."""
    running = Pipeline(server_settings)
    try:
        sqs = aws.client("sqs", server_settings)
        sqs.send_message(
            QueueUrl=queue_url(sqs, server_settings),
            MessageBody=crafted("lone-half", headers={"user-agent": PROBE_UA + "\ud83d"}),
        )
        for i in range(8):
            query = {"d": "example.com", "u": f"https://example.com/g{i}"}
            if i == 4:
                query["p"] = "[" * 3000  # capped to 2,048 by the collector: still too deep
            response = requests.get(
                running.pixel, params=query, headers={"User-Agent": CHROME_UA}, timeout=10
            )
            assert response.status_code == 200
        wait_for(lambda: len(running.events()) == 9)
        assert dlq_count(server_settings) == 0
    finally:
        running.close()


# ---- visits across UTC midnight: the previous day's hash in a day's first 31 minutes ----

MIDNIGHT = datetime(2026, 11, 20, tzinfo=UTC)
NIGHT_UA = CHROME_UA + " NightOwl/1.0"


def night_hit(message_factory, sqs_record, moment: datetime, ip: str, rid: str) -> dict:
    body = message_factory(
        headers={"User-Agent": NIGHT_UA},
        ip=ip,
        received_at_ms=int(moment.timestamp() * 1000),
        request_id=rid,
    )
    return sqs_record(body, message_id=rid)


def test_hits_of_the_first_31_minutes_carry_the_previous_days_hash(
    settings, message_factory, sqs_record, monkeypatch
):
    hit = lambda moment, rid, ip="203.0.113.50": night_hit(  # noqa: E731
        message_factory, sqs_record, moment, ip, rid
    )
    before = MIDNIGHT - timedelta(minutes=2)
    Consumer(settings).process([hit(before, "before")], now=before + timedelta(seconds=5))
    hashes = []  # every visitor hash computed: only carry-over hits pay a second one
    real_hash = enrich_module.visitor_hash
    monkeypatch.setattr(enrich_module, "visitor_hash", lambda *a: hashes.append(a) or real_hash(*a))
    after = {
        "at-midnight": MIDNIGHT,
        "last-ms-in": MIDNIGHT + timedelta(minutes=31) - timedelta(milliseconds=1),
        "first-ms-out": MIDNIGHT + timedelta(minutes=31),
        "noon": MIDNIGHT + timedelta(hours=12),
    }
    # Another Lambda instance, after midnight: yesterday's salt comes from the table.
    outcome = Consumer(settings).process(
        [hit(moment, rid) for rid, moment in after.items()]
        + [hit(MIDNIGHT + timedelta(minutes=5), "other-person", ip="203.0.113.51")],
        now=MIDNIGHT + timedelta(hours=12, seconds=5),
    )
    assert outcome.stored == 5 and not outcome.failures
    assert len(hashes) == 5 + 3  # three hits in the window hashed twice, two once
    events = stored_events(settings)
    yesterdays = events["before"]["visitor"]
    assert events["at-midnight"]["prev_visitor"] == yesterdays
    assert events["last-ms-in"]["prev_visitor"] == yesterdays
    assert "prev_visitor" not in events["first-ms-out"] and "prev_visitor" not in events["noon"]
    assert "prev_visitor" not in events["before"]
    # Today's hash is another (the salt changed); another person's old hash is not this one's.
    assert len({events[rid]["visitor"] for rid in after}) == 1
    assert events["noon"]["visitor"] != yesterdays
    assert events["other-person"]["prev_visitor"] not in ("", yesterdays)
    frame = load_events("example.com", before, MIDNIGHT + timedelta(days=1), settings=settings)
    by_time = dict(zip(frame["ts"].dt.strftime("%H:%M:%S.%f"), frame["prev_visitor"], strict=True))
    assert by_time["23:58:00.000000"] == "" and by_time["12:00:00.000000"] == ""
    assert by_time["00:30:59.999000"] == yesterdays
    # The second hash is a hash too: neither table holds the address or the User-Agent.
    dynamodb = aws.client("dynamodb", settings)
    dumped = json.dumps(
        [
            dynamodb.scan(TableName=t)["Items"]
            for t in (settings.events_table, settings.salts_table)
        ],
        default=repr,
    )
    for secret in ("203.0.113.50", "203.0.113.51", NIGHT_UA, "NightOwl"):
        assert secret not in dumped, secret


def test_no_previous_days_hash_once_that_salt_is_gone(settings, message_factory, sqs_record):
    # Received in the first minutes of a day but processed the next day (a backlog): the
    # salt of the day before is out of the window by then, so no second hash, and no new salt.
    early = MIDNIGHT + timedelta(minutes=3)
    record = night_hit(message_factory, sqs_record, early, "203.0.113.50", "backlog")
    outcome = Consumer(settings).process([record], now=MIDNIGHT + timedelta(days=1, hours=1))
    assert outcome.stored == 1
    assert "prev_visitor" not in stored_events(settings)["backlog"]
    salts = aws.client("dynamodb", settings).scan(TableName=settings.salts_table)["Items"]
    assert {item["day"]["S"] for item in salts} == {MIDNIGHT.date().isoformat()}


def test_a_carry_over_hit_whose_previous_salt_cannot_be_read_is_redelivered(
    settings, message_factory, sqs_record, monkeypatch
):
    from pipeline.enrich.salts import SaltStore

    real = SaltStore.salt_for
    yesterday = (MIDNIGHT - timedelta(days=1)).date()

    def failing_for_yesterday(store, day, now):
        if day == yesterday:
            raise aws_error("ProvisionedThroughputExceededException")
        return real(store, day, now)

    monkeypatch.setattr(SaltStore, "salt_for", failing_for_yesterday)
    early = night_hit(message_factory, sqs_record, MIDNIGHT + timedelta(minutes=3), "1.2.3.4", "e")
    late = night_hit(message_factory, sqs_record, MIDNIGHT + timedelta(hours=2), "1.2.3.4", "l")
    outcome = Consumer(settings).process([early, late], now=MIDNIGHT + timedelta(hours=3))
    # Stored without its second hash it would split the visit for good: it waits instead.
    assert outcome.failures == ["e"] and outcome.stored == 1


def aws_error(code: str):
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": "test"}}, "GetItem")


# ---- event-API messages (contract version 3) ------------------------------------------------


def event_message(body: dict | str, request_id: str | None = None) -> str:
    text = body if isinstance(body, str) else json.dumps(body)
    return encode_message(
        build_event_message(
            text,
            {"User-Agent": CHROME_UA},
            "203.0.113.7",
            int(time.time() * 1000),
            request_id or f"ev-{abs(hash(text))}",
        )
    )


def test_an_event_body_fanned_out_to_two_sites_is_stored_once_each_even_when_redelivered(
    settings, sqs_record
):
    register_site(settings, new_site("rollup.test", hostnames=["example.com"]))
    body = {"n": "pageview", "u": "https://example.com/fan", "d": "example.com,rollup.test"}
    message = event_message(body)
    consumer = Consumer(settings)
    outcome = consumer.process([sqs_record(message, message_id="fan")])
    assert (outcome.stored, outcome.failures) == (2, [])
    consumer.process([sqs_record(message, message_id="fan-again")])  # a redelivery
    assert sorted(i["pk"]["S"].split("#")[0] for i in event_items(settings)) == [
        "example.com",
        "rollup.test",
    ]


def test_a_fanned_out_message_with_one_failing_hit_is_reported_once(
    settings, sqs_record, monkeypatch
):
    from pipeline.consume import consumer as consumer_module

    real = consumer_module.event_item

    def oversized_for_rollup(event, *args):
        item = real(event, *args)
        if event["site"] == "rollup.test":
            item["e"] = {"S": "x" * 500_000}  # over DynamoDB's 400 KB item limit
        return item

    monkeypatch.setattr(consumer_module, "event_item", oversized_for_rollup)
    register_site(settings, new_site("rollup.test", hostnames=["example.com"]))
    body = {
        "n": "pageview",
        "u": "https://example.com/",
        "d": "rollup.test,example.com,rollup.test",
    }
    outcome = Consumer(settings).process([sqs_record(event_message(body), message_id="m")])
    assert outcome.failures == ["m"]  # once, though its rollup.test hit failed: redelivered whole
    assert outcome.stored == 1


def test_an_event_body_that_is_no_event_is_a_counted_drop_not_a_failure(settings, sqs_record):
    records = [
        sqs_record(event_message('{"n": "pageview", "u": "https://example.com/', "r1")),
        sqs_record(event_message({"n": "pageview"}, "r2")),
        sqs_record(event_message({"n": "pageview", "u": "https://example.com/ok"}, "r3")),
    ]
    outcome = Consumer(settings).process(records)
    assert (outcome.stored, dict(outcome.dropped), outcome.failures) == (1, {"bad_body": 2}, [])
    today = datetime.now(UTC).date()
    drops = load_drops("-", today, today + timedelta(days=1), settings=settings)
    assert drops.to_dict() == {"bad_body": 2}


def test_a_stored_item_expires_after_the_hot_window_not_the_retention(
    settings, message_factory, sqs_record
):
    hot = settings.with_overrides(hot_days=3, retention_days=400)
    assert Consumer(hot).process([sqs_record(message_factory(request_id="ttl-1"))]).stored == 1
    items = aws.client("dynamodb", hot).scan(TableName=hot.events_table)["Items"]
    (event,) = [item for item in items if item["sk"]["S"].endswith("#ttl-1")]
    epoch_s = int(event["sk"]["S"].split("#")[0]) // 1000
    # The hot window and a day more: the archive, not DynamoDB, keeps the retention.
    assert int(event["expires_at"]["N"]) == epoch_s + (3 + 1) * 86400
