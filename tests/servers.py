"""Servers the tests start: wait for them catching every error, and always stop them.

On a busy machine a server can take long to come up, refuse, reset or time out while it
does; any of those means "not yet", never a crash of the fixture that leaks the process.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import requests

START_TIMEOUT = 90.0  # seconds: generous, for a machine busy with other work


def wait_until_up(
    url: str,
    process: subprocess.Popen | None = None,
    timeout: float = START_TIMEOUT,
    ready: Callable[[requests.Response], bool] = lambda response: response.status_code < 500,
) -> None:
    """Poll `url` until it answers `ready`; fail early if `process` exits. Every request
    error (refused, reset, timed out, bad status line) is a "not yet"."""
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before {url} answered")
        try:
            response = requests.get(url, timeout=2)
            if ready(response):
                return
            last_error = f"status {response.status_code}"
        except requests.RequestException as exc:
            last_error = type(exc).__name__
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s ({last_error})")


def stop(process: subprocess.Popen, grace: float = 10.0) -> None:
    """Terminate, then kill if it will not go; never raises for a process already gone."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=grace)


@contextmanager
def running(command: list[str], url: str, **popen: object) -> Iterator[subprocess.Popen]:
    """Start `command`, wait until `url` answers, and always stop it afterwards."""
    process = subprocess.Popen(command, **popen)
    try:
        wait_until_up(url, process)
        yield process
    finally:
        stop(process)
