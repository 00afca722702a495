"""`python -m pipeline.local`: one command runs emulator, collector and worker; Ctrl-C stops it;
its tables survive a restart (`--data-dir`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from pipeline import aws, load_events
from pipeline.ingest.contract import PIXEL_GIF
from pipeline.local.emulator import (
    SNAPSHOT_FILE,
    decode_item,
    dump_tables,
    encode_item,
    free_port,
    is_expired,
    read_snapshot,
    restore_tables,
    write_snapshot,
)
from tests.conftest import CHROME_UA

ROOT = Path(__file__).resolve().parents[2]
STARTUP_S = 90  # a busy machine: moto, tables, the tracker's minification


class LocalRun:
    """`python -m pipeline.local` in a subprocess on free loopback ports, stderr in a file."""

    def __init__(self, data_dir: Path, *extra: str) -> None:
        self.emulator_port, self.collector_port = free_port(), free_port()
        data_dir.mkdir(parents=True, exist_ok=True)
        self.stderr_path = data_dir.parent / f"stderr-{self.collector_port}.log"
        self._stderr = self.stderr_path.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pipeline.local",
                "--emulator-port",
                str(self.emulator_port),
                "--collector-port",
                str(self.collector_port),
                "--data-dir",
                str(data_dir),
                *extra,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.lines: list[str] = []
        # Read stdout all along, so a full pipe never blocks the process.
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.emulator_port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.collector_port}"

    @property
    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_S
        while not any(line.startswith("AWS_ENDPOINT_URL=") for line in self.lines):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("local mode did not start:\n" + self.stderr[-3000:])
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> float:
        """Send `sig`; seconds until the process has exited."""
        started = time.monotonic()
        self.process.send_signal(sig)
        self.process.wait(timeout=timeout)
        return time.monotonic() - started

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self._stderr.close()


@contextmanager
def local_mode(data_dir: Path, *extra: str) -> Iterator[LocalRun]:
    """Started and ready; always stopped at the end, whatever happened."""
    run = LocalRun(data_dir, *extra)
    try:
        run.wait_ready()
        yield run
    finally:
        run.close()


def pixel(run: LocalRun, path: str) -> requests.Response:
    return requests.get(
        f"{run.url}/pixel",
        params={"d": "example.com", "u": f"https://example.com{path}"},
        headers={"User-Agent": CHROME_UA},
        timeout=10,
    )


def stored_paths(endpoint: str) -> list[str]:
    now = datetime.now(UTC)
    frame = load_events(
        "example.com", now - timedelta(hours=1), now + timedelta(hours=1), endpoint_url=endpoint
    )
    return sorted(frame["path"].tolist()) if len(frame) else []


def wait_for_paths(endpoint: str, expected: list[str], timeout: float = 30) -> list[str]:
    """Every stored path, once all of `expected` are among them (or the time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        found = stored_paths(endpoint)
        if set(expected) <= set(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


@pytest.mark.integration
def test_local_mode_collects_a_hit_and_stops_cleanly_on_ctrl_c(tmp_path):
    with local_mode(tmp_path / "data") as run:
        assert f"AWS_ENDPOINT_URL={run.endpoint}\n" in run.lines
        assert any(f"{run.url}/pixel" in line for line in run.lines)
        response = pixel(run, "/local")
        assert (response.status_code, response.content) == (200, PIXEL_GIF)
        assert wait_for_paths(run.endpoint, ["/local"]) == ["/local"]
        run.stop(signal.SIGINT)
        assert run.process.returncode == 0
        assert "stopped" in "".join(run.lines) and "Traceback" not in run.stderr


@pytest.mark.integration
def test_local_data_survives_a_clean_restart(tmp_path):
    data = tmp_path / "data"
    with local_mode(data) as run:
        for path in ("/kept-1", "/kept-2"):
            assert pixel(run, path).status_code == 200
        assert wait_for_paths(run.endpoint, ["/kept-1", "/kept-2"]) == ["/kept-1", "/kept-2"]
        run.stop()
        assert run.process.returncode == 0
    assert (data / SNAPSHOT_FILE).exists()
    with local_mode(data) as again:
        assert any("items loaded" in line and "(0 items" not in line for line in again.lines)
        assert stored_paths(again.endpoint) == ["/kept-1", "/kept-2"]
        assert pixel(again, "/after").status_code == 200
        expected = ["/after", "/kept-1", "/kept-2"]
        assert wait_for_paths(again.endpoint, expected) == expected


@pytest.mark.integration
def test_a_kill_9_loses_at_most_what_came_after_the_last_periodic_save(tmp_path):
    data = tmp_path / "data"
    with local_mode(data, "--save-every", "1") as run:
        assert pixel(run, "/before-kill").status_code == 200
        assert wait_for_paths(run.endpoint, ["/before-kill"]) == ["/before-kill"]
        snapshot = data / SNAPSHOT_FILE
        deadline = time.monotonic() + 30
        while "/before-kill" not in (snapshot.read_text() if snapshot.exists() else ""):
            assert time.monotonic() < deadline, "no periodic save"
            time.sleep(0.2)
        run.stop(signal.SIGKILL)
    with local_mode(data) as again:
        assert stored_paths(again.endpoint) == ["/before-kill"]


@pytest.mark.integration
def test_an_unreadable_snapshot_stops_the_start_and_is_left_as_it_was(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / SNAPSHOT_FILE).write_text("{not json")
    run = LocalRun(data)
    try:
        run.process.wait(timeout=STARTUP_S)
        assert run.process.returncode == 1
        assert "cannot start" in run.stderr
        assert (data / SNAPSHOT_FILE).read_text() == "{not json"
    finally:
        run.close()


# ---- the snapshot functions, against moto in-process ---------------------------------------


def test_items_of_every_type_survive_the_json_round_trip():
    item = {
        "s": {"S": "é😀"},
        "n": {"N": "1.5"},
        "b": {"B": b"\x00\xffsalt"},
        "bs": {"BS": [b"\x01", b"\x02"]},
        "m": {"M": {"inner": {"B": b"\x03"}, "l": {"L": [{"S": "x"}, {"BOOL": True}]}}},
        "null": {"NULL": True},
        "ss": {"SS": ["a", "b"]},
    }
    text = json.dumps(encode_item(item))
    assert decode_item(json.loads(text)) == item


def test_expired_items_are_neither_saved_nor_restored():
    assert is_expired({"expires_at": {"N": "100"}}, now_s=100)
    assert not is_expired({"expires_at": {"N": "101"}}, now_s=100)
    assert not is_expired({"pk": {"S": "no ttl"}}, now_s=100)


def test_tables_dump_and_restore_into_a_fresh_emulator(settings, tmp_path):
    dynamodb = aws.client("dynamodb", settings)
    live = {"day": {"S": "2026-11-27"}, "salt": {"B": b"\x01" * 32}, "expires_at": {"N": "2000"}}
    gone = {"day": {"S": "2026-11-20"}, "salt": {"B": b"\x02" * 32}, "expires_at": {"N": "999"}}
    for item in (live, gone):
        dynamodb.put_item(TableName=settings.salts_table, Item=item)
    tables = dynamodb.list_tables()["TableNames"]
    before = {name: dynamodb.scan(TableName=name)["Items"] for name in tables}
    snapshot = dump_tables(dynamodb, now_s=1000)
    path = tmp_path / SNAPSHOT_FILE
    write_snapshot(snapshot, path)
    assert [p.name for p in tmp_path.iterdir()] == [SNAPSHOT_FILE]  # no temp file left behind

    for name in tables:
        dynamodb.delete_table(TableName=name)
    restored = restore_tables(dynamodb, read_snapshot(path), now_s=1000)
    after = {name: dynamodb.scan(TableName=name)["Items"] for name in tables}
    assert after == {**before, settings.salts_table: [live]}  # the expired salt stays gone
    assert restored == sum(len(items) for items in after.values())


def test_a_failed_save_leaves_the_previous_snapshot_whole(tmp_path):
    path = tmp_path / SNAPSHOT_FILE
    write_snapshot({"version": 1, "saved_at": 1, "tables": {}}, path)
    with pytest.raises(TypeError):
        write_snapshot({"version": 1, "tables": {"t": object()}}, path)
    assert read_snapshot(path) == {"version": 1, "saved_at": 1, "tables": {}}
    assert [p.name for p in tmp_path.iterdir()] == [SNAPSHOT_FILE]


def test_the_default_data_dir_is_in_the_project_and_ignored_by_git():
    from pipeline.local.mode import DEFAULT_DATA_DIR

    assert DEFAULT_DATA_DIR == ROOT / ".local-data"
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(DEFAULT_DATA_DIR / "dynamodb.json")], cwd=ROOT
    )
    assert ignored.returncode == 0


@pytest.mark.integration
def test_local_mode_serves_the_stats_api_and_says_where(tmp_path):
    with local_mode(tmp_path / "data") as run:
        api_url = f"{run.url}/api/v2/query"
        assert any(line.startswith("Stats API:") and api_url in line for line in run.lines)
        how = next(line for line in run.lines if line.startswith("API key:"))
        assert f"AWS_ENDPOINT_URL={run.endpoint} python -m pipeline.sites key create" in how
        # The key made the way the printed line says, by the command in another process.
        made = subprocess.run(
            [sys.executable, "-m", "pipeline.sites", "key", "create", "example.com"],
            cwd=ROOT,
            env={**os.environ, "AWS_ENDPOINT_URL": run.endpoint},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert made.returncode == 0, made.stderr
        key = made.stdout.strip().splitlines()[-1]
        for path in ("/api-a", "/api-b"):
            assert pixel(run, path).status_code == 200
        assert wait_for_paths(run.endpoint, ["/api-a", "/api-b"]) == ["/api-a", "/api-b"]
        query = {
            "site_id": "example.com",
            "metrics": ["visitors", "pageviews"],
            "date_range": "day",
        }
        refused = requests.post(api_url, json=query, timeout=30)
        assert (refused.status_code, refused.json()["error"][:15]) == (401, "Missing API key")
        answered = requests.post(
            api_url, json=query, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        assert answered.status_code == 200, answered.text
        assert answered.json()["results"][0]["metrics"] == [1, 2]  # one visitor, two pages
        run.stop()
        assert run.process.returncode == 0
        assert key not in run.stderr and "Traceback" not in run.stderr
