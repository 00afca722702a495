"""The collector under a slowloris: 2,000 slow connections against `python -m pipeline.local`.

Starts local mode on free loopback ports (its own temporary data folder), opens `slow`
connections that each send the start of a request head and then one more header line a
second (reopening any the collector closes, as an attacker would), and meanwhile sends
`hits` legitimate pixel hits from a few clients, timing each. Then it closes the slow
connections and times the first `/health` answer; opens them again and times a SIGTERM of the
whole process. Everything is on 127.0.0.1, bounded in time, and stops by itself. Run:
`python -m bench.slowloris [slow] [hits] [seconds]`.
"""

from __future__ import annotations

import contextlib
import resource
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from pipeline.local.emulator import free_port

UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
HEAD_START = b"GET /pixel?d=bench.example HTTP/1.1\r\nHost: 127.0.0.1\r\n"


def raise_fd_limit(wanted: int) -> int:
    """This process needs a descriptor per slow connection: raise the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _start(data_dir: str) -> tuple[subprocess.Popen, int]:
    collector = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline.local",
            "--emulator-port",
            str(free_port()),
            "--collector-port",
            str(collector),
            "--rate-limit",
            "0",  # every client here is 127.0.0.1
            "--site",
            "bench.example",
            "--data-dir",
            data_dir,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not process.stdout.readline().startswith("AWS_ENDPOINT_URL="):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("local mode did not start")
    return process, collector


class Slowloris:
    """`count` slow connections kept open (reopened when closed) until `stop()`."""

    def __init__(self, port: int, count: int) -> None:
        self.port, self.count = port, count
        self.socks: list[socket.socket] = []
        self.opened = self.closed_by_server = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _open(self) -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
            sock.sendall(HEAD_START)
            sock.setblocking(False)
            self.socks.append(sock)
            self.opened += 1
        except OSError:
            pass  # refused or timed out: try again on the next round

    def fill(self) -> None:
        while len(self.socks) < self.count and not self._stop.is_set():
            self._open()

    def _reap(self) -> None:
        # poll, not select: select() can't take descriptors above 1,023.
        poller = select.poll()
        by_fd = {sock.fileno(): sock for sock in self.socks}
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        for fd, _ in poller.poll(0):
            sock = by_fd[fd]
            with contextlib.suppress(OSError):
                if sock.recv(4096):
                    continue
            self.socks.remove(sock)
            sock.close()
            self.closed_by_server += 1

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            for sock in list(self.socks):
                with contextlib.suppress(OSError):
                    sock.send(b"X-Slow: 1\r\n")
            self._reap()
            self.fill()

    def start(self) -> Slowloris:
        self.fill()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        for sock in self.socks:
            sock.close()
        self.socks.clear()


def _hit(port: int, n: int) -> tuple[int, float]:
    started = time.perf_counter()
    try:
        status = requests.get(
            f"http://127.0.0.1:{port}/pixel",
            params={"d": "bench.example", "u": f"https://bench.example/p/{n}"},
            headers={"User-Agent": UA},
            timeout=30,
        ).status_code
    except requests.RequestException:
        status = 0
    return status, time.perf_counter() - started


def _health_after(port: int, limit: float = 30) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=5).ok:
                return time.perf_counter() - started
    return float("inf")


def run(slow: int = 2000, hits: int = 300, seconds: float = 30) -> dict[str, float]:
    fds = raise_fd_limit(slow + 1024)
    with tempfile.TemporaryDirectory() as data_dir:
        process, port = _start(data_dir)
        try:
            loris = Slowloris(port, slow).start()
            open_at_start = len(loris.socks)
            # Legitimate hits spread over the attack, from four clients.
            pause = seconds / hits * 4
            with ThreadPoolExecutor(4) as pool:

                def paced(n: int) -> tuple[int, float]:
                    time.sleep(pause)
                    return _hit(port, n)

                results = list(pool.map(paced, range(hits)))
            loris.stop()
            health_s = _health_after(port)
            again = Slowloris(port, slow).start()
            open_at_sigterm = len(again.socks)
            started = time.perf_counter()
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
            sigterm_s = time.perf_counter() - started
            again.stop()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
    latencies = sorted(elapsed for _, elapsed in results)
    return {
        "fd_limit": fds,
        "slow_open_at_start": open_at_start,
        "slow_opened_total": loris.opened,
        "slow_closed_by_server": loris.closed_by_server,
        "hits": hits,
        "hits_200": sum(1 for status, _ in results if status == 200),
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000,
        "max_ms": latencies[-1] * 1000,
        "hits_over_1s": sum(1 for elapsed in latencies if elapsed > 1),
        "health_after_close_s": health_s,
        "slow_open_at_sigterm": open_at_sigterm,
        "sigterm_exit_s": sigterm_s,
        "exit_code": process.returncode,
    }


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    for key, value in run(*args).items():
        print(f"{key:>22}: {value:,.4g}" if isinstance(value, float) else f"{key:>22}: {value:,}")
