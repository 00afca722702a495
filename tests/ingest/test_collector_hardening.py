"""The collector under hostile traffic, over raw sockets against `python -m pipeline.local`.

Bad requests get their proper status (with the GIF for a pixel), HEAD and bodies count
nothing, slow connections can't hold the collector, a stop is quick in every state, and the
process's stderr never carries a client's address.
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import struct
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from pipeline.ingest.collector import (
    HEAD_TIMEOUT,
    MAX_HEADER_BYTES,
    MAX_REQUEST_LINE,
    HeadMeter,
    oversize_status,
    raw_is_pixel,
)
from pipeline.ingest.contract import PIXEL_GIF
from tests.conftest import CHROME_UA
from tests.local.test_local import LocalRun, local_mode, pixel, stored_paths, wait_for_paths

SLOW = 300  # slow connections in these tests; bench/slowloris.py opens 2,000
CAP = 100  # the collector's connection cap in the shared process below


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> Iterator[LocalRun]:
    data = tmp_path_factory.mktemp("hardening") / "data"
    with local_mode(data, "--rate-limit", "0", "--max-connections", str(CAP)) as run:
        yield run


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def exchange(port: int, data: bytes, ports: list[int] | None = None) -> tuple[int, dict, bytes]:
    """Send raw bytes, read the answer until the server closes: status, headers, body."""
    with connect(port) as sock:
        if ports is not None:
            ports.append(sock.getsockname()[1])
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (ConnectionResetError, TimeoutError):
            pass  # what arrived before a reset (or the old server's silence) is the answer
    if not received:
        return 0, {}, b""
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return int(status_line.split(" ")[1]), headers, body


def get(target: str, *headers: str, method: str = "GET") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", *headers, "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def reset_after(port: int, data: bytes, ports: list[int]) -> None:
    """Send `data`, then close with a reset (SO_LINGER 0) without reading: a closed tab."""
    sock = connect(port)
    ports.append(sock.getsockname()[1])
    sock.sendall(data)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def open_slow(port: int, count: int) -> list[socket.socket]:
    """Connections that send the start of a request head and then stall."""
    socks = []
    for n in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(f"GET /pixel?d=example.com&u=slow{n} HTTP/1.1\r\nHost: x\r\n".encode())
        socks.append(sock)
    return socks


def closed_by_server(socks: list[socket.socket]) -> list[socket.socket]:
    poller = select.poll()  # not select(): it can't take descriptors above 1,023
    by_fd = {sock.fileno(): sock for sock in socks}
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    closed = []
    for sock in (by_fd[fd] for fd, _ in poller.poll(0)):
        try:
            if not sock.recv(4096, socket.MSG_DONTWAIT):
                closed.append(sock)
        except (ConnectionError, BlockingIOError):
            closed.append(sock)
    return closed


def trickle(socks: list[socket.socket]) -> None:
    """One more header line on each open connection: a per-read timeout never fires."""
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.send(b"X-Slow: 1\r\n", socket.MSG_DONTWAIT)


def close_all(socks: list[socket.socket]) -> None:
    for sock in socks:
        sock.close()


def assert_no_client_address(stderr: str, ports: list[int]) -> None:
    assert "('127.0.0.1'," not in stderr, stderr[-2000:]
    assert "Exception occurred during processing" not in stderr
    for port in ports:
        assert not re.search(rf"127\.0\.0\.1\D{{1,4}}{port}\b", stderr), port


# ---- the pure parts -------------------------------------------------------------------------


def test_the_head_meter_tells_a_long_line_from_large_headers():
    meter = HeadMeter()
    assert meter.feed(b"GET /pixel?" + b"a" * 1000) is None
    assert meter.feed(b"a" * MAX_REQUEST_LINE) == 414
    headers = HeadMeter()
    assert headers.feed(b"GET / HTTP/1.1\r\n") is None
    assert headers.feed(b"X: " + b"y" * MAX_HEADER_BYTES) == 431


def test_oversize_and_pixel_detection_on_whole_and_raw_heads():
    assert oversize_status(b"/" + b"a" * MAX_REQUEST_LINE, []) == 414
    assert oversize_status(b"/pixel", [(b"x", b"y" * MAX_HEADER_BYTES)]) == 431
    assert oversize_status(b"/pixel", [(b"x", b"y")]) is None
    assert raw_is_pixel(b"GET /pixel?d=example.com HTTP/1.1")
    assert raw_is_pixel(b"POST /pixel HTTP/1.1")
    assert not raw_is_pixel(b"GET /pixels HTTP/1.1")
    assert not raw_is_pixel(b"GARBAGE")


# ---- statuses over raw sockets ----------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize(
    ("request_bytes", "gif"),
    [
        pytest.param(b"GARBAGE\r\n\r\n", False, id="no-method-target-version"),
        pytest.param(
            b"GET /pixel?d=example.com HTTP/1.1 extra\r\nHost: x\r\n\r\n", True, id="extra-word"
        ),
        pytest.param(
            b"GET /pixel?d=example.com HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
            True,
            id="bad-header-line",
        ),
        pytest.param(
            b"GET /pixel?d=example.com HTTP/1.1\r\nHost: x\r\nReferer: a\x00b\r\n\r\n",
            True,
            id="nul-in-header",
        ),
        pytest.param(b"GET /pixel?d=\xff HTTP/1.1\r\nHost: x\r\n\r\n", True, id="raw-byte-target"),
    ],
)
def test_a_malformed_request_gets_400(local, request_bytes, gif):
    status, headers, body = exchange(local.collector_port, request_bytes)
    assert status == 400
    assert headers["Connection"] == "close"
    assert (body == PIXEL_GIF) is gif
    assert headers["Content-Type"] == ("image/gif" if gif else "text/plain; charset=utf-8")


@pytest.mark.integration
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "BREW"])
def test_other_methods_get_405_with_allow(local, method):
    status, headers, body = exchange(
        local.collector_port, get("/pixel?d=example.com", "Content-Length: 0", method=method)
    )
    assert (status, headers["Allow"], body) == (405, "GET, HEAD", PIXEL_GIF)
    status, headers, body = exchange(local.collector_port, get("/health", method=method))
    assert (status, headers["Allow"], body) == (405, "GET, HEAD", b"Method Not Allowed")


@pytest.mark.integration
def test_a_long_uri_gets_414_with_the_gif(local):
    target = "/pixel?d=example.com&u=" + "a" * (MAX_REQUEST_LINE + 10)
    status, headers, body = exchange(local.collector_port, get(target))
    assert (status, headers["Content-Type"], body) == (414, "image/gif", PIXEL_GIF)


@pytest.mark.integration
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([f"X-Filler-{n}: {'v' * 1000}" for n in range(80)], id="many"),
        pytest.param([f"X-Huge: {'v' * (MAX_HEADER_BYTES + 10)}"], id="one-huge"),
    ],
)
def test_huge_headers_get_431_with_the_gif(local, headers):
    status, answer, body = exchange(local.collector_port, get("/pixel?d=example.com", *headers))
    assert (status, answer["Content-Type"], body) == (431, "image/gif", PIXEL_GIF)


@pytest.mark.integration
def test_head_pixel_answers_the_gif_headers_and_counts_nothing(local):
    status, headers, body = exchange(
        local.collector_port,
        get("/pixel?d=example.com&u=https%3A%2F%2Fexample.com%2Fhead", method="HEAD"),
    )
    assert (status, headers["Content-Type"], headers["Content-Length"]) == (200, "image/gif", "43")
    assert body == b""
    assert pixel(local, "/after-head").status_code == 200
    wait_for_paths(local.endpoint, ["/after-head"])
    time.sleep(1)  # the HEAD came first: had it been queued, it would be stored by now
    assert "/head" not in stored_paths(local.endpoint)
    assert "/after-head" in stored_paths(local.endpoint)


@pytest.mark.integration
def test_a_body_on_a_get_is_dropped_never_read_as_a_second_request(local):
    smuggled = get("/pixel?d=example.com&u=https%3A%2F%2Fexample.com%2Fsmuggled")
    request = (
        "GET /pixel?d=example.com&u=https%3A%2F%2Fexample.com%2Fwith-body HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nUser-Agent: {CHROME_UA}\r\nContent-Length: {len(smuggled)}\r\n"
        "\r\n"
    ).encode() + smuggled
    with connect(local.collector_port) as sock:  # kept alive: a second answer would show
        sock.sendall(request)
        sock.settimeout(2)
        received = b""
        with contextlib.suppress(TimeoutError):
            while chunk := sock.recv(65536):
                received += chunk
    assert received.count(b"HTTP/1.1 ") == 1
    assert received.startswith(b"HTTP/1.1 200 ") and received.endswith(PIXEL_GIF)
    assert pixel(local, "/after-body").status_code == 200
    wait_for_paths(local.endpoint, ["/after-body"])
    time.sleep(1)
    paths = stored_paths(local.endpoint)
    assert paths.count("/with-body") == 1
    assert "/smuggled" not in paths


@pytest.mark.integration
def test_a_body_too_large_gets_413_and_the_connection_is_closed(local):
    status, headers, body = exchange(
        local.collector_port, get("/pixel?d=example.com", "Content-Length: 10000000")
    )
    assert (status, headers["Connection"], body) == (413, "close", PIXEL_GIF)


# ---- slow connections ---------------------------------------------------------------------------


@pytest.mark.integration
def test_slow_connections_are_capped_and_timed_out_and_legit_hits_still_answered(local):
    port = local.collector_port
    slow = open_slow(port, SLOW)
    try:
        # Over the cap, each new connection closes the one that has waited longest.
        deadline = time.monotonic() + 10
        closed: set[socket.socket] = set()
        while len(closed) < SLOW - CAP and time.monotonic() < deadline:
            closed.update(closed_by_server([s for s in slow if s not in closed]))
            time.sleep(0.1)
        assert len(closed) >= SLOW - CAP

        with ThreadPoolExecutor(4) as pool:
            timings = list(pool.map(lambda n: timed_pixel(port, n), range(20)))
        assert all(status == 200 for status, _ in timings)
        assert max(elapsed for _, elapsed in timings) < 2.0, timings

        # The rest, still trickling header lines, are closed once their head is overdue.
        started = time.monotonic()
        while len(closed) < SLOW and time.monotonic() - started < HEAD_TIMEOUT + 5:
            trickle([s for s in slow if s not in closed])
            closed.update(closed_by_server([s for s in slow if s not in closed]))
            time.sleep(0.5)
        assert len(closed) == SLOW
    finally:
        close_all(slow)
    started = time.monotonic()
    assert requests.get(f"{local.url}/health", timeout=5).text == "ok"
    assert time.monotonic() - started < 5


def timed_pixel(port: int, n: int) -> tuple[int, float]:
    started = time.monotonic()
    response = requests.get(
        f"http://127.0.0.1:{port}/pixel",
        params={"d": "example.com", "u": f"https://example.com/legit{n}"},
        headers={"User-Agent": CHROME_UA},
        timeout=10,
    )
    return response.status_code, time.monotonic() - started


# ---- whole processes: stop and stderr -------------------------------------------------------


@pytest.mark.integration
def test_sigterm_with_slow_connections_and_hits_in_flight_stops_within_5s_keeping_them(
    tmp_path: Path,
):
    data = tmp_path / "data"
    paths = [f"/in-flight-{n}" for n in range(20)]
    with local_mode(data, "--rate-limit", "0") as run:
        slow = open_slow(run.collector_port, SLOW)
        try:
            with ThreadPoolExecutor(4) as pool:
                answers = list(pool.map(lambda p: pixel(run, p).status_code, paths))
            assert answers == [200] * len(paths)
            elapsed = run.stop()  # the worker is mid-poll or mid-batch, the queue not empty
        finally:
            close_all(slow)
        assert elapsed < 5, elapsed
        assert run.process.returncode == 0
        assert "Traceback" not in run.stderr
    with local_mode(data) as again:  # drained before the save: nothing answered 200 is lost
        assert stored_paths(again.endpoint) == sorted(paths)


@pytest.mark.integration
def test_stderr_carries_no_client_address_after_bad_requests_and_resets(tmp_path: Path):
    ports: list[int] = []
    with local_mode(tmp_path / "data", "--rate-limit", "0") as run:
        port = run.collector_port
        legit = get(
            "/pixel?d=example.com&u=https%3A%2F%2Fexample.com%2Flegit", f"User-Agent: {CHROME_UA}"
        )
        assert exchange(port, legit, ports)[0] == 200
        for request in (
            b"GARBAGE\r\n\r\n",
            b"GET /pixel HTTP/1.1 extra\r\nHost: x\r\n\r\n",
            b"GET /pixel HTTP/1.1\r\nHost: x\r\nReferer: \x00\r\n\r\n",
            get("/pixel?u=" + "a" * (MAX_REQUEST_LINE + 10)),
            get("/pixel", f"X-Huge: {'v' * (MAX_HEADER_BYTES + 10)}"),
            get("/pixel", method="POST"),
        ):
            exchange(port, request, ports)
        for n in range(10):  # closed tabs: a reset before the GIF is read
            reset_after(
                port, get(f"/pixel?d=example.com&u=https%3A%2F%2Fexample.com%2Fr{n}"), ports
            )
            reset_after(port, b"GET /pixel?d=example.com HTTP/1.1\r\nHost", ports)
            reset_after(port, get("/script.js"), ports)
        assert "/legit" in wait_for_paths(run.endpoint, ["/legit"])
        assert requests.get(f"{run.url}/health", timeout=5).text == "ok"
        run.stop()
        assert run.process.returncode == 0
        stderr = run.stderr
    assert "batch: stored=" in stderr  # the process did log
    assert_no_client_address(stderr, ports)
