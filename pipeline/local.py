"""Local collection in one command: emulator, pixel collector, worker and compactor together.

    python -m pipeline.local [--emulator-port 4566] [--collector-port 8080] [--demo]
                             [--site example.com ...]

Point a page's pixel (or, later, the tracking script) at the printed URL, and the dashboard
at the printed AWS_ENDPOINT_URL. Ctrl-C stops everything cleanly.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from pipeline.collector import RateLimiter, start_collector
from pipeline.compactor import SCHEDULE_MINUTES, compact
from pipeline.config import Settings, settings_from_env
from pipeline.consumer import Consumer
from pipeline.demo import load_demo
from pipeline.emulator import EmbeddedAWS
from pipeline.errors import PipelineError
from pipeline.resources import create_resources
from pipeline.sites import new_site, register_site
from pipeline.worker import Worker

# Short enough that a failed message is retried within seconds while you watch.
LOCAL_VISIBILITY_TIMEOUT = 10
DEFAULT_SITE = "example.com"


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
    return parser.parse_args(argv)


def run_compactor(settings: Settings, stop: threading.Event) -> None:
    """The scheduled compactor of the cloud stack, on the same schedule, until `stop`."""
    while True:
        try:
            compact(settings)
        except PipelineError as exc:
            logging.getLogger("pipeline.compactor").warning("compaction failed: %s", exc)
        if stop.wait(SCHEDULE_MINUTES * 60):
            return


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with EmbeddedAWS(port=args.emulator_port) as emulator:
        settings = settings_from_env(endpoint_url=emulator.endpoint_url)
        create_resources(settings, visibility_timeout=LOCAL_VISIBILITY_TIMEOUT)
        sites = [new_site(domain) for domain in args.site or [DEFAULT_SITE]]
        for site in sites:
            register_site(settings, site)
        consumer = Consumer(settings)
        if args.demo:
            load_demo(settings)
        limiter = RateLimiter(rate=args.rate_limit, burst=5 * args.rate_limit)
        collector = start_collector(
            settings, host=args.host, port=args.collector_port, limiter=limiter
        )
        worker = threading.Thread(
            target=Worker(settings, consumer.handle).run, args=(stop,), name="worker"
        )
        worker.start()
        compactor = threading.Thread(target=run_compactor, args=(settings, stop), name="compactor")
        compactor.start()
        first = sites[0].domain
        print(f"\nSites counted:    {', '.join(site.domain for site in sites)}")
        print(f"Pixel:            {collector.url}/pixel?d={first}&u=https://{first}/")
        print(f"AWS_ENDPOINT_URL={emulator.endpoint_url}")
        print(
            "Dashboard:        AWS_ENDPOINT_URL=... make run   (Ctrl-C here stops everything)\n",
            flush=True,
        )
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
            collector.shutdown()
            worker.join(timeout=10)
            compactor.join(timeout=10)
    print("stopped")


if __name__ == "__main__":
    main()
