"""No raw IP or User-Agent in any log line: collector, worker, consumer (the Lambda's logs);
nor in the stored events, engagement events included."""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import struct
import time

import pytest
import requests

from tests.conftest import CHROME_UA
from tests.support import Pipeline, wait_for

pytestmark = pytest.mark.integration


def test_pipeline_logs_carry_no_ip_user_agent_or_query(server_settings, caplog):
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="pipeline")
    ip, ua = "198.51.100.201", CHROME_UA + " LogProbe/7.7"
    running = Pipeline(server_settings)
    try:
        for path in ("a", "b"):
            requests.get(
                running.pixel,
                params={"d": "example.com", "u": f"https://example.com/{path}?token=LOGSECRET"},
                headers={"User-Agent": ua, "CloudFront-Viewer-Address": f"{ip}:443"},
                timeout=10,
            )
        # Engagement events: one stored, one dropped (`bad_engagement`) for values that carry
        # the visitor's address, which the drop path must not log either.
        for engaged, depth in (("42000", "80"), (ip, f"{ip}LOGSECRET")):
            requests.get(
                running.pixel,
                params={
                    "d": "example.com",
                    "u": "https://example.com/a?token=LOGSECRET",
                    "n": "engagement",
                    "e": engaged,
                    "sd": depth,
                },
                headers={"User-Agent": ua, "CloudFront-Viewer-Address": f"{ip}:443"},
                timeout=10,
            )
        requests.get(
            running.pixel,
            params={"d": "example.com"},
            headers={"User-Agent": "curl/8.5.0"},
            timeout=10,
        )
        wait_for(lambda: len(running.events()) == 3)
        wait_for(lambda: running.drops() == {"bot": 1, "bad_engagement": 1})
        stored = running.events()
    finally:
        running.close()
    engagement = stored[stored["name"] == "engagement"]
    assert (
        engagement["engagement_ms"].tolist() == [42000]
        and engagement["visitor"].str.len().eq(16).all()
    )
    # No field of any stored event, engagement included, holds the address or the UA.
    dumped = stored.to_csv()
    for secret in (ip, ua, "LogProbe", "LOGSECRET"):
        assert secret not in dumped, secret
    lines = [record.getMessage() for record in caplog.records]
    assert any("batch: stored=" in line for line in lines)  # the consumer did log
    assert any(line.startswith("GET /pixel") for line in lines)  # and so did the collector
    for secret in (ip, "127.0.0.1", ua, "LogProbe", "LOGSECRET", "curl/8.5.0"):
        assert not any(secret in line for line in lines), secret


def test_bad_requests_and_resets_leave_no_client_address_in_logs_or_stderr(
    server_settings, caplog, capfd
):
    caplog.set_level(logging.DEBUG)
    running = Pipeline(server_settings)
    ports: list[int] = []
    try:
        port = running.collector.server_address[1]
        for request in (
            b"GARBAGE\r\n\r\n",
            b"GET /pixel HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n",
            b"GET /pixel?u=" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        ):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                ports.append(sock.getsockname()[1])
                sock.sendall(request)
                with contextlib.suppress(ConnectionError, TimeoutError):
                    while sock.recv(65536):
                        pass
        for n in range(10):  # a tab closed before the GIF came back: the write meets a reset
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            ports.append(sock.getsockname()[1])
            sock.sendall(
                f"GET /pixel?d=example.com&u=https%3A%2F%2Fexample.com%2Fr{n} HTTP/1.1\r\n"
                f"Host: x\r\nUser-Agent: {CHROME_UA}\r\n\r\n".encode()
            )
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        time.sleep(1)
        assert requests.get(f"{running.collector.url}/health", timeout=5).text == "ok"
    finally:
        running.close()
    out, err = capfd.readouterr()
    text = "\n".join([out, err, *(record.getMessage() for record in caplog.records)])
    assert "('127.0.0.1'," not in text
    assert "Exception occurred during processing" not in text
    for port in ports:
        assert not re.search(rf"127\.0\.0\.1\D{{1,4}}{port}\b", text), port
