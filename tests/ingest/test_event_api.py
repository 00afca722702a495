"""Plausible's `POST /api/event` over real HTTP: collector → moto's SQS → the real consumer →
moto's DynamoDB, and the collector's hook that serves the Stats API on the same origin.

Answers follow Plausible's (lib/plausible_web/controllers/api/external_controller.ex and
lib/plausible/ingestion/request.ex): 202 "ok" for an accepted event, 400 with
`{"errors": {field: [message]}}` for a body it can't take, CORS from its CORSPlug.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from pipeline import aws
from pipeline.api.http import ApiRequest, ApiResponse, json_response
from pipeline.enrich.sites import new_site, register_site
from pipeline.ingest import collector as collector_module
from pipeline.ingest.collector import start_collector
from pipeline.ingest.contract import MAX_BODY_UNITS, build_event_message, encode_message
from pipeline.resources import queue_url
from tests.conftest import CHROME_UA, IPHONE_UA
from tests.support import Pipeline, wait_for

pytestmark = pytest.mark.integration
NOT_JSON = {"errors": {"request": ["Unable to parse request body as json"]}}


@pytest.fixture
def pipeline(server_settings) -> Iterator[Pipeline]:
    running = Pipeline(server_settings)
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def collector_only(server_settings):
    """The collector without a consumer: what it queues stays on the queue to be counted."""
    server = start_collector(server_settings)
    try:
        yield server
    finally:
        server.shutdown()


def post(base: str, body: str | bytes, content_type: str = "text/plain", **headers):
    return requests.post(
        f"{base}/api/event",
        data=body.encode() if isinstance(body, str) else body,
        headers={"Content-Type": content_type, "User-Agent": CHROME_UA, **headers},
        timeout=10,
    )


def queued(settings) -> list[dict]:
    sqs = aws.client("sqs", settings)
    url = queue_url(sqs, settings)
    found = []
    for _ in range(3):  # moto answers at once; a few polls see every message
        found += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in found]


def same_fields(row) -> dict[str, str]:
    # Everything but what differs between any two requests: their time and id.
    return {k: str(v) for k, v in row.items() if k not in ("ts", "request_id")}


def test_a_tracker_body_is_stored_with_the_same_fields_as_the_equivalent_pixel_hit(pipeline):
    page = "https://example.com/pricing?plan=pro&utm_source=newsletter&session=abc"
    referrer = "https://news.ycombinator.com/item?id=42"
    headers = {"User-Agent": IPHONE_UA, "CloudFront-Viewer-Country": "DE"}
    pixel = requests.get(
        pipeline.pixel,
        params={
            "d": "example.com",
            "u": page,
            "r": referrer,
            "n": "Signup",
            "p": json.dumps({"plan": "pro", "seats": 3, "trial": True}),
            "w": "390",
        },
        headers=headers,
        timeout=10,
    )
    assert pixel.status_code == 200
    # What @plausible-analytics/tracker 0.4.6 sends: text/plain JSON, props as an object,
    # `r` null when there is no referrer, its version in `v`.
    body = {
        "n": "Signup",
        "v": 36,
        "u": page,
        "d": "example.com",
        "r": referrer,
        "p": {"plan": "pro", "seats": 3, "trial": True},
        "w": 390,
    }
    answer = post(pipeline.collector.url, json.dumps(body), **headers)
    assert (answer.status_code, answer.text) == (202, "ok")
    assert answer.headers["Content-Type"].startswith("text/plain")
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    wait_for(lambda: len(pipeline.events()) == 2)
    first, second = (same_fields(row) for _, row in pipeline.events().iterrows())
    assert first == second
    assert first["path"] == "/pricing" and first["name"] == "Signup"
    assert first["props"] == str({"plan": "pro", "seats": "3", "trial": "true"})
    assert (first["referrer_source"], first["utm_source"], first["country"]) == (
        "Hacker News",
        "newsletter",
        "DE",
    )


def test_engagement_and_application_json_and_long_names_are_read_as_plausible_does(pipeline):
    base = pipeline.collector.url
    answers = [
        post(
            base,
            json.dumps(
                {"name": "pageview", "url": "https://example.com/long", "domain": "example.com"}
            ),
            "application/json",
        ),
        post(
            base,
            json.dumps(
                {
                    "n": "engagement",
                    "sd": 87,
                    "d": "example.com",
                    "u": "https://example.com/long",
                    "e": 4200,
                }
            ),
        ),
        # No `d`: the page's host, without www., names the site (Plausible's map_domains).
        post(base, json.dumps({"n": 404, "u": "https://www.example.com/missing#frag"})),
        # Legacy `m` as JSON text wins over `p`; a list value and a blank one are dropped.
        post(
            base,
            json.dumps(
                {
                    "n": "Legacy",
                    "u": "https://example.com/m",
                    "m": json.dumps({"a": "1"}),
                    "p": {"b": "2"},
                }
            ),
        ),
        post(
            base,
            json.dumps(
                {
                    "n": "Filtered",
                    "u": "https://example.com/f",
                    "p": {"ok": "1", "l": [1], "o": {}, " ": "x", "e": " "},
                }
            ),
        ),
    ]
    assert [a.status_code for a in answers] == [202] * 5
    wait_for(lambda: len(pipeline.events()) == 5)
    events = pipeline.events().set_index("name")
    assert events.loc["pageview", "path"] == "/long"
    assert (
        events.loc["engagement", "engagement_ms"],
        events.loc["engagement", "scroll_depth"],
    ) == (
        4200,
        87,
    )
    assert (
        events.loc["404", "path"] == "/missing"
        and events.loc["404", "hostname"] == "www.example.com"
    )
    assert events.loc["Legacy", "props"] == {"a": "1"}
    assert events.loc["Filtered", "props"] == {"ok": "1"}


def test_hash_mode_keeps_the_fragment_as_plausible_does(pipeline):
    body = {"n": "pageview", "u": "https://example.com/app#/settings", "d": "example.com", "h": 1}
    assert post(pipeline.collector.url, json.dumps(body)).status_code == 202
    assert post(pipeline.collector.url, json.dumps({**body, "h": None})).status_code == 202
    wait_for(lambda: len(pipeline.events()) == 2)
    assert sorted(pipeline.events()["url"]) == ["example.com/app", "example.com/app#/settings"]


def test_a_comma_separated_domain_sends_the_event_to_each_site(pipeline):
    register_site(pipeline.settings, new_site("rollup.test", hostnames=["example.com"]))
    body = {
        "n": "pageview",
        "u": "https://example.com/both",
        "d": "example.com, www.rollup.test,example.com",
    }
    assert post(pipeline.collector.url, json.dumps(body)).status_code == 202
    wait_for(lambda: len(pipeline.events("rollup.test")) == 1)
    wait_for(lambda: len(pipeline.events()) == 1)
    mine, rolled = pipeline.events().iloc[0], pipeline.events("rollup.test").iloc[0]
    assert mine["path"] == rolled["path"] == "/both" and mine["ts"] == rolled["ts"]
    assert mine["visitor"] != rolled["visitor"]  # hashed per site, as every hit is


BAD_BODIES = [
    # (body, content type, Plausible's answer)
    pytest.param("{nope", "text/plain", NOT_JSON, id="not-json"),
    pytest.param("", "text/plain", NOT_JSON, id="empty"),
    pytest.param("[1, 2]", "application/json", NOT_JSON, id="array"),
    pytest.param('"pageview"', "text/plain", NOT_JSON, id="string"),
    pytest.param("null", "application/json", NOT_JSON, id="null"),
    pytest.param('{"n":"x","u":"https://example.com/","w":NaN}', "text/plain", NOT_JSON, id="nan"),
    pytest.param("[" * 5000, "text/plain", NOT_JSON, id="deeply-nested"),
    pytest.param(b'{"n":"\xff\xfe"}', "text/plain", NOT_JSON, id="not-utf-8"),
    pytest.param(
        json.dumps({"n": "x", "u": "https://example.com/", "p": {"k": "a" * MAX_BODY_UNITS}}),
        "text/plain",
        NOT_JSON,
        id="over-the-limit",
    ),
    pytest.param(
        json.dumps({"u": "https://example.com/"}),
        "text/plain",
        {"errors": {"event_name": ["can't be blank"]}},
        id="no-name",
    ),
    pytest.param(
        json.dumps({"n": "pageview"}),
        "text/plain",
        {"errors": {"url": ["is required"]}},
        id="no-url",
    ),
    pytest.param(
        "{}",
        "application/json",
        {"errors": {"event_name": ["can't be blank"], "url": ["is required"]}},
        id="empty-object",
    ),
    pytest.param(
        json.dumps({"n": 5.5, "u": 42}),
        "text/plain",
        {"errors": {"event_name": ["is invalid"], "url": ["must be a valid url"]}},
        id="name-and-url-wrong-types",
    ),
    pytest.param(
        json.dumps({"n": "x", "u": "https://example.com/", "p": [1, 2]}),
        "text/plain",
        {"errors": {"props": ["is invalid"]}},
        id="props-an-array",
    ),
    pytest.param(
        json.dumps({"n": "x", "u": "https://example.com/", "props": 5}),
        "text/plain",
        {"errors": {"props": ["is invalid"]}},
        id="props-a-number",
    ),
    pytest.param(
        json.dumps({"n": "x", "u": "https://example.com/", "p": {"k": "v" * 2001}}),
        "text/plain",
        {"errors": {"props": ["keys should have at most 300 bytes and values 2000 bytes"]}},
        id="prop-value-too-long",
    ),
    pytest.param(
        json.dumps({"n": "x" * 121, "u": "https://example.com/"}),
        "text/plain",
        {"errors": {"event_name": ["should be at most 120 character(s)"]}},
        id="name-too-long",
    ),
    pytest.param(
        json.dumps({"n": "x", "u": "https://example.com/", "d": "  "}),
        "text/plain",
        {"errors": {"domain": ["can't be blank"]}},
        id="blank-domain",
    ),
    pytest.param(
        json.dumps(
            {
                "n": "x",
                "u": "https://example.com/",
                "d": 7,
                "r": [],
                "h": "yes",
                "i": "no",
                "e": {},
                "sd": True,
            }
        ),
        "text/plain",
        {
            "errors": {
                "domain": ["is invalid"],
                "referrer": ["is invalid"],
                "hash_mode": ["is invalid"],
                "interactive": ["is invalid"],
                "engagement_time": ["is invalid"],
                "scroll_depth": ["is invalid"],
            }
        },
        id="every-other-field-wrong",
    ),
]


@pytest.mark.parametrize(("body", "content_type", "expected"), BAD_BODIES)
def test_a_bad_body_gets_plausibles_400_and_nothing_is_queued(
    collector_only, server_settings, body, content_type, expected
):
    answer = post(collector_only.url, body, content_type)
    assert answer.status_code == 400
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert answer.json() == expected
    assert queued(server_settings) == []
    # The same collector and queue take a good body: the empty queue above was not blind.
    good = json.dumps({"n": "pageview", "u": "https://example.com/"})
    assert post(collector_only.url, good).status_code == 202
    (message,) = queued(server_settings)
    assert message["v"] == 3 and message["body"] == good


def test_a_body_over_the_collectors_byte_limit_gets_400_and_the_connection_closes(
    collector_only, server_settings
):
    body = json.dumps({"n": "x", "u": "https://example.com/", "p": {"k": "a" * 70_000}})
    answer = post(collector_only.url, body)
    assert (answer.status_code, answer.json()) == (400, NOT_JSON)
    assert answer.headers["Connection"] == "close"
    # Chunked, with no Content-Length to refuse it early: read up to the limit, then refused.
    chunked = requests.post(
        f"{collector_only.url}/api/event",
        data=iter([body.encode()[:40_000], body.encode()[40_000:]]),
        timeout=10,
    )
    assert (chunked.status_code, chunked.json()) == (400, NOT_JSON)
    assert queued(server_settings) == []


def test_preflight_and_methods_answer_as_plausibles_cors(collector_only):
    preflight = requests.options(
        f"{collector_only.url}/api/event",
        headers={
            "Origin": "https://example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=5,
    )
    assert preflight.status_code == 204 and preflight.content == b""
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"].split(",")
    assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"].split(",")
    assert preflight.headers["Access-Control-Max-Age"] == "1728000"
    wrong = requests.get(f"{collector_only.url}/api/event", timeout=5)
    assert wrong.status_code == 405 and "POST" in wrong.headers["Allow"]
    # The pixel path is as it was: no POST there.
    assert requests.post(f"{collector_only.url}/pixel", data="{}", timeout=5).status_code == 405


def test_the_event_api_answers_503_when_the_queue_is_gone(collector_only, server_settings):
    sqs = aws.client("sqs", server_settings)
    sqs.delete_queue(QueueUrl=queue_url(sqs, server_settings))
    answer = post(collector_only.url, json.dumps({"n": "pageview", "u": "https://example.com/"}))
    assert answer.status_code == 503
    assert collector_only.enqueuer.failed == 1


def test_a_message_whose_body_is_no_event_is_a_counted_drop_not_a_dead_letter(pipeline):
    """What API Gateway can queue that the collector never does: a body cut at the cap."""
    sqs = aws.client("sqs", pipeline.settings)
    now_ms = int(time.time() * 1000)
    cut = '{"n":"pageview","u":"https://example.com/","p":{"k":"' + "a" * MAX_BODY_UNITS
    for n, body in enumerate([cut, '{"n": "pageview"}', "[]"]):
        message = build_event_message(
            body, {"User-Agent": CHROME_UA}, "203.0.113.9", now_ms, f"bad-{n}"
        )
        sqs.send_message(
            QueueUrl=queue_url(sqs, pipeline.settings), MessageBody=encode_message(message)
        )
    wait_for(lambda: pipeline.drops("-") == {"bad_body": 3})
    dlq = queue_url(sqs, pipeline.settings, pipeline.settings.dlq_name)
    attributes = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"


def test_privacy_no_ip_no_user_agent_no_query_values_at_rest_or_in_logs(pipeline, caplog):
    caplog.set_level(
        logging.DEBUG, logger="pipeline"
    )  # ours (botocore's debug log quotes requests)
    ip, ua = "198.51.100.77", CHROME_UA + " PrivacyProbe/1.0"
    headers = {"User-Agent": ua, "CloudFront-Viewer-Address": f"{ip}:5555"}
    good = {
        "n": "Signup",
        "u": "https://example.com/p?email=me%40mail.com&token=SECRET1&utm_source=nl",
        "r": "https://other.example/?q=SEARCH1",
        "d": "example.com",
        "p": {"plan": "pro"},
    }
    assert post(pipeline.collector.url, json.dumps(good), **headers).status_code == 202
    bad = {**good, "n": ["SECRET2"], "u": "https://example.com/?token=SECRET3"}
    assert post(pipeline.collector.url, json.dumps(bad), **headers).status_code == 400
    assert post(pipeline.collector.url, "SECRET4 not json", **headers).status_code == 400
    wait_for(lambda: len(pipeline.events()) == 1)
    dynamodb = aws.client("dynamodb", pipeline.settings)
    stored = json.dumps(
        [
            dynamodb.scan(TableName=table)["Items"]
            for table in (pipeline.settings.events_table, pipeline.settings.salts_table)
        ],
        default=repr,
    )
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("pipeline"))
    assert "batch: stored=1" in logged  # the consumer's log was captured
    for secret in (ip, "127.0.0.1", ua, "PrivacyProbe", "SECRET", "SEARCH", "email", "token"):
        assert secret not in stored, secret
        assert secret not in logged, secret
    assert pipeline.events()["url"].tolist() == ["example.com/p?utm_source=nl"]


# ---- the Stats API hook --------------------------------------------------------------------


def echo(request: ApiRequest) -> ApiResponse:
    """Answers with what it was called with: the hook's contract, seen from the inside."""
    return json_response(
        200,
        {
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "headers": dict(request.headers),
            "body": request.body.decode(),
            "thread": threading.current_thread().name,
        },
        {"X-From-Api": "yes"},
    )


@pytest.fixture
def api_collector(server_settings, monkeypatch):
    monkeypatch.setattr(collector_module, "API_TIMEOUT", 1.0)
    release = threading.Event()

    def api(request: ApiRequest) -> ApiResponse:
        if request.path == "/api/v2/slow":
            release.wait(5)
        if request.path == "/api/v2/boom":
            raise RuntimeError(f"secret detail {request.query}")
        return echo(request)

    server = start_collector(server_settings, api=api)
    try:
        yield server
    finally:
        release.set()
        server.shutdown()


def test_stats_api_paths_are_answered_by_the_api_callable_in_a_thread(api_collector):
    base = api_collector.url
    got = requests.get(
        f"{base}/api/v1/stats/aggregate?site_id=example.com&metrics=visitors",
        headers={"Authorization": "Bearer KEY", "X-Mixed-Case": "v"},
        timeout=5,
    )
    assert got.status_code == 200 and got.headers["X-From-Api"] == "yes"
    assert got.headers["Access-Control-Allow-Origin"] == "*"
    seen = got.json()
    assert (seen["method"], seen["path"], seen["query"]) == (
        "GET",
        "/api/v1/stats/aggregate",
        "site_id=example.com&metrics=visitors",
    )
    assert (
        seen["headers"]["authorization"] == "Bearer KEY" and seen["headers"]["x-mixed-case"] == "v"
    )
    assert seen["thread"].startswith("collector-api")  # never on the event loop
    body = json.dumps({"site_id": "example.com", "metrics": ["visitors"], "date_range": "7d"})
    posted = requests.post(f"{base}/api/v2/query", data=body, timeout=5).json()
    assert (posted["method"], posted["path"], posted["body"]) == ("POST", "/api/v2/query", body)
    preflight = requests.options(f"{base}/api/v2/query", timeout=5)
    assert (
        preflight.status_code == 204
        and "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    )
    put = requests.put(f"{base}/api/v2/query", timeout=5)
    assert put.status_code == 405 and put.json() == {"error": "Method not allowed"}


def test_a_slow_api_gets_504_and_the_loop_keeps_answering(api_collector):
    started = time.monotonic()
    result: dict = {}
    thread = threading.Thread(
        target=lambda: result.update(
            answer=requests.get(f"{api_collector.url}/api/v2/slow", timeout=10)
        )
    )
    thread.start()
    time.sleep(0.2)
    assert requests.get(f"{api_collector.url}/health", timeout=2).text == "ok"
    thread.join(10)
    answer = result["answer"]
    assert answer.status_code == 504 and "error" in answer.json()
    assert 0.9 < time.monotonic() - started < 5


def test_an_api_exception_is_a_500_logged_by_type_only(api_collector, caplog):
    caplog.set_level(logging.DEBUG, logger="pipeline")
    answer = requests.get(f"{api_collector.url}/api/v2/boom?token=SECRET", timeout=5)
    assert answer.status_code == 500 and answer.json() == {"error": "Internal server error"}
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "RuntimeError" in logged and "SECRET" not in logged and "secret detail" not in logged


def test_without_an_api_the_stats_paths_are_404_json(collector_only):
    for method, path in (("GET", "/api/v1/stats/aggregate"), ("POST", "/api/v2/query")):
        answer = requests.request(method, f"{collector_only.url}{path}", timeout=5)
        assert answer.status_code == 404 and answer.json() == {"error": "Not found"}
    assert requests.get(f"{collector_only.url}/api/v3/query", timeout=5).status_code == 404


def test_a_raw_request_line_for_the_event_api_with_a_body_on_keep_alive(
    collector_only, server_settings
):
    """Two events on one connection: the first body is read exactly, not into the second."""
    one = json.dumps({"n": "pageview", "u": "https://example.com/1"}).encode()
    two = json.dumps({"n": "pageview", "u": "https://example.com/2"}).encode()
    host, port = collector_only.server_address[:2]
    request = b"".join(
        b"POST /api/event HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
        for body in (one, two)
    )
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(request)
        received = b""
        deadline = datetime.now(UTC) + timedelta(seconds=5)
        while received.count(b"HTTP/1.1 202") < 2 and datetime.now(UTC) < deadline:
            received += sock.recv(65536)
    assert received.count(b"HTTP/1.1 202 Accepted") == 2
    assert sorted(m["body"] for m in queued(server_settings)) == sorted(
        [one.decode(), two.decode()]
    )
