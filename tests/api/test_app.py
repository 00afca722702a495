"""The Stats API app over moto: routes, Bearer keys, Plausible's errors, the rate limit, logs,
and the Lambda proxy handler."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.api import app, keys
from pipeline.api.http import ApiRequest
from pipeline.consume.consumer import Consumer
from pipeline.enrich.sites import remove_site

IP = "203.0.113.7"
SECRET_PAGE = "/private-area-9f3c"


def v2(key: str | None, body: object, raw: bytes | None = None) -> ApiRequest:
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    data = raw if raw is not None else json.dumps(body).encode()
    return ApiRequest("POST", "/api/v2/query", "", headers, data)


def v1(key: str | None, query: str, path: str = "/api/v1/stats/aggregate") -> ApiRequest:
    headers = {"authorization": f"Bearer {key}"} if key is not None else {}
    return ApiRequest("GET", path, query, headers)


def answer(api, request) -> tuple[int, object]:
    response = api(request)
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["Cache-Control"] == "no-store"
    return response.status, json.loads(response.body)


QUERY = {"site_id": "example.com", "metrics": ["visitors", "pageviews"], "date_range": "day"}


@pytest.fixture
def key(settings) -> str:
    return keys.create_key(settings, "example.com")


@pytest.fixture
def api(settings):
    return app.StatsApi(settings, hourly_limit=5)


def test_unknown_routes_and_methods_are_404_without_any_key(api):
    for request in (
        ApiRequest("GET", "/api/v2/nothing"),
        ApiRequest("GET", "/api/v2/query"),  # the query is POST only, as Plausible's router
        ApiRequest("POST", "/api/v1/stats/aggregate"),
        ApiRequest("GET", "/api/v1/stats"),
    ):
        assert answer(api, request) == (404, {"error": "Not found"})


def test_a_missing_or_malformed_authorization_is_plausibles_401(api, key):
    missing = (401, {"error": app.MISSING_KEY})
    assert answer(api, v2(None, QUERY)) == missing
    assert answer(api, v1(None, "site_id=example.com")) == missing
    basic = ApiRequest("GET", "/api/v1/stats/aggregate", "site_id=example.com",
                       {"authorization": f"Basic {key}"})  # fmt: skip
    assert answer(api, basic) == missing
    assert app.MISSING_KEY.startswith("Missing API key. Please use a valid Plausible API key")


def test_wrong_revoked_and_other_sites_keys_are_401(settings, api, key):
    invalid = (401, {"error": app.INVALID_KEY})
    assert answer(api, v2("x" * 64, QUERY)) == invalid
    other = keys.create_key(settings, "site.test")
    assert answer(api, v2(other, QUERY)) == invalid  # a real key, for another site
    assert answer(api, v1(other, "site_id=example.com&metrics=visitors")) == invalid
    revoked = keys.create_key(settings, "example.com")
    keys.revoke_key(settings, "example.com", revoked[:6])
    assert answer(app.StatsApi(settings), v2(revoked, QUERY)) == invalid
    assert "Invalid API key or site ID" in app.INVALID_KEY


def test_a_removed_sites_keys_read_nothing(settings, api, key):
    remove_site(settings, "example.com")
    assert answer(api, v2(key, QUERY)) == (401, {"error": app.INVALID_KEY})


def test_missing_site_id_is_400_and_bad_bodies_are_400(api, key):
    missing_site = (400, {"error": app.MISSING_SITE})
    assert answer(api, v2(key, {"metrics": ["visitors"]})) == missing_site
    assert answer(api, v1(key, "metrics=visitors")) == missing_site
    bad_json = (400, {"error": app.BAD_JSON})
    for raw in (b"{not json", b"[1, 2]", b'"site_id"', b"\xff\xfe", b""):
        # Plausible parses the body before it looks at the key: no key needed for this 400.
        assert answer(api, v2(None, None, raw=raw)) == bad_json
    status, body = answer(api, v2(key, None, raw=b" " * (app.MAX_BODY_BYTES + 1)))
    assert status == 413 and "too large" in body["error"]
    assert answer(api, v2(key, {**QUERY, "site_id": 7})) == (401, {"error": app.INVALID_KEY})


def test_the_rate_limit_answers_429_after_the_configured_number(settings, key):
    clock = [1_800_000_000.0]
    api = app.StatsApi(settings, hourly_limit=3, wall_clock=lambda: clock[0])
    statuses = [api(v1(key, "metrics=visitors")).status for _ in range(3)]
    assert statuses == [400, 400, 400]  # counted even when the query is refused, as Plausible
    status, body = answer(api, v1(key, "metrics=visitors"))
    assert status == 429
    assert body == {
        "error": "Too many API requests. Your API key is limited to 3 requests per hour. "
        "The operator of this server can raise it (PIPELINE_API_RATE_LIMIT)."
    }
    # Another process (a second Lambda container) shares the count.
    assert (
        app.StatsApi(settings, hourly_limit=3, wall_clock=lambda: clock[0])(
            v1(key, "metrics=visitors")
        ).status
        == 429
    )
    # Another key has its own count; the next hour starts afresh.
    assert api(v1(keys.create_key(settings, "example.com"), "metrics=visitors")).status == 400
    clock[0] += 3600
    assert api(v1(key, "metrics=visitors")).status == 400
    # Unknown keys are refused before counting: they cannot use up anyone's allowance.
    assert answer(api, v2("y" * 64, QUERY))[0] == 401


def test_the_limit_defaults_to_plausibles_and_reads_the_environment(settings, monkeypatch):
    assert app.StatsApi(settings).hourly_limit == 600
    monkeypatch.setenv("PIPELINE_API_RATE_LIMIT", "42")
    assert app.StatsApi(settings).hourly_limit == 42


def test_store_failures_are_a_503_without_details(settings, key, caplog):
    api = app.StatsApi(settings.with_overrides(sites_table="no-such-table"))
    status, body = answer(api, v2(key, QUERY))
    assert status == 503 and "no-such-table" not in body["error"]
    assert "ResourceNotFoundException" in caplog.text or "ClientError" in caplog.text


def store_pageviews(settings, message_factory, sqs_record, paths_and_ips) -> None:
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    records = [
        sqs_record(
            message_factory(
                query=f"d=example.com&u=https%3A%2F%2Fexample.com{path}",
                ip=ip,
                received_at_ms=now_ms - 60_000,
            )
        )
        for path, ip in paths_and_ips
    ]
    assert Consumer(settings).process(records).stored == len(records)


def test_a_query_with_a_good_key_answers_and_nothing_private_is_logged(
    settings, key, message_factory, sqs_record, caplog
):
    from pipeline import load_events, metrics

    store_pageviews(
        settings, message_factory, sqs_record,
        [(SECRET_PAGE, IP), ("/", IP), ("/", "198.51.100.9")],
    )  # fmt: skip
    caplog.set_level(logging.DEBUG)
    api = app.StatsApi(settings)
    status, body = answer(api, v2(key, QUERY))
    assert status == 200, body
    now = datetime.now(UTC)
    events = load_events("example.com", now - timedelta(days=1), now + timedelta(minutes=1),
                         settings=settings)  # fmt: skip
    expected = metrics.summary(events)
    assert body["results"][0]["metrics"] == [expected.visitors, expected.pageviews]
    assert body["results"][0]["metrics"] == [2, 3]
    status, body = answer(
        api, v2(key, {**QUERY, "metrics": ["pageviews"], "dimensions": ["event:page"]})
    )
    assert status == 200
    assert {tuple(r["dimensions"]): r["metrics"] for r in body["results"]} == {
        ("/",): [2],
        (SECRET_PAGE,): [1],
    }
    api(v2(key, {**QUERY, "metrics": ["nonsense"]}))  # a 400 from the query parser
    api(v1(key, f"site_id=example.com&filters=event:page=={SECRET_PAGE}&metrics=visitors"))
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("pipeline.api"))
    assert "stats api v2 200" in logged
    # Every logger at DEBUG (boto3's included) never sees the key or an address; the API's own
    # lines name no page or parameter either (boto3's debug lines show stored items, by design).
    for private in (key, key[:16], IP, "198.51.100.9"):
        assert private not in caplog.text
    for private in (SECRET_PAGE, "nonsense", "site_id", "example.com"):
        assert private not in logged


def test_the_v1_routes_answer_with_a_good_key(settings, key, message_factory, sqs_record):
    store_pageviews(settings, message_factory, sqs_record, [("/", IP), ("/a", IP)])
    api = app.StatsApi(settings)
    status, body = answer(api, v1(key, "site_id=example.com&period=day&metrics=pageviews"))
    assert status == 200 and body["results"]["pageviews"]["value"] == 2
    status, body = answer(
        api, v1(key, "site_id=example.com", path="/api/v1/stats/realtime/visitors")
    )
    assert (status, body) == (200, 1)
    status, body = answer(
        api,
        v1(key, "site_id=example.com&period=day&property=event:page",
           path="/api/v1/stats/breakdown"),
    )  # fmt: skip
    assert status == 200 and {r["page"] for r in body["results"]} == {"/", "/a"}


def proxy_event(key: str, body: dict) -> dict:
    return {
        "resource": "/api/v2/query",
        "path": "/api/v2/query",
        "httpMethod": "POST",
        "headers": {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "requestContext": {"identity": {"sourceIp": IP}, "stage": "v1"},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def test_the_proxy_event_becomes_a_request_and_back():
    event = proxy_event("k", {"a": 1}) | {
        "path": "/api/v1/stats/aggregate",
        "httpMethod": "get",
        "multiValueQueryStringParameters": {"site_id": ["example.com"], "metrics": ["a,b"]},
        "queryStringParameters": {"site_id": "example.com", "metrics": "a,b"},
    }
    request = app.request_from_proxy_event(event)
    assert (request.method, request.path) == ("GET", "/api/v1/stats/aggregate")
    assert app.v1_params(request) == {"site_id": "example.com", "metrics": "a,b"}
    assert request.headers["authorization"] == "Bearer k"
    encoded = app.request_from_proxy_event(
        proxy_event("k", {}) | {"body": "eyJhIjoxfQ==", "isBase64Encoded": True}
    )
    assert encoded.body == b'{"a":1}'


def test_the_lambda_handler_answers_a_proxy_event(settings, key, monkeypatch):
    monkeypatch.setenv("PIPELINE_SITES_TABLE", settings.sites_table)
    monkeypatch.setenv("PIPELINE_EVENTS_TABLE", settings.events_table)
    monkeypatch.setattr(app, "_lambda_api", None)
    response = app.lambda_handler(proxy_event("z" * 64, QUERY), None)
    assert response == {
        "statusCode": 401,
        "headers": {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"},
        "body": json.dumps({"error": app.INVALID_KEY}, separators=(",", ":")),
        "isBase64Encoded": False,
    }
    broken = proxy_event(key, QUERY) | {"body": "%%%", "isBase64Encoded": True}
    assert app.lambda_handler(broken, None)["statusCode"] == 400
    response = app.lambda_handler(proxy_event(key, QUERY), None)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["results"][0]["metrics"] == [0, 0]
