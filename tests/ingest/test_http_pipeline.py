"""End to end over real HTTP: collector → moto's SQS → worker → handler → moto's DynamoDB."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from pipeline import aws
from pipeline.ingest.contract import PIXEL_GIF
from pipeline.resources import queue_url
from tests.conftest import CHROME_UA, IPHONE_UA
from tests.support import Pipeline, wait_for

pytestmark = pytest.mark.integration
NASTY = "\"\\<script>alert('x')</script>😀\x00"
# A NUL in a header value is invalid HTTP (RFC 9110 §5.5): the collector answers 400 (see
# test_collector_hardening.py), so the header case carries everything else.
NASTY_HEADER = NASTY.replace("\x00", "")


@pytest.fixture
def pipeline(server_settings) -> Iterator[Pipeline]:
    running = Pipeline(server_settings)
    yield running
    running.close()


def hit(pipeline: Pipeline, params: dict | str, headers: dict | None = None) -> requests.Response:
    url = pipeline.pixel + ("?" + params if isinstance(params, str) else "")
    response = requests.get(
        url,
        params=None if isinstance(params, str) else params,
        headers=headers or {"User-Agent": CHROME_UA},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.content == PIXEL_GIF and response.headers["Content-Type"] == "image/gif"
    return response


def test_a_hit_comes_back_enriched(pipeline):
    response = hit(
        pipeline,
        {
            "d": "example.com",
            "u": "https://example.com/docs/install?utm_source=newsletter&utm_campaign=nov&session=abc",
            "r": "https://news.ycombinator.com/item?id=42",
            "w": "390",
        },
        {
            "User-Agent": IPHONE_UA,
            "CloudFront-Viewer-Country": "DE",
            "CloudFront-Viewer-Country-Region": "BE",
            "CloudFront-Viewer-City": "Berlin",
            "CloudFront-Viewer-Latitude": "52.5200",
            "CloudFront-Viewer-Longitude": "13.4050",
        },
    )
    assert response.headers["Cache-Control"].startswith("no-cache")
    wait_for(lambda: len(pipeline.events()) == 1)
    row = pipeline.events().iloc[0].to_dict()
    expected = {
        "site": "example.com", "name": "pageview", "path": "/docs/install",
        "referrer_source": "Hacker News", "referrer": "news.ycombinator.com/item",
        "utm_source": "newsletter", "utm_medium": "", "utm_campaign": "nov",
        "country": "DE", "region": "DE-BE", "city": "Berlin", "lat": 52.5, "lon": 13.4,
        "browser": "Safari", "os": "iOS", "device": "Mobile", "screen": "Mobile",
    }  # fmt: skip
    assert {key: row[key] for key in expected} == expected
    assert len(row["visitor"]) == 16
    assert abs(row["ts"] - datetime.now(UTC)) < timedelta(minutes=1)


def test_a_plain_img_pixel_uses_the_referer_header_as_page(pipeline):
    hit(
        pipeline,
        {"d": "example.com"},
        {"User-Agent": CHROME_UA, "Referer": "https://example.com/pricing?plan=pro"},
    )
    wait_for(lambda: len(pipeline.events()) == 1)
    assert pipeline.events()["path"].tolist() == ["/pricing"]


NASTY_CASES = [
    # (raw query string, headers, outcome)
    (
        "d=example.com&u=https%3A%2F%2Fexample.com%2Fquotes%22%5C%3Cscript%3E&r=%22%5C&n=%22%5C%3Cscript%3E&p=%7B%22a%22%3A%22%5C%22%22%7D",
        None,
        "stored",
    ),
    (
        "d=example.com&u=https%3A%2F%2Fexample.com%2Femoji%F0%9F%98%80&n=%F0%9F%98%80",
        None,
        "stored",
    ),
    (
        "d=example.com&u=https%3A%2F%2Fexample.com%2Finvalid-utf8%FF%FE&r=%C3%28&n=%FF",
        None,
        "stored",
    ),
    (
        "d=example.com&u=https%3A%2F%2Fexample.com%2Fbig-ua",
        {"User-Agent": CHROME_UA + "x" * 10_000},
        "stored",
    ),
    (
        "d=example.com&u=https%3A%2F%2Fexample.com%2Fbig-query%2F"
        + "a" * 20_000
        + "&n="
        + "b" * 20_000,
        None,
        "stored",
    ),
    (
        "d=example.com&u=https%3A%2F%2Fexample.com%2Funknown-params&zzz=1&__proto__=x&d2=y",
        None,
        "stored",
    ),
    (
        "d=example.com&u=https%3A%2F%2Fexample.com%2Fbad-props&n=Signup&p=%7Bnot+json",
        None,
        "stored",
    ),
    ("d=example.com&u=https%3A%2F%2Fexample.com%2Fcontrol%00%01%1b&r=%00", None, "stored"),
    (
        "d=example.com&u=https%3A%2F%2Fexample.com%2Fnasty-headers",
        {
            "User-Agent": CHROME_UA,
            "Referer": NASTY_HEADER.encode("utf-8"),
            "CloudFront-Viewer-City": NASTY_HEADER.encode("utf-8"),
        },
        "stored",
    ),
    (
        "d=example.com&u=https%3A%2F%2Fexample.com%2Fraw-bytes-ua",
        {"User-Agent": b"Mozilla/5.0 \xff\xfe (Windows NT 10.0) Chrome/131.0 Safari/537.36"},
        "stored",
    ),
    ("u=https%3A%2F%2Fexample.com%2Fmissing-d", None, "no_site"),
    ("d=example.com&u=%2Fno-host", None, "no_page"),
    ("d=example.com&u=https%3A%2F%2Fexample.com%2Fbot", {"User-Agent": "curl/8.5.0"}, "bot"),
    ("", None, "no_site"),
]


def test_nasty_inputs_get_the_gif_and_are_stored_capped_or_dropped_with_a_reason(pipeline):
    for query, headers, _ in NASTY_CASES:
        hit(pipeline, query, headers)
    stored = sum(1 for *_, outcome in NASTY_CASES if outcome == "stored")
    wait_for(lambda: len(pipeline.events()) == stored)
    events = pipeline.events()
    assert events["path"].str.len().max() <= 2000
    assert events["name"].astype(str).str.len().max() <= 120
    for column in ("path", "name", "referrer", "city", "browser"):
        values = events[column].astype(str)
        assert not values.str.contains("[\x00-\x1f]", regex=True).any(), column
    assert set(events["path"].str.split("/").str[1].str[:8]) >= {
        'quotes"\\',
        "emoji😀",
        "invalid-",
        "big-ua",
        "big-quer",
        "unknown-",
        "bad-prop",
        "control",
        "nasty-he",
        "raw-byte",
    }
    assert events.set_index("path").loc["/bad-props", "props"] == {}
    expected_drops = {"bot": 1, "no_page": 1}
    wait_for(lambda: pipeline.drops() == expected_drops)
    wait_for(lambda: pipeline.drops("-") == {"no_site": 2})


def test_the_same_message_twice_stores_one_event(pipeline, message_factory):
    sqs = aws.client("sqs", pipeline.settings)
    body = message_factory()
    for _ in range(2):
        sqs.send_message(QueueUrl=queue_url(sqs, pipeline.settings), MessageBody=body)
    wait_for(lambda: _queue_empty(pipeline.settings))
    time.sleep(0.5)
    assert len(pipeline.events()) == 1


def _queue_empty(settings) -> bool:
    sqs = aws.client("sqs", settings)
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url(sqs, settings), AttributeNames=["All"]
    )["Attributes"]
    return (
        attributes["ApproximateNumberOfMessages"] == "0"
        and attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
    )


def test_a_malformed_message_lands_in_the_dlq_after_three_receives_and_neighbours_are_stored(
    pipeline, message_factory
):
    sqs = aws.client("sqs", pipeline.settings)
    inbound = queue_url(sqs, pipeline.settings)
    poison = '{"v": 1, "request_id": "oops", "query": '
    entries = [{"Id": str(i), "MessageBody": message_factory()} for i in range(4)]
    entries.insert(2, {"Id": "poison", "MessageBody": poison})
    sqs.send_message_batch(QueueUrl=inbound, Entries=entries)
    wait_for(lambda: len(pipeline.events()) == 4)
    dlq = queue_url(sqs, pipeline.settings, pipeline.settings.dlq_name)
    received: list[dict] = []

    def poison_in_dlq() -> bool:
        received.extend(
            sqs.receive_message(QueueUrl=dlq, AttributeNames=["All"], WaitTimeSeconds=1).get(
                "Messages", []
            )
        )
        return bool(received)

    wait_for(poison_in_dlq, timeout=45)
    assert [m["Body"] for m in received] == [poison]
    assert received[0]["Attributes"]["ApproximateReceiveCount"] >= "3"
    assert len(pipeline.events()) == 4


def test_the_collector_answers_503_with_the_gif_when_the_queue_is_gone(pipeline):
    sqs = aws.client("sqs", pipeline.settings)
    sqs.delete_queue(QueueUrl=queue_url(sqs, pipeline.settings))
    response = requests.get(
        pipeline.pixel, params={"d": "example.com"}, headers={"User-Agent": CHROME_UA}, timeout=30
    )
    assert response.status_code == 503
    assert response.content == PIXEL_GIF
    assert pipeline.collector.enqueuer.failed == 1


def test_health_and_unknown_paths(pipeline):
    assert requests.get(f"{pipeline.collector.url}/health", timeout=5).text == "ok"
    assert requests.get(f"{pipeline.collector.url}/nope", timeout=5).status_code == 404


def test_privacy_no_ip_no_user_agent_no_query_strings_at_rest(pipeline):
    ips = ["198.51.100.77", "2001:db8::beef"]
    user_agents = [CHROME_UA + " PrivacyProbe/1.0", IPHONE_UA + " PrivacyProbe/2.0"]
    for n, (ip, ua) in enumerate(zip(ips, user_agents, strict=True)):
        hit(
            pipeline,
            {
                "d": "example.com",
                "u": f"https://example.com/p{n}?email=me%40mail.com&token=SECRET{n}&utm_source=nl",
                "r": f"https://other.example/?q=SEARCH{n}",
            },
            {"User-Agent": ua, "CloudFront-Viewer-Address": f"{ip}:5555"},
        )
    wait_for(lambda: len(pipeline.events()) == 2)
    dynamodb = aws.client("dynamodb", pipeline.settings)
    dumped = json.dumps(
        [
            dynamodb.scan(TableName=table)["Items"]
            for table in (pipeline.settings.events_table, pipeline.settings.salts_table)
        ],
        default=repr,
    )
    for secret in [
        *ips,
        "127.0.0.1",
        *user_agents,
        "PrivacyProbe",
        "Mozilla/5.0",
        "SECRET",
        "SEARCH",
        "email",
        "token",
    ]:
        assert secret not in dumped, secret
    assert sorted(pipeline.events()["url"]) == [
        "example.com/p0?utm_source=nl",
        "example.com/p1?utm_source=nl",
    ]


def test_a_client_over_its_rate_gets_429_with_the_gif_and_only_accepted_hits_count(server_settings):
    from pipeline.ingest.collector import RateLimiter

    running = Pipeline(server_settings, limiter=RateLimiter(rate=0.01, burst=5))
    try:
        answers = [
            requests.get(
                running.pixel,
                params={"d": "example.com", "u": f"https://example.com/r{n}"},
                headers={"User-Agent": CHROME_UA},
                timeout=10,
            )
            for n in range(12)
        ]
        assert [a.status_code for a in answers] == [200] * 5 + [429] * 7
        assert all(a.content == PIXEL_GIF for a in answers)
        wait_for(lambda: len(running.events()) == 5)
        assert running.collector.limiter.limited == 7
    finally:
        running.close()


def test_rate_limiter_refills_over_time():
    from pipeline.ingest.collector import RateLimiter

    limiter = RateLimiter(rate=2, burst=2)
    assert [limiter.allow("a", now=0) for _ in range(3)] == [True, True, False]
    assert limiter.allow("b", now=0)  # per client
    assert limiter.allow("a", now=0.6) and not limiter.allow("a", now=0.6)
