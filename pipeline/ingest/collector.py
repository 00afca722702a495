"""The local collector: `GET /pixel` → the contract's message → SQS → the GIF; Plausible's
`POST /api/event` → the same kind of message; `GET /script.js`, the tracking script; and, on
the same origin, the Stats API (`/api/v1/...`, `/api/v2/...`) when given an `api` callable.

The same job API Gateway's SQS integrations do on AWS. It answers the GIF to every pixel
request; the status is 200 only when the message is on the queue (after a few bounded
retries), and 503 otherwise, so a hit is never reported as taken when it was not. The event
API answers as Plausible does: 202 `ok` once queued, 400 with `{"errors": {field: [...]}}`
for a body that is not JSON, not an object, of the wrong types (`event_schema.json`, the
schema API Gateway validates with too) or over `MAX_BODY_UNITS`, never queued; CORS as
Plausible's CORSPlug. Access logs carry no client address, User-Agent or body.

It has to survive hostile traffic on its own, so it is one asyncio loop (a waiting
connection costs a coroutine, not a thread) with h11 parsing HTTP/1.1, and:

- every request's line and headers must arrive within `HEAD_TIMEOUT`, its body within
  `BODY_TIMEOUT` (a slow client can't hold anything for long);
- at most `max_connections` connections: a new one beyond it closes the connection that has
  waited longest for its client (a slow one, never a request being answered), so a flood of
  slow connections can't starve short legitimate requests;
- the blocking SQS call runs in a fixed pool of `SEND_WORKERS` threads;
- bad requests get 400, other methods 405 with `Allow`, a long URI 414, large headers 431, a
  large body 413: with the GIF when the path is `/pixel`, as a browser's `<img>` expects;
- a body on a GET is read and thrown away, never parsed as a request;
- nothing it logs, on any path, carries the client's address.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import h11
from botocore.exceptions import BotoCoreError, ClientError
from jsonschema import Draft4Validator

from pipeline import aws
from pipeline.api.http import ApiRequest, ApiResponse
from pipeline.config import Settings
from pipeline.ingest import tracker
from pipeline.ingest.contract import (
    MAX_BODY_UNITS,
    PIXEL_GIF,
    PIXEL_HEADERS,
    build_event_message,
    build_message,
    encode_message,
)
from pipeline.resources import queue_url

log = logging.getLogger("pipeline.ingest.collector")
SEND_ATTEMPTS = 3

MAX_REQUEST_LINE = 65_536  # bytes, as http.server allowed; a longer request line → 414
MAX_HEADER_BYTES = 65_536  # the header block; larger → 431
MAX_BODY_BYTES = 65_536  # a body (on a GET) is read and dropped up to this; larger → 413
HEAD_TIMEOUT = 5.0  # seconds for the request line and headers, also the keep-alive idle time
BODY_TIMEOUT = 5.0
WRITE_TIMEOUT = 5.0
LINGER_TIMEOUT = 2.0  # after an error reply, read what the client still sends, then close
MAX_CONNECTIONS = 1024
SEND_WORKERS = 16
BACKLOG = 4096  # a burst of connects waits in the kernel, not in SYN retries (1 s, 3 s, ...)
READ_CHUNK = 65_536
ALLOW = "GET, HEAD"
TEXT = {"Content-Type": "text/plain; charset=utf-8"}
JSON = {"Content-Type": "application/json; charset=utf-8"}
EVENT_PATH = "/api/event"
API_PREFIXES = ("/api/v1/", "/api/v2/")
API_TIMEOUT = 30.0  # seconds an `api` call may take before the client gets 504
API_WORKERS = 4  # its own threads: a slow query never holds up the queue's senders
# Plausible's CORS (CORSPlug's defaults, which it uses unchanged): any origin. On a preflight
# also its allowed headers and max age; the methods are the ones served here.
CORS = {
    "access-control-allow-origin": "*",
    "access-control-expose-headers": "",
    "access-control-allow-credentials": "true",
}
PREFLIGHT = {
    **CORS,
    "access-control-max-age": "1728000",
    "access-control-allow-headers": (
        "Authorization,Content-Type,Accept,Origin,User-Agent,DNT,Cache-Control,X-Mx-ReqToken,"
        "Keep-Alive,X-Requested-With,If-Modified-Since,X-CSRF-Token"
    ),
    "access-control-allow-methods": "GET,POST,OPTIONS",
}
EVENT_SCHEMA = json.loads((Path(__file__).with_name("event_schema.json")).read_text())
_EVENT_VALIDATOR = Draft4Validator(EVENT_SCHEMA)
BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class Enqueuer:
    """Sends contract messages to the inbound queue, with a short bounded retry."""

    def __init__(self, settings: Settings, sqs: Any = None, attempts: int = SEND_ATTEMPTS) -> None:
        self._sqs = sqs or aws.client("sqs", settings)
        self._url = queue_url(self._sqs, settings)
        self._attempts = attempts
        self.failed = 0

    def send(self, body: str) -> bool:
        for attempt in range(self._attempts):
            try:
                self._sqs.send_message(QueueUrl=self._url, MessageBody=body)
                return True
            except (ClientError, BotoCoreError) as exc:
                log.warning("enqueue attempt %d failed: %s", attempt + 1, type(exc).__name__)
                time.sleep(0.1 * 2**attempt)
        self.failed += 1
        return False


class RateLimiter:
    """A token bucket per client address, in memory only: `rate` hits a second, `burst` at once.

    A client over its budget gets 429 (with the GIF): one browser, or one script, can't flood
    the queue. Addresses are kept only as long as their bucket is needed, never logged.
    """

    def __init__(
        self, rate: float = 20.0, burst: float = 100.0, max_clients: int = 100_000
    ) -> None:
        self.rate, self.burst, self.max_clients = rate, burst, max_clients
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self.limited = 0

    def allow(self, client: str, now: float | None = None) -> bool:
        if self.rate <= 0:
            return True  # limiting switched off (load tests on this machine)
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, seen = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - seen) * self.rate)
            if len(self._buckets) >= self.max_clients and client not in self._buckets:
                self._buckets.clear()  # a flood of addresses: start over rather than grow
            allowed = tokens >= 1
            self._buckets[client] = (tokens - 1 if allowed else tokens, now)
            if not allowed:
                self.limited += 1
            return allowed


# ---- pure parts: what to answer --------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    close: bool = False


def is_pixel_path(path: str) -> bool:
    return urlsplit(path).path == "/pixel"


def raw_is_pixel(head: bytes) -> bool:
    """Whether an unparsed request head asks for `/pixel` (to answer an error with the GIF)."""
    parts = head.split(b" ", 2)
    if len(parts) < 2:
        return False
    target = parts[1]
    return target == b"/pixel" or target.startswith((b"/pixel?", b"/pixel\r", b"/pixel\n"))


def error_reply(status: int, pixel: bool) -> Reply:
    """An error answer that closes the connection: the GIF for a pixel, short text otherwise."""
    extra = {"Allow": ALLOW} if status == HTTPStatus.METHOD_NOT_ALLOWED else {}
    if pixel:
        return Reply(status, PIXEL_GIF, {**PIXEL_HEADERS, **extra}, close=True)
    return Reply(status, HTTPStatus(status).phrase.encode(), {**TEXT, **extra}, close=True)


def oversize_status(target: bytes, headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """414 / 431 for a request that was parsed whole but is over our limits."""
    if len(target) > MAX_REQUEST_LINE:
        return HTTPStatus.REQUEST_URI_TOO_LONG
    if sum(len(name) + len(value) + 4 for name, value in headers) > MAX_HEADER_BYTES:
        return HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
    return None


class HeadMeter:
    """Counts the bytes of a request head as they arrive: 414 or 431 as soon as one is over."""

    def __init__(self) -> None:
        self.size = 0
        self.line: int | None = None  # length of the request line once its end has arrived

    def feed(self, chunk: bytes) -> int | None:
        if self.line is None:
            end = chunk.find(b"\n")
            if end >= 0:
                self.line = self.size + end
        self.size += len(chunk)
        if (self.line if self.line is not None else self.size) > MAX_REQUEST_LINE:
            return HTTPStatus.REQUEST_URI_TOO_LONG
        if self.line is not None and self.size - self.line > MAX_HEADER_BYTES:
            return HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
        return None


def content_length(headers: Iterable[tuple[bytes, bytes]]) -> int:
    for name, value in headers:
        if name == b"content-length":
            return int(value)  # h11 has checked it is digits
    return 0


def header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str:
    found = ""
    for key, value in headers:
        if key == name:
            found = value.decode("latin-1")
    return found


def decoded_headers(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Header names and values as text; browsers send UTF-8, anything else is replaced."""
    return {name.decode("latin-1"): value.decode("utf-8", "replace") for name, value in headers}


# ---- the event API: Plausible's answers ------------------------------------------------

# Plausible's names for the fields in its error answers (its changeset's), by body key.
ERROR_FIELDS = {
    **dict.fromkeys(("n", "name"), "event_name"),
    **dict.fromkeys(("u", "url"), "url"),
    **dict.fromkeys(("d", "domain"), "domain"),
    **dict.fromkeys(("r", "referrer"), "referrer"),
    **dict.fromkeys(("m", "meta", "p", "props"), "props"),
    **dict.fromkeys(("h", "hashMode"), "hash_mode"),
    **dict.fromkeys(("e", "engagement_time"), "engagement_time"),
    **dict.fromkeys(("sd", "scroll_depth"), "scroll_depth"),
    **dict.fromkeys(("w", "screen_width"), "screen_width"),
    **dict.fromkeys(("i", "interactive"), "interactive"),
    **dict.fromkeys(("$", "revenue"), "revenue"),
    "v": "tracker_script_version",
}
NOT_JSON = {"request": ["Unable to parse request body as json"]}
# Plausible's messages: a missing field, a value that is not of its type, one too long.
MISSING = {"event_name": "can't be blank", "url": "is required"}
TOO_LONG = {
    "event_name": "should be at most 120 character(s)",
    "url": "must be a valid url",
    "props": "keys should have at most 300 bytes and values 2000 bytes",
}
INVALID = {"url": "must be a valid url"}


def _refuse_constant(name: str) -> Any:
    raise ValueError(name)  # NaN and Infinity are Python's extension, not JSON


def _field_error(error: Any) -> tuple[str, str] | None:
    """Plausible's field and message for one schema violation at a body key."""
    if not error.path:
        return None
    key = str(error.path[0])
    name = ERROR_FIELDS.get(key, key)
    if error.validator == "maxLength":
        return name, TOO_LONG.get(name, "is invalid")
    if error.validator == "pattern" and name == "domain":
        return name, "can't be blank"  # only blank text fails the domain's pattern
    return name, INVALID.get(name, "is invalid")


def event_errors(raw: bytes) -> tuple[str, dict[str, list[str]] | None]:
    """The body as text, and Plausible's `errors` for it (None when it is a valid event).

    Not JSON (empty, not UTF-8, NaN, too deep), not an object, or over `MAX_BODY_UNITS`
    UTF-16 units is Plausible's "Unable to parse request body as json" (what it answers for
    a body over its own limit too); a field of the wrong type or length names the field.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "", NOT_JSON
    if len(text.encode("utf-16-le", "surrogatepass")) > 2 * MAX_BODY_UNITS:
        return "", NOT_JSON
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return "", NOT_JSON
    if not isinstance(data, dict):
        return "", NOT_JSON
    fields: dict[str, list[str]] = {}
    missing: dict[str, list[str]] = {}
    for error in _EVENT_VALIDATOR.iter_errors(data):
        found = _field_error(error)
        if found is None:  # a required field (its anyOf names which)
            title = error.schema.get("title", "") if isinstance(error.schema, dict) else ""
            missing.setdefault(title, [MISSING.get(title, "is invalid")])
        else:
            fields.setdefault(found[0], [found[1]])
    # A field that is there but wrong says so, not that it is missing (Plausible's cast error).
    errors = {**{k: v for k, v in missing.items() if k not in fields}, **fields}
    return text, errors or None


def errors_reply(errors: dict[str, list[str]], close: bool = False) -> Reply:
    body = json.dumps({"errors": errors}, separators=(",", ":")).encode()
    return Reply(400, body, {**JSON, **CORS}, close=close)


def too_large_reply(path: str, pixel: bool) -> Reply:
    """A body over `MAX_BODY_BYTES`: Plausible's 400 for the event API, 413 elsewhere."""
    if path == EVENT_PATH:
        return errors_reply(NOT_JSON, close=True)
    return error_reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, pixel)


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES)


def api_request(
    method: str, target: str, headers: Iterable[tuple[bytes, bytes]], body: bytes
) -> ApiRequest:
    """The transport-free request the Stats API is called with (header names lower-case)."""
    parts = urlsplit(target)
    lowered = {name.lower(): value for name, value in decoded_headers(headers).items()}
    return ApiRequest(method=method, path=parts.path, query=parts.query, headers=lowered, body=body)


def api_error(status: int, message: str) -> Reply:
    body = json.dumps({"error": message}, separators=(",", ":")).encode()
    return Reply(status, body, {**JSON, **CORS})


def _phrase(status: int) -> str:
    # An `api` may answer a status http.HTTPStatus doesn't name: the line still needs a reason.
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def script_reply(headers: Iterable[tuple[bytes, bytes]]) -> Reply:
    answer = tracker.headers()
    if header(headers, b"if-none-match") == answer["ETag"]:
        return Reply(304, b"", answer)
    if "gzip" in header(headers, b"accept-encoding"):
        return Reply(200, tracker.gzipped(), {**answer, "Content-Encoding": "gzip"})
    return Reply(200, tracker.minified(), answer)


class HeadError(Exception):
    """The request head can't be answered normally: reply `status` and close.

    `pixel` says whether the request was for the pixel, when the head was parsed; None when
    it was not, and the raw bytes must tell."""

    def __init__(self, status: int, pixel: bool | None = None) -> None:
        super().__init__(status)
        self.status, self.pixel = status, pixel


# ---- the server ------------------------------------------------------------------------


def _quiet_loop_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # asyncio's default handler prints the context: transports and sockets whose repr
    # carries the peer's address. Keep the message and the exception's type only.
    exc = context.get("exception")
    if isinstance(exc, asyncio.CancelledError):
        return  # a connection's task cancelled at shutdown: expected
    log.warning(
        "collector: %s%s",
        context.get("message", "error"),
        f" ({type(exc).__name__})" if exc else "",
    )


class Connection:
    """One client connection: request after request until it closes, times out or errs."""

    def __init__(
        self, server: CollectorServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader, self.writer = reader, writer
        peer = writer.get_extra_info("peername")
        self.client_ip = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        self.h11 = h11.Connection(
            h11.SERVER, max_incomplete_event_size=MAX_REQUEST_LINE + MAX_HEADER_BYTES + 4096
        )
        self.method = ""
        self.head_start = b""
        # drain() then waits until every byte is with the kernel, so closing loses nothing.
        writer.transport.set_write_buffer_limits(high=0)

    def abort(self) -> None:
        self.writer.transport.abort()

    def reset(self) -> None:
        """Drop a stalled or evicted connection with a reset, as nginx's
        `reset_timedout_connection` does: no FIN handshake, and no TIME_WAIT left on our side
        that a new connection from the same port could run into (a one-second SYN retry)."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.abort()

    async def serve(self) -> None:
        try:
            while await self._one_request():
                self.h11.start_next_cycle()
        except HeadError as exc:
            await self._reply_and_close(exc.status, exc.pixel)
        except h11.RemoteProtocolError as exc:
            await self._reply_and_close(exc.error_status_hint)
        except TimeoutError:
            self.reset()  # stalled: a slow head, body or reader
        except (ConnectionError, OSError, h11.LocalProtocolError):
            pass  # a client that went away or can't be answered: just close
        except Exception as exc:  # anything else still costs only this connection
            log.error("connection failed: %s", type(exc).__name__)
        finally:
            self.abort()

    async def _one_request(self) -> bool:
        """Read, answer; whether the connection can carry another request."""
        self.server.waiting(self)
        self.method = ""
        try:
            request = await self._read_head()
            if request is None:
                return False
            method, target = request.method.decode("ascii"), request.target.decode("ascii")
            self.method = method
            pixel = is_pixel_path(target)
            status = oversize_status(request.target, request.headers)
            if status:
                raise HeadError(status, pixel)
            path = urlsplit(target).path
            if content_length(request.headers) > MAX_BODY_BYTES:
                reply, body = too_large_reply(path, pixel), b""
            else:
                # Only a POST's body is kept (the event API's, the Stats API's); any other
                # method's is read and dropped, never parsed as a request.
                reply, body = await self._read_body(path, pixel, keep=method == "POST")
        finally:
            self.server.busy(self)
        if reply is None:
            reply = await self._answer(method, target, request.headers, body)
        log.debug("%s %s %s", method, urlsplit(target).path, reply.status)
        await self._send(reply)
        if reply.close or self.h11.our_state is not h11.DONE:
            await self._linger()
            return False
        return self.h11.their_state is h11.DONE

    async def _read_head(self) -> h11.Request | None:
        meter, status = HeadMeter(), None
        # The head's first bytes, kept to tell a pixel request if the head proves unparsable.
        self.head_start = self.h11.trailing_data[0][:64]
        async with asyncio.timeout(HEAD_TIMEOUT):
            while True:
                event = self.h11.next_event()
                if isinstance(event, h11.Request):
                    return event
                if event is not h11.NEED_DATA:
                    return None  # ConnectionClosed, or a state we can't continue from
                if status:  # judged only while the head is incomplete: a body may follow it
                    raise HeadError(status)
                data = await self.reader.read(READ_CHUNK)
                if not data:
                    return None  # the client left, maybe half-way through a head: nothing to say
                self.h11.receive_data(data)
                if len(self.head_start) < 64:
                    self.head_start += data[:64]
                status = meter.feed(data)

    async def _read_body(self, path: str, pixel: bool, keep: bool) -> tuple[Reply | None, bytes]:
        """Read the request's body (kept when `keep`); an error reply if it is too large."""
        size, chunks = 0, []
        async with asyncio.timeout(BODY_TIMEOUT):
            while True:
                event = self.h11.next_event()
                if isinstance(event, h11.EndOfMessage):
                    return None, b"".join(chunks)
                if isinstance(event, h11.Data):
                    size += len(event.data)
                    if size > MAX_BODY_BYTES:
                        return too_large_reply(path, pixel), b""
                    if keep:
                        chunks.append(event.data)
                    continue
                if self.h11.they_are_waiting_for_100_continue:
                    return error_reply(HTTPStatus.EXPECTATION_FAILED, pixel), b""
                data = await self.reader.read(READ_CHUNK)
                if not data:
                    raise ConnectionResetError
                self.h11.receive_data(data)

    async def _answer(
        self, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes = b""
    ) -> Reply:
        parts = urlsplit(target)
        if parts.path == EVENT_PATH or is_api_path(parts.path):
            if method == "OPTIONS":  # a CORS preflight, answered as Plausible's CORSPlug does
                return Reply(204, b"", PREFLIGHT)
            if parts.path == EVENT_PATH:
                if method != "POST":
                    return Reply(
                        405, b"Method Not Allowed", {**TEXT, **CORS, "Allow": "POST, OPTIONS"}
                    )
                return await self._event(body, headers)
            return await self._api(method, target, headers, body)
        if method not in ("GET", "HEAD"):
            return error_reply(HTTPStatus.METHOD_NOT_ALLOWED, parts.path == "/pixel")
        if parts.path == "/pixel":
            if method == "HEAD":
                return Reply(200, PIXEL_GIF, PIXEL_HEADERS)  # the GIF's headers; nothing counted
            return await self._pixel(parts.query, headers)
        if parts.path == "/script.js":
            return script_reply(headers)
        if parts.path == "/health":
            return Reply(200, b"ok", TEXT)
        return Reply(404, b"not found", TEXT)

    async def _pixel(self, raw_query: str, headers: list[tuple[bytes, bytes]]) -> Reply:
        if not self.server.limiter.allow(self.client_ip):
            return Reply(429, PIXEL_GIF, PIXEL_HEADERS)
        queued = await self._enqueue("pixel", build_message, raw_query, headers)
        return Reply(200 if queued else 503, PIXEL_GIF, PIXEL_HEADERS)

    async def _enqueue(
        self,
        kind: str,
        build: Callable[..., dict[str, Any]],
        payload: str,
        headers: list[tuple[bytes, bytes]],
    ) -> bool:
        """Build the contract message of a pixel query or an event body and queue it; False
        when that failed (logged by the failure's type only, never the content)."""
        try:
            message = build(
                payload,
                decoded_headers(headers),
                self.client_ip,
                int(time.time() * 1000),
                str(uuid.uuid4()),
            )
            return await self.server.send(encode_message(message))
        except Exception as exc:
            log.error("%s failed: %s", kind, type(exc).__name__)
            return False

    async def _event(self, raw: bytes, headers: list[tuple[bytes, bytes]]) -> Reply:
        """Plausible's `POST /api/event`: 202 "ok" once queued, 400 and nothing queued for a
        bad body. Whether the event is then stored (its site registered, not a bot...) is
        decided by the consumer, as for a pixel, so every accepted body gets 202."""
        text, errors = event_errors(raw)
        if errors is not None:
            return errors_reply(errors)
        if not self.server.limiter.allow(self.client_ip):
            return Reply(429, b"Too Many Requests", {**TEXT, **CORS})
        if not await self._enqueue("event", build_event_message, text, headers):
            return Reply(503, b"Service Unavailable", {**TEXT, **CORS})
        return Reply(202, b"ok", {**TEXT, **CORS})

    async def _api(
        self, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> Reply:
        """The Stats API on the collector's origin: `api` called in its own threads."""
        api = self.server.api
        if api is None:
            return api_error(404, "Not found")
        if method not in ("GET", "POST"):
            reply = api_error(405, "Method not allowed")
            return Reply(reply.status, reply.body, {**reply.headers, "Allow": "GET, POST, OPTIONS"})
        request = api_request(method, target, headers, body)
        try:
            response = await asyncio.wait_for(self.server.call_api(api, request), API_TIMEOUT)
        except TimeoutError:
            return api_error(504, "The query took too long")
        except Exception as exc:  # the type only: its text could quote the request
            log.error("api failed: %s", type(exc).__name__)
            return api_error(500, "Internal server error")
        return Reply(response.status, bytes(response.body), {**CORS, **dict(response.headers)})

    async def _send(self, reply: Reply) -> None:
        headers = dict(reply.headers)
        headers.setdefault("Content-Length", str(len(reply.body)))
        if reply.close:
            headers["Connection"] = "close"
        data = self.h11.send(
            h11.Response(
                status_code=reply.status,
                headers=list(headers.items()),
                reason=_phrase(reply.status),
            )
        )
        if reply.body and self.method != "HEAD":
            data += self.h11.send(h11.Data(data=reply.body))
        data += self.h11.send(h11.EndOfMessage())
        self.writer.write(data)
        async with asyncio.timeout(WRITE_TIMEOUT):
            await self.writer.drain()  # the write buffer's high mark is 0: all handed to the kernel

    async def _reply_and_close(self, status: int, pixel: bool | None = None) -> None:
        """Answer an unusable request with `status`, if the connection still can, and close."""
        if self.h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        if pixel is None:
            pixel = raw_is_pixel(self.head_start)
        if status not in (400, 413, 414, 431):
            status = HTTPStatus.BAD_REQUEST
        log.debug("bad request %s", status)
        try:
            await self._send(error_reply(status, pixel))
            await self._linger()
        except (TimeoutError, ConnectionError, OSError, h11.LocalProtocolError):
            pass

    async def _linger(self) -> None:
        # Closing with unread bytes makes the kernel send a reset, which can destroy our
        # reply before the client reads it: stop writing, drain their rest for a moment.
        if self.writer.can_write_eof():
            self.writer.write_eof()
        self.server.waiting(self)
        try:
            async with asyncio.timeout(LINGER_TIMEOUT):
                while await self.reader.read(READ_CHUNK):
                    pass
        except (TimeoutError, ConnectionError, OSError):
            pass
        finally:
            self.server.busy(self)


class CollectorServer:
    """The collector's asyncio loop in a daemon thread; `start()`, then `shutdown()`."""

    def __init__(
        self,
        address: tuple[str, int],
        enqueuer: Enqueuer,
        limiter: RateLimiter | None = None,
        max_connections: int = MAX_CONNECTIONS,
        send_workers: int = SEND_WORKERS,
        api: Callable[[ApiRequest], ApiResponse] | None = None,
    ) -> None:
        self.enqueuer = enqueuer
        self.api = api
        self.limiter = limiter or RateLimiter()
        self.max_connections = max_connections
        self.evicted = self.refused = 0
        # Bound here, in the caller's thread: a port in use fails `start_collector` itself.
        self._socket = socket.create_server(address, backlog=BACKLOG)
        self.server_address = self._socket.getsockname()
        self._pool = ThreadPoolExecutor(send_workers, thread_name_prefix="collector-send")
        self._api_pool = ThreadPoolExecutor(API_WORKERS, thread_name_prefix="collector-api")
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(_quiet_loop_errors)
        self._connections: set[Connection] = set()
        # Connections waiting on their client, oldest first (dicts keep insertion order, and
        # a connection is re-inserted each time it starts waiting).
        self._waiting: dict[Connection, None] = {}
        self._closing = False
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="collector", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def connections(self) -> int:
        return len(self._connections)

    def start(self) -> CollectorServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def shutdown(self, timeout: float = 3.0) -> None:
        """Stop accepting, drop every connection, stop the loop; returns within `timeout`."""
        if self._stopping is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop has just closed
                self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._api_pool.shutdown(wait=False, cancel_futures=True)

    async def send(self, body: str) -> bool:
        return await self._loop.run_in_executor(self._pool, self.enqueuer.send, body)

    async def call_api(
        self, api: Callable[[ApiRequest], ApiResponse], request: ApiRequest
    ) -> ApiResponse:
        return await self._loop.run_in_executor(self._api_pool, api, request)

    def waiting(self, connection: Connection) -> None:
        self._waiting.pop(connection, None)
        self._waiting[connection] = None

    def busy(self, connection: Connection) -> None:
        self._waiting.pop(connection, None)

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._serve())
        except Exception as exc:
            log.error("collector stopped: %s", type(exc).__name__)
        finally:
            self._ready.set()
            self._finish_tasks()
            self._loop.close()

    def _finish_tasks(self) -> None:
        # As asyncio.run does: a task left pending when the loop closes is destroyed later,
        # and its clean-up then fails noisily on a closed loop.
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        if pending:
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(
            self._accept, sock=self._socket, limit=READ_CHUNK, backlog=BACKLOG
        )  # asyncio listens again with its own backlog (100) unless told
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            self._closing = True
            # Aborted, every connection's read ends and its task returns on its own (a
            # connection accepted in the same moment is aborted as its task starts).
            deadline = self._loop.time() + 0.5
            while self._connections and self._loop.time() < deadline:
                for connection in list(self._connections):
                    connection.abort()
                await asyncio.sleep(0.01)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closing:
            writer.transport.abort()
            return
        if len(self._connections) >= self.max_connections and not self._evict():
            self.refused += 1
            writer.transport.write(BUSY)
            writer.transport.close()
            return
        connection = Connection(self, reader, writer)
        self._connections.add(connection)
        try:
            await connection.serve()
        finally:
            self._connections.discard(connection)
            self._waiting.pop(connection, None)

    def _evict(self) -> bool:
        """Close the connection that has waited longest on its client; False if none waits.

        A legitimate request waits for its head only as long as one read takes, a slow one
        for seconds: the oldest waiting connection is almost always a slow one."""
        if not self._waiting:
            return False
        oldest = next(iter(self._waiting))
        del self._waiting[oldest]
        oldest.reset()
        self.evicted += 1
        return True


def start_collector(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 0,
    limiter: RateLimiter | None = None,
    max_connections: int = MAX_CONNECTIONS,
    api: Callable[[ApiRequest], ApiResponse] | None = None,
) -> CollectorServer:
    """Start the collector in a daemon thread; stop it with `.shutdown()`. With `api`, it
    also answers `/api/v1/...` and `/api/v2/...` with it (the Stats API)."""
    tracker.minified()  # minify once now, not on the first visitor's request
    server = CollectorServer((host, port), Enqueuer(settings), limiter, max_connections, api=api)
    return server.start()
