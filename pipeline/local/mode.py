"""Local collection in one command: emulator, pixel collector, worker and compactor together.

    python -m pipeline.local [--emulator-port 4566] [--collector-port 8080] [--demo]
                             [--site example.com ...] [--data-dir .local-data]

It prints the tracking snippet to paste into a page, the dashboard command, and the Stats API's
URL (Plausible's `POST /api/v2/query` and v1 endpoints, served by the collector on its own
origin; a key comes from `python -m pipeline.sites key create SITE`). The sites it
registers also count pages on `localhost` and `127.0.0.1` (the page you test with is served
from this machine); `python -m pipeline.sites add` never adds those hostnames, so production
does not count them. Ctrl-C (or SIGTERM) stops everything cleanly within seconds.

The emulator lives in memory; its tables are saved to `--data-dir` every `--save-every`
seconds and on a clean stop, and loaded on start. A clean stop closes the collector first,
lets the worker empty the queue for a moment, then saves.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline import aws
from pipeline.api.app import StatsApi
from pipeline.config import Settings
from pipeline.consume.consumer import Consumer
from pipeline.consume.worker import Worker
from pipeline.enrich.sites import Site, default_hostnames, list_sites, new_site, register_site
from pipeline.errors import PipelineError
from pipeline.ingest.collector import MAX_CONNECTIONS, CollectorServer, RateLimiter, start_collector
from pipeline.local.demo import load_demo
from pipeline.local.emulator import EmbeddedAWS, TableSnapshots
from pipeline.resources import create_resources, queue_url
from pipeline.stack import settings_from_env
from pipeline.store.compactor import SCHEDULE_MINUTES, compact

log = logging.getLogger("pipeline.local.mode")
# Short enough that a failed message is retried within seconds while you watch.
LOCAL_VISIBILITY_TIMEOUT = 10
DEFAULT_SITE = "example.com"
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / ".local-data"  # the project root
SAVE_EVERY_S = 30.0
# A stop must be over within 5 s in every state. Its budget, in order: close the collector,
# let the worker drain the queue (until STOP_BUDGET_S - WORKER_GRACE_S - SAVE_GRACE_S), let it
# finish the batch in hand (one long poll plus the batch), save, stop the emulator (~0.5 s).
STOP_BUDGET_S = 4.0
WORKER_GRACE_S = 1.5
SAVE_GRACE_S = 0.5
# File descriptors beyond the collector's connections: the emulator's sockets, boto3's pools.
FD_RESERVE = 256
# Page hosts counted for every site local mode registers, beside the site's own hostnames: the
# test page is served from this machine. Local mode only (see the module docstring).
LOCAL_HOSTNAMES = ("localhost", "127.0.0.1")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.local", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--emulator-port", type=int, default=4566, help="moto server port (default 4566)"
    )
    parser.add_argument(
        "--collector-port", type=int, default=8080, help="pixel collector port (default 8080)"
    )
    parser.add_argument("--demo", action="store_true", help="also load the demo traffic")
    parser.add_argument(
        "--site",
        action="append",
        help="register a site to count, with its domain and subdomains; repeat it "
        "(default: example.com)",
    )
    parser.add_argument(
        "--rate-limit",
        type=float,
        default=20.0,
        help="pixel hits per second per client address (burst 5x); 0 switches it off",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="where the tables are saved and loaded from (default: .local-data in the project)",
    )
    parser.add_argument(
        "--save-every",
        type=float,
        default=SAVE_EVERY_S,
        help=f"seconds between saves while running (default {SAVE_EVERY_S:g})",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=MAX_CONNECTIONS,
        help=f"open collector connections at most (default {MAX_CONNECTIONS})",
    )
    return parser.parse_args(argv)


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's open-file limit towards `wanted` (never above the hard limit);
    the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def connection_cap(wanted: int, fd_limit: int) -> int:
    """The collector's connection cap: what was asked, within the file descriptors we have."""
    return max(1, min(wanted, fd_limit - FD_RESERVE))


def local_site(domain: str) -> Site:
    """A site as local mode registers it: its domain and subdomains, and this machine."""
    return new_site(domain, hostnames=(*default_hostnames(domain), *LOCAL_HOSTNAMES))


def with_local_hostnames(site: Site) -> Site:
    """`site` counting this machine's pages too, its own hostnames and settings kept (a site
    saved by an older run, or changed with `pipeline.sites add`, keeps what it had)."""
    missing = tuple(host for host in LOCAL_HOSTNAMES if host not in site.hostnames)
    return replace(site, hostnames=site.hostnames + missing) if missing else site


def snippet(collector_url: str, domain: str) -> str:
    """The tag to paste into a page: `data-local`, because the tracker skips pages on
    localhost and 127.0.0.1 unless told (docs/tracker.md)."""
    source = f"{collector_url}/script.js"
    return f'<script defer data-local data-domain="{domain}" src="{source}"></script>'


def run_compactor(settings: Settings, stop: threading.Event) -> None:
    """The scheduled compactor of the cloud stack, on the same schedule, until `stop`."""
    while True:
        try:
            compact(settings)
        except PipelineError as exc:
            logging.getLogger("pipeline.store.compactor").warning("compaction failed: %s", exc)
        if stop.wait(SCHEDULE_MINUTES * 60):
            return


def queue_depth(sqs: Any, url: str) -> int:
    """Messages on the queue, waiting or being processed."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def drain(settings: Settings, until: float) -> bool:
    """Wait (up to the monotonic time `until`) for the worker to empty the queue."""
    sqs = aws.client("sqs", settings)
    url = queue_url(sqs, settings)
    while time.monotonic() < until:
        if queue_depth(sqs, url) == 0:
            return True
        time.sleep(0.1)
    return False


class LocalMode:
    """The running parts; `stop()` undoes whatever `start()` got to, in the right order."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stopping = threading.Event()  # compactor and periodic saves
        self.worker_stop = threading.Event()
        self.emulator: EmbeddedAWS | None = None
        self.settings: Settings | None = None
        self.snapshots: TableSnapshots | None = None
        self.loaded = False  # never save over the file before it was read
        self.collector: CollectorServer | None = None
        self.worker: threading.Thread | None = None
        self.restored = 0

    def start(self) -> None:
        args = self.args
        emulator = EmbeddedAWS(port=args.emulator_port).start()
        self.emulator = emulator
        settings = self.settings = settings_from_env(endpoint_url=emulator.endpoint_url)
        create_resources(settings, visibility_timeout=LOCAL_VISIBILITY_TIMEOUT)
        self.sites = [local_site(domain) for domain in args.site or [DEFAULT_SITE]]
        for site in self.sites:
            register_site(settings, site)  # before loading: a saved site's settings win
        self.snapshots = TableSnapshots(aws.client("dynamodb", settings), args.data_dir)
        self.restored = self.snapshots.load()
        self.loaded = True
        consumer = Consumer(settings)
        if args.demo and self.restored:
            # Demo ids depend on the start time: loading it again would add a second copy.
            print("Demo data: kept from the saved tables, not loaded again", flush=True)
        elif args.demo:
            load_demo(settings)
        # After loading (a saved site, or the demo's, replaces ours): add this machine back.
        self.sites = self._count_this_machine(settings)
        limiter = RateLimiter(rate=args.rate_limit, burst=5 * args.rate_limit)
        fds = raise_fd_limit(args.max_connections + FD_RESERVE)
        self.collector = start_collector(
            settings,
            host=args.host,
            port=args.collector_port,
            limiter=limiter,
            max_connections=connection_cap(args.max_connections, fds),
            api=StatsApi(settings),
        )
        self.worker = self._daemon(
            "worker", Worker(settings, consumer.handle).run, self.worker_stop
        )
        self._daemon("compactor", run_compactor, settings, self.stopping)
        self._daemon("snapshots", self.snapshots.run, self.stopping, args.save_every)

    def _count_this_machine(self, settings: Settings) -> list[Site]:
        """The loaded sites, each with this machine's hostnames added if it lacks them."""
        saved = {site.domain: site for site in list_sites(settings)}
        sites = []
        for site in self.sites:
            current = with_local_hostnames(saved.get(site.domain, site))
            if current != saved.get(site.domain):
                register_site(settings, current)
            sites.append(current)
        return sites

    @staticmethod
    def _daemon(name: str, target: Any, *args: Any) -> threading.Thread:
        # Daemon threads: a thread stuck in a call can't keep the process alive past a stop.
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        return thread

    def announce(self) -> None:
        if self.collector is None or self.emulator is None:
            raise RuntimeError("announce() before start()")
        first, url = self.sites[0].domain, self.collector.url
        print(f"\nSites counted:    {', '.join(site.domain for site in self.sites)}")
        print(
            f"                  also from pages on {' and '.join(LOCAL_HOSTNAMES)} "
            "(local mode only: production counts a site's own hostnames)"
        )
        print(f"Data:             {self.args.data_dir} ({self.restored} items loaded)")
        print(f"Script:           {url}/script.js")
        print(f"Snippet:          {snippet(url, first)}")
        print(f"Pixel:            {url}/pixel?d={first}&u=https://{first}/")
        print(f"Stats API:        {url}/api/v2/query   (and Plausible's /api/v1/stats/...)")
        print(
            f"API key:          AWS_ENDPOINT_URL={self.emulator.endpoint_url} "
            f"python -m pipeline.sites key create {first}"
        )
        print(f"AWS_ENDPOINT_URL={self.emulator.endpoint_url}")
        print(
            f"Dashboard:        AWS_ENDPOINT_URL={self.emulator.endpoint_url} make run"
            "   (Ctrl-C here stops everything)\n",
            flush=True,
        )

    def stop(self) -> None:
        started = time.monotonic()
        deadline = started + STOP_BUDGET_S
        self.stopping.set()
        if self.collector is not None:
            self.collector.shutdown(timeout=1.0)  # no new hits from here on
            log.info("stop: collector closed after %.2f s", time.monotonic() - started)
        if self.worker is not None and self.settings is not None:
            drained = False
            try:
                drained = drain(self.settings, until=deadline - WORKER_GRACE_S - SAVE_GRACE_S)
            except (ClientError, BotoCoreError, PipelineError) as exc:
                log.warning("could not watch the queue drain: %s", type(exc).__name__)
            self.worker_stop.set()
            self.worker.join(timeout=max(0.0, deadline - SAVE_GRACE_S - time.monotonic()))
            log.info(
                "stop: queue %s, worker %s after %.2f s",
                "drained" if drained else "NOT drained (what is left is lost)",
                "stopped" if not self.worker.is_alive() else "still busy",
                time.monotonic() - started,
            )
        if self.loaded and self.snapshots is not None:
            try:
                self.snapshots.save()
                log.info("stop: tables saved after %.2f s", time.monotonic() - started)
            except (ClientError, BotoCoreError, OSError) as exc:
                log.error("could not save the tables: %s", type(exc).__name__)
        if self.emulator is not None:
            self.emulator.stop()
            log.info("stop: emulator stopped after %.2f s", time.monotonic() - started)


def _force_exit(*_: object) -> None:
    os._exit(130)  # a second Ctrl-C / SIGTERM while stopping: stop now, unsaved


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # SIGTERM acts like Ctrl-C: whatever the main thread is doing (starting, loading, waiting),
    # it unwinds into the one stop below.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    local = LocalMode(args)
    failed = False
    try:
        local.start()
        local.announce()
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    except ValueError as exc:  # an unreadable snapshot: say so, never overwrite it
        print(f"cannot start: {exc}", file=sys.stderr)
        failed = True
    finally:
        signal.signal(signal.SIGINT, _force_exit)
        signal.signal(signal.SIGTERM, _force_exit)
        local.stop()
    print("stopped", flush=True)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
