"""No raw IP or User-Agent in any log line: collector, worker, consumer (the Lambda's logs)."""

from __future__ import annotations

import logging

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
        requests.get(
            running.pixel,
            params={"d": "example.com"},
            headers={"User-Agent": "curl/8.5.0"},
            timeout=10,
        )
        wait_for(lambda: len(running.events()) == 2)
    finally:
        running.close()
    lines = [record.getMessage() for record in caplog.records]
    assert any("batch: stored=" in line for line in lines)  # the consumer did log
    assert any(line.startswith("GET /pixel") for line in lines)  # and so did the collector
    for secret in (ip, "127.0.0.1", ua, "LogProbe", "LOGSECRET", "curl/8.5.0"):
        assert not any(secret in line for line in lines), secret
