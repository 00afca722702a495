"""`python -m pipeline.local`: one command runs emulator, collector and worker; Ctrl-C stops it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from pipeline import load_events
from pipeline.contract import PIXEL_GIF
from pipeline.emulator import free_port
from tests.conftest import CHROME_UA

pytestmark = pytest.mark.integration


def test_local_mode_collects_a_hit_and_stops_cleanly_on_ctrl_c():
    emulator_port, collector_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline.local",
            "--emulator-port",
            str(emulator_port),
            "--collector-port",
            str(collector_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        while not any(line.startswith("AWS_ENDPOINT_URL=") for line in lines):
            line = process.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        endpoint = f"http://127.0.0.1:{emulator_port}"
        assert f"AWS_ENDPOINT_URL={endpoint}\n" in lines
        assert any(f"http://127.0.0.1:{collector_port}/pixel" in line for line in lines)

        response = requests.get(
            f"http://127.0.0.1:{collector_port}/pixel",
            params={"d": "example.com", "u": "https://example.com/local"},
            headers={"User-Agent": CHROME_UA},
            timeout=10,
        )
        assert (response.status_code, response.content) == (200, PIXEL_GIF)
        now = datetime.now(UTC)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            frame = load_events(
                "example.com",
                now - timedelta(minutes=5),
                now + timedelta(minutes=5),
                endpoint_url=endpoint,
            )
            if len(frame):
                break
            time.sleep(0.3)
        assert frame["path"].tolist() == ["/local"]

        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
        assert process.returncode == 0
        assert "stopped" in output and "Traceback" not in output
    finally:
        if process.poll() is None:
            process.kill()
