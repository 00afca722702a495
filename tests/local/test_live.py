"""The living demo: visits keep arriving through collector → SQS → worker → consumer while it
runs, Real time sees current visitors, and `stop()` leaves no thread or port behind."""

from __future__ import annotations

import itertools
import json
import random
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest

from pipeline import load_events
from pipeline.enrich.sites import host_allowed, list_sites, new_site
from pipeline.local.demo import CUSTOM_EVENTS, DEMO_SITE
from pipeline.local.live import MAX_PAGES, PAGE_GAP_S, plan_visit, start_live_demo
from pipeline.stats.metrics import current_visitors
from tests.support import wait_for


def _query(hit) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(hit.query).items()}


def test_a_planned_visit_is_what_the_tracker_sends_for_one_visitor():
    sites = new_site(DEMO_SITE).hostnames
    visits = [plan_visit(random.Random(seed)) for seed in range(300)]
    lengths = []
    for visit in visits:
        queries = [_query(hit) for hit in visit]
        pageviews = [q for q in queries if q["n"] == "pageview"]
        lengths.append(len(pageviews))
        assert 1 <= len(pageviews) <= MAX_PAGES
        assert visit[0].after == 0 and queries[0]["n"] == "pageview"
        assert [hit.after for hit in visit] == sorted(hit.after for hit in visit)
        # One visitor: the same browser and address on every hit of the visit.
        assert len({json.dumps(hit.headers, sort_keys=True) for hit in visit}) == 1
        for q in queries:
            assert q["d"] == DEMO_SITE and host_allowed(urlsplit(q["u"]).hostname, sites)
        for q in queries[1:]:
            if q["n"] == "pageview":
                assert q["r"] == f"https://{DEMO_SITE}/"  # inner pages come from the site
        for q in queries:
            if q["n"] == "engagement":  # the page being left, with what the script measures
                assert q["u"] in {p["u"] for p in pageviews}
                assert int(q["e"]) >= 0 and 0 <= int(q["sd"]) <= 100
            elif q["n"] != "pageview":
                assert q["n"] == CUSTOM_EVENTS[urlsplit(q["u"]).path][0]
                assert json.loads(q["p"])
        # Every page is left once: one engagement per pageview.
        assert sum(q["n"] == "engagement" for q in queries) == len(pageviews)
        gaps = [b.after - a.after for a, b in itertools.pairwise(visit)]
        assert all(gap <= PAGE_GAP_S[1] for gap in gaps)
    assert 0.3 < lengths.count(1) / len(lengths) < 0.6  # about half bounce
    assert max(lengths) > 2
    # Distinct visitors: (nearly) every visit its own address.
    addresses = {visit[0].headers["CloudFront-Viewer-Address"].split(":")[0] for visit in visits}
    assert len(addresses) > 290
    assert all(address.startswith(("198.18.", "198.19.")) for address in addresses)


def test_the_same_seed_plans_the_same_visit():
    assert plan_visit(random.Random(3)) == plan_visit(random.Random(3))
    assert plan_visit(random.Random(3)) != plan_visit(random.Random(4))


def _port_open(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.integration
def test_the_living_demo_sends_visits_through_the_pixel_path_and_stops_cleanly(server_settings):
    before = {thread.ident for thread in threading.enumerate()}
    started = datetime.now(UTC)
    address = None
    begun = time.monotonic()
    live = start_live_demo(server_settings, rate_per_minute=60, seed=11)
    assert time.monotonic() - begun < 0.5  # set-up happens in its thread, not the caller's
    try:
        assert live.wait_ready(timeout=30)
        address = live.collector.server_address[:2]
        assert _port_open(address)

        def stored() -> pd.DataFrame:
            return load_events(
                DEMO_SITE,
                started - timedelta(minutes=5),
                datetime.now(UTC) + timedelta(minutes=1),
                settings=server_settings,
            )

        def enough() -> bool:
            events = stored()
            return len(events) >= 4 and events["visitor"].nunique() >= 2

        wait_for(enough, timeout=60)
        events = stored()
        assert live.sent >= len(events) and live.failed == 0
        assert (events["name"] == "pageview").any()
        # Every event arrived while the demo ran: received now, not demo history.
        assert events["ts"].min() >= pd.Timestamp(started) - pd.Timedelta(seconds=1)
        assert current_visitors(events, pd.Timestamp(datetime.now(UTC))) >= 2
        # The CloudFront headers gave each visitor a place and a browser; no address stored.
        assert (events["country"] != "").all() and (events["browser"] != "").all()
        assert not events.astype(str).apply(lambda c: c.str.contains("198.1[89]\\.")).any().any()
        assert DEMO_SITE in {site.domain for site in list_sites(server_settings)}
    finally:
        begun = time.monotonic()
        live.stop()
        took = time.monotonic() - begun
    assert took < 3.0, f"stop took {took:.2f} s"
    assert not live.running
    assert not _port_open(address)
    left = [t.name for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    # The collector's send pool may finish its last task a moment later; the threads that
    # poll, send and serve are gone.
    assert not [name for name in left if name.startswith("live-") or name == "collector"], left
    sent = live.sent
    time.sleep(1.5)
    assert live.sent == sent  # nothing is sent after stop()
