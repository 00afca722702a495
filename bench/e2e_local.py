"""End-to-end local throughput: HTTP clients → collector → moto SQS → worker → moto DynamoDB.

Starts `python -m pipeline.local` (the real local mode) on free loopback ports, sends a fixed
number of unique hits from concurrent clients (127.0.0.1 only; the run is bounded and stops
by itself), then waits until every accepted hit is stored. Run:
`python -m bench.e2e_local [hits] [clients]`.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import requests

from pipeline import load_events
from pipeline.local.emulator import free_port

UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
DEADLINE_S = 300


def _start() -> tuple[subprocess.Popen, str, str]:
    emulator, collector = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline.local",
            "--emulator-port",
            str(emulator),
            "--collector-port",
            str(collector),
            "--rate-limit",
            "0",  # eight clients share 127.0.0.1: no per-address limit in a load test
            "--site",
            "bench.example",
            "--data-dir",
            tempfile.mkdtemp(prefix="bench-local-"),  # never the project's own saved tables
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    while not process.stdout.readline().startswith("AWS_ENDPOINT_URL="):
        pass
    return process, f"http://127.0.0.1:{emulator}", f"http://127.0.0.1:{collector}/pixel"


def run(hits: int = 2000, clients: int = 8) -> dict[str, float]:
    process, endpoint, pixel = _start()
    session = requests.Session()
    latencies: list[float] = []

    def send(n: int) -> bool:
        started = time.perf_counter()
        response = session.get(
            pixel,
            params={"d": "bench.example", "u": f"https://bench.example/p/{n}"},
            headers={"User-Agent": UA},
            timeout=30,
        )
        latencies.append(time.perf_counter() - started)
        return response.status_code == 200

    try:
        began = datetime.now(UTC)
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=clients) as pool:
            accepted = sum(pool.map(send, range(hits)))
        send_s = time.perf_counter() - started
        stored, deadline = 0, time.monotonic() + DEADLINE_S
        while stored < accepted and time.monotonic() < deadline:
            time.sleep(1)
            frame = load_events(
                "bench.example",
                began - timedelta(minutes=1),
                datetime.now(UTC) + timedelta(minutes=1),
                endpoint_url=endpoint,
            )
            stored = len(frame)
        total_s = time.perf_counter() - started
        duplicates = int(frame["path"].duplicated().sum())
    finally:
        process.terminate()
        process.wait(timeout=30)
    latencies.sort()
    return {
        "hits": hits,
        "clients": clients,
        "accepted": accepted,
        "stored": stored,
        "duplicates": duplicates,
        "accept_rate_per_s": accepted / send_s,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "end_to_end_per_s": stored / total_s,
        "total_s": total_s,
    }


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    for key, value in run(*args).items():
        print(f"{key:>20}: {value:,.4g}" if isinstance(value, float) else f"{key:>20}: {value:,}")
