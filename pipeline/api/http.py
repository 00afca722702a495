"""The API's request and response, free of any transport: the local collector and the Lambda
handler both turn what they receive into an `ApiRequest` and send back an `ApiResponse`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ApiRequest:
    method: str  # "GET", "POST", ...
    path: str  # "/api/v2/query", without the query string
    query: str = ""  # the raw query string, undecoded
    headers: Mapping[str, str] = field(default_factory=dict)  # names lower-case
    body: bytes = b""


@dataclass(frozen=True)
class ApiResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


class ApiError(Exception):
    """An answer in Plausible's error shape: `{"error": message}` with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


def json_response(
    status: int, payload: Any, headers: Mapping[str, str] | None = None
) -> ApiResponse:
    """`payload` as compact JSON (NaN is refused: JSON has none)."""
    body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
    return ApiResponse(status, {**JSON_HEADERS, **(headers or {})}, body)


def error_response(error: ApiError, headers: Mapping[str, str] | None = None) -> ApiResponse:
    return json_response(error.status, {"error": error.message}, headers)
