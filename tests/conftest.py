"""Shared fixtures: moto in-process for unit tests, moto's HTTP server for integration."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from pipeline.config import Settings
from pipeline.enrich.sites import new_site, register_site
from pipeline.ingest.contract import build_message, encode_message
from pipeline.local.emulator import free_port
from pipeline.resources import create_resources
from tests.servers import running

CHROME_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
FAST_VISIBILITY_TIMEOUT = 1  # seconds: failed messages come back quickly in tests
# The sites the tests send hits for; the browser tests' pages are served on *.test hosts.
TEST_SITES = ("example.com", "site.test")
# The embedded demo stands still in tests (module-scoped apps start before any per-test setup):
# pages are compared with numbers read a moment later. tests/local/test_live.py runs it live.
os.environ["PIPELINE_DEMO_LIVE"] = "off"


def create_test_resources(settings: Settings) -> None:
    create_resources(settings, visibility_timeout=FAST_VISIBILITY_TIMEOUT)
    for domain in TEST_SITES:
        register_site(settings, new_site(domain))


@pytest.fixture(autouse=True)
def clean_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach real AWS or inherit the developer's settings."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "PIPELINE_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("PIPELINE_DEMO_LIVE", "off")


@pytest.fixture
def settings() -> Iterator[Settings]:
    """Fresh resources in moto's in-process mock."""
    with mock_aws():
        current = Settings.for_prefix(f"t{uuid.uuid4().hex[:8]}")
        create_test_resources(current)
        yield current


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's HTTP server in its own process, for tests that go over the network."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    with running(command, f"{url}/moto-api/", **quiet):
        yield url


@pytest.fixture
def server_settings(moto_server: str) -> Settings:
    """Fresh resources (unique names) on the shared moto server."""
    current = Settings.for_prefix(f"i{uuid.uuid4().hex[:8]}", endpoint_url=moto_server)
    create_test_resources(current)
    return current


@pytest.fixture
def message_factory() -> Callable[..., str]:
    """Build a contract message body the way the collector would."""

    def make(
        query: str = "d=example.com&u=https%3A%2F%2Fexample.com%2F",
        headers: dict[str, str] | None = None,
        ip: str = "203.0.113.7",
        received_at_ms: int | None = None,
        request_id: str | None = None,
    ) -> str:
        return encode_message(
            build_message(
                query,
                {"User-Agent": CHROME_UA} if headers is None else headers,
                ip,
                received_at_ms or int(time.time() * 1000),
                request_id or str(uuid.uuid4()),
            )
        )

    return make


@pytest.fixture
def sqs_record() -> Callable[..., dict[str, Any]]:
    """An SQS record as Lambda's event source mapping delivers it."""

    def make(body: str, message_id: str | None = None) -> dict[str, Any]:
        return {
            "messageId": message_id or str(uuid.uuid4()),
            "receiptHandle": "handle",
            "body": body,
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:inbound",
            "awsRegion": "us-east-1",
        }

    return make


@pytest.fixture
def artifacts_dir() -> Path:
    path = Path(__file__).resolve().parent.parent / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


# The longest test files, longest first (seconds on both cores, `pytest --durations`): with
# `--dist loadfile` each file runs on one worker, so starting the long ones first keeps a long
# file from running alone at the end of the run.
LONGEST_FIRST = (
    "tests/dashboard/test_dashboard.py",
    "tests/dashboard/test_dashboard_browser.py",
    "tests/store/test_rollups.py",
    "tests/dashboard/test_dashboard_escaping_browser.py",
    "tests/ingest/test_plausible_tracker_browser.py",
    "tests/infra/test_infra_deploy.py",
    "tests/local/test_local.py",
    "tests/ingest/test_collector_hardening.py",
    "tests/infra/test_lambda_package.py",
    "tests/consume/test_faults.py",
    "tests/ingest/test_tracker.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: n for n, path in enumerate(LONGEST_FIRST)}
    root = Path(__file__).resolve().parent.parent

    def order(item: pytest.Item) -> int:
        return rank.get(item.path.relative_to(root).as_posix(), len(rank))

    items.sort(key=order)  # stable: tests keep their order within a file
