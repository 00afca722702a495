"""The local collector: `GET /pixel` → the contract's message → SQS → the GIF, and
`GET /script.js`, the tracking script.

The same job API Gateway's SQS integration does on AWS. It answers the GIF to every pixel
request; the status is 200 only when the message is on the queue (after a few bounded
retries), and 503 otherwise, so a hit is never reported as taken when it was not. Access
logs carry no client address or User-Agent.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from pipeline import aws, tracker
from pipeline.config import Settings
from pipeline.contract import PIXEL_GIF, PIXEL_HEADERS, build_message, encode_message
from pipeline.resources import queue_url

log = logging.getLogger("pipeline.collector")
SEND_ATTEMPTS = 3


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


def _utf8(text: str) -> str:
    """http.server decodes the request line and headers as Latin-1; browsers send UTF-8."""
    try:
        return text.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return text


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


class PixelHandler(BaseHTTPRequestHandler):
    server: CollectorServer
    protocol_version = "HTTP/1.1"
    server_version = "analytics-collector"
    sys_version = ""

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/pixel":
            self._pixel(parts.query)
        elif parts.path == "/script.js":
            self._script()
        elif parts.path == "/health":
            self._send(200, b"ok", {"Content-Type": "text/plain; charset=utf-8"})
        else:
            self._send(404, b"not found", {"Content-Type": "text/plain; charset=utf-8"})

    def do_HEAD(self) -> None:
        self._send(200 if urlsplit(self.path).path in ("/pixel", "/health") else 404, b"", {})

    def _pixel(self, raw_query: str) -> None:
        if not self.server.limiter.allow(self.client_address[0]):
            self._send(429, PIXEL_GIF, PIXEL_HEADERS)
            return
        message = build_message(
            raw_query=_utf8(raw_query),
            headers={name: _utf8(value) for name, value in self.headers.items()},
            source_ip=self.client_address[0],
            received_at_ms=int(time.time() * 1000),
            request_id=str(uuid.uuid4()),
        )
        queued = self.server.enqueuer.send(encode_message(message))
        self._send(200 if queued else 503, PIXEL_GIF, PIXEL_HEADERS)

    def _script(self) -> None:
        headers = tracker.headers()
        if self.headers.get("If-None-Match") == headers["ETag"]:
            self._send(304, b"", headers)
        elif "gzip" in self.headers.get("Accept-Encoding", ""):
            self._send(200, tracker.gzipped(), {**headers, "Content-Encoding": "gzip"})
        else:
            self._send(200, tracker.minified(), headers)

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # The default access log has the client's IP, and the query string carries page URLs:
        # our log keeps the method, path and status only.
        log.debug(
            "%s %s %s", self.command, urlsplit(self.path).path, args[1] if len(args) > 1 else ""
        )


class CollectorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], enqueuer: Enqueuer, limiter: RateLimiter | None = None
    ) -> None:
        super().__init__(address, PixelHandler)
        self.enqueuer = enqueuer
        self.limiter = limiter or RateLimiter()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def start_collector(
    settings: Settings, host: str = "127.0.0.1", port: int = 0, limiter: RateLimiter | None = None
) -> CollectorServer:
    """Start the collector in a daemon thread; stop it with `.shutdown()`."""
    tracker.minified()  # minify once now, not on the first visitor's request
    server = CollectorServer((host, port), Enqueuer(settings), limiter)
    threading.Thread(target=server.serve_forever, name="collector", daemon=True).start()
    return server
