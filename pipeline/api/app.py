"""The Stats API's front door: routes, Bearer keys, the per-key rate limit and Plausible's errors.

    POST /api/v2/query                   → pipeline.api.v2.query(body, source)
    GET  /api/v1/stats/aggregate         → pipeline.api.v1.aggregate(params, source)
    GET  /api/v1/stats/timeseries        → pipeline.api.v1.timeseries(params, source)
    GET  /api/v1/stats/breakdown         → pipeline.api.v1.breakdown(params, source)
    GET  /api/v1/stats/realtime/visitors → pipeline.api.v1.realtime_visitors(params, source)

The checks run in Plausible's order (its AuthorizePublicAPI plug): route (404), body (400), key
(401), rate limit (429), `site_id` (400 when missing, 401 when the key is not that site's), then
the query itself (400 with the query parser's message). Every error is `{"error": message}`;
the 401/429/400 sentences are Plausible's own, so clients that show them read the same. An
unexpected failure is a 500 `{"error": "internal server error"}`, logged by its type only:
nothing from the request (key, path, parameters, body) reaches a log line.

`handle(request, settings)` serves the local collector (`api=`); `lambda_handler` is the same
behind API Gateway's Lambda proxy integration on AWS.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from botocore.exceptions import BotoCoreError, ClientError

from pipeline import aws
from pipeline.api import keys
from pipeline.api.http import ApiError, ApiRequest, ApiResponse, error_response, json_response
from pipeline.config import Settings
from pipeline.enrich.sites import SiteRegistry
from pipeline.errors import PipelineError
from pipeline.stack import settings_from_env

log = logging.getLogger("pipeline.api")

V2_QUERY = "/api/v2/query"
V1_ROUTES = {
    "/api/v1/stats/aggregate": "aggregate",
    "/api/v1/stats/timeseries": "timeseries",
    "/api/v1/stats/breakdown": "breakdown",
    "/api/v1/stats/realtime/visitors": "realtime_visitors",
}
MAX_BODY_BYTES = 64 * 1024  # a v2 query is a few hundred bytes; the collector caps at this too
MAX_QUERY_CHARS = 8 * 1024
# Plausible's sentences (lib/plausible_web/plugs/authorize_public_api.ex).
MISSING_KEY = "Missing API key. Please use a valid Plausible API key as a Bearer Token."
INVALID_KEY = (
    "Invalid API key or site ID. Please make sure you're using a valid API key with access "
    "to the site you've requested."
)
MISSING_SITE = "Missing site ID. Please provide the required site_id parameter with your request."
NOT_FOUND = "Not found"
BAD_JSON = "Invalid request body: it must be a JSON object."
TOO_LARGE = f"Request body too large: at most {MAX_BODY_BYTES // 1024} KiB."
INTERNAL = "internal server error"
UNAVAILABLE = "The statistics store is unavailable. Please try again shortly."
# No caching anywhere on the way: the numbers change by the minute, and the answer is per key.
NO_STORE = {"Cache-Control": "no-store"}


def too_many(limit: int) -> str:
    # Plausible's first two sentences; its third ("contact us") names its own support.
    return (
        f"Too many API requests. Your API key is limited to {limit} requests per hour. "
        f"The operator of this server can raise it ({keys.ENV_RATE_LIMIT})."
    )


def route_of(request: ApiRequest) -> str | None:
    """The endpoint's name, or None for a path or method the API has no route for."""
    if request.path == V2_QUERY:
        return "v2" if request.method == "POST" else None
    name = V1_ROUTES.get(request.path)
    return name if name and request.method == "GET" else None


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of `Authorization: Bearer <token>` (headers lower-cased), or None."""
    value = headers.get("authorization", "")
    if not value.startswith("Bearer "):
        return None
    return value[len("Bearer ") :].strip() or None


def v2_body(request: ApiRequest) -> dict[str, Any]:
    if len(request.body) > MAX_BODY_BYTES:
        raise ApiError(413, TOO_LARGE)
    try:
        body = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, BAD_JSON) from None
    if not isinstance(body, dict):
        raise ApiError(400, BAD_JSON)
    return body


def v1_params(request: ApiRequest) -> dict[str, str]:
    """The query string as a dict (a repeated name: the last value, as Phoenix reads it)."""
    if len(request.query) > MAX_QUERY_CHARS:
        raise ApiError(400, f"Query string too long: at most {MAX_QUERY_CHARS} characters.")
    return dict(parse_qsl(request.query, keep_blank_values=True))


class StatsApi:
    """The API for one deployment: a callable from `ApiRequest` to `ApiResponse`.

    Its key and site look-ups are cached (`keys.CACHE_SECONDS`), so keep one instance for the
    life of the process; the rate count lives in DynamoDB, shared by every instance.
    """

    def __init__(
        self,
        settings: Settings,
        hourly_limit: int | None = None,
        now: Callable[[], datetime] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.hourly_limit = keys.hourly_limit(os.environ) if hourly_limit is None else hourly_limit
        self._now = now
        self._wall_clock = wall_clock
        self._dynamodb = aws.client("dynamodb", settings)
        self._keys = keys.KeyRegistry(self._dynamodb, settings.sites_table, clock=clock)
        self._sites = SiteRegistry(self._dynamodb, settings.sites_table, clock=clock)

    def __call__(self, request: ApiRequest) -> ApiResponse:
        started = time.perf_counter()
        route = route_of(request)
        try:
            if route is None:
                raise ApiError(404, NOT_FOUND)
            response = json_response(200, self._answer(route, request), NO_STORE)
        except ApiError as exc:
            response = error_response(exc, NO_STORE)
        except (ClientError, BotoCoreError, PipelineError) as exc:
            log.error("stats api: store error %s", type(exc).__name__)
            response = error_response(ApiError(503, UNAVAILABLE), NO_STORE)
        except Exception as exc:  # no traceback and no request data reach the client
            log.error("stats api: unexpected %s", type(exc).__name__)
            response = error_response(ApiError(500, INTERNAL), NO_STORE)
        # Route name and status only: never the key, path, parameters or caller.
        log.info(
            "stats api %s %d %.0f ms",
            route or "unknown-route",
            response.status,
            (time.perf_counter() - started) * 1000,
        )
        return response

    def _answer(self, route: str, request: ApiRequest) -> Any:
        body = v2_body(request) if route == "v2" else None
        params = v1_params(request) if route != "v2" else {}
        token = bearer_token(request.headers)
        if token is None:
            raise ApiError(401, MISSING_KEY)
        key_site = self._keys.site_of(token)
        if key_site is None:
            raise ApiError(401, INVALID_KEY)
        self._check_rate(token)
        site_id = body.get("site_id") if body is not None else params.get("site_id")
        if site_id is None or site_id == "":
            raise ApiError(400, MISSING_SITE)
        if not isinstance(site_id, str) or site_id.strip().lower() != key_site:
            raise ApiError(401, INVALID_KEY)
        site = self._sites.lookup([key_site]).get(key_site)
        if site is None:  # the site was removed: its keys read nothing (Plausible: 401)
            raise ApiError(401, INVALID_KEY)
        # Imported on first use: a refused request (most of what a public endpoint gets) never
        # loads pandas, which costs a Lambda cold start about a second.
        from pipeline.api import source as sources

        source = sources.StoreSource(
            self.settings, site.domain, site.timezone, now=self._now, dynamodb=self._dynamodb
        )
        if route == "v2":
            from pipeline.api import v2

            return v2.query(body, source)
        from pipeline.api import v1

        return getattr(v1, route)(params, source)

    def _check_rate(self, token: str) -> None:
        count = keys.count_request(
            self._dynamodb, self.settings.sites_table, token, self._wall_clock()
        )
        if count > self.hourly_limit:
            raise ApiError(429, too_many(self.hourly_limit))


_apis: dict[Settings, StatsApi] = {}


def handle(
    request: ApiRequest, settings: Settings, now: Callable[[], datetime] | None = None
) -> ApiResponse:
    """Answer `request` for the deployment at `settings` (one cached `StatsApi` per settings)."""
    if now is not None:
        return StatsApi(settings, now=now)(request)
    api = _apis.get(settings)
    if api is None:
        api = _apis[settings] = StatsApi(settings)
    return api(request)


def request_from_proxy_event(event: Mapping[str, Any]) -> ApiRequest:
    """API Gateway's REST proxy event (payload 1.0) as an `ApiRequest`."""
    multi = event.get("multiValueQueryStringParameters") or {}
    single = event.get("queryStringParameters") or {}
    pairs = [(k, v) for k, values in multi.items() for v in values or []] or list(single.items())
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8")
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    return ApiRequest(
        method=str(event.get("httpMethod", "GET")).upper(),
        path=str(event.get("path", "/")),
        query=urlencode(pairs),
        headers=headers,
        body=raw,
    )


def proxy_response(response: ApiResponse) -> dict[str, Any]:
    return {
        "statusCode": response.status,
        "headers": dict(response.headers),
        "body": response.body.decode("utf-8"),
        "isBase64Encoded": False,
    }


_lambda_api: StatsApi | None = None


def lambda_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The AWS Lambda handler (API Gateway proxy). Settings come from the function's
    environment; the key and site caches live as long as the container."""
    global _lambda_api
    if _lambda_api is None:
        logging.getLogger().setLevel(logging.INFO)
        _lambda_api = StatsApi(settings_from_env())
    try:
        request = request_from_proxy_event(event)
    except (ValueError, TypeError):  # a body marked base64 that is not: never a traceback
        return proxy_response(error_response(ApiError(400, BAD_JSON), NO_STORE))
    return proxy_response(_lambda_api(request))
