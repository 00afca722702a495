"""What the e-mail reports and notifications (issue 17) cost the compactor's run, which has a
300 s timeout every 15 minutes.

`pipeline.ops.reports.run_due(settings, now)` is what `pipeline.store.compactor.handler` calls
after compacting. This loads the embedded demo (`pipeline.local.demo.load_demo`, closed days
rolled up and archived as the compactor stores them) into moto's HTTP server, registers one
recipient of `example.com` who wants the weekly and monthly reports and the alerts
(`pipeline.ops.recipients.add_recipient`), a webhook on a threaded `http.server` on 127.0.0.1
that answers 200, and a verified SES sender (`ses.verify_email_identity`), then times, with
real boto3 clients:

1. **a first run where everything is due**: `now` is Monday 1 June 2026, 00:10 UTC (the site's
   zone), so the weekly report (25–31 May), the monthly report (May), the alert check of
   31 May (the demo's spike day, so there is something to send) and the webhook are all due.
   The demo runs to 8 June so that its spike falls on 31 May; nothing reads past `now`. Each
   repetition first removes the `#report#` item's `sent_*`/`lease_*`/`partial_*` markers, so
   every one does the whole work. Split: the time waiting on DynamoDB and on SES (each
   call's round trip), and the parts timed apart outside `run_due` (`build_report` weekly and
   monthly, `alert_findings`).
2. **the steady state**: the same `now` again, nothing due (95 of a day's 96 runs): one Scan of
   the `#report#` items, one of the sites.
3. **the raw-event fallback**: first runs (at most 3) on a second demo (another table prefix)
   loaded without rollups or archive files, so every period is counted from the raw events
   in DynamoDB: the worst case (deployed, days older than the hot window are read from
   Parquet on S3 instead).

The e-mails are counted as SES took them (moto's `/moto-api/data.json`, by subject), the
webhook's posts by the local server. The answers are checked: the weekly and
monthly reports' numbers equal `pipeline.metrics.summary` of `load_events` over the period,
and the alert names the spike day. moto runs in its own process (`--in-process`: a thread of
this one). Not a timed test: run it on a quiet machine and copy its output into
bench/RESULTS.md with the load it prints (`uptime`'s). Not measured: real SES's latency and
rate (14 messages/s by default), real DynamoDB's round trips (a few ms, moto's ~1-2 ms here).

Run: `python -m bench.reports_run [--runs 20] [--first-runs 5] [--in-process]`.
"""

from __future__ import annotations

import argparse
import email
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import requests
from botocore.endpoint import Endpoint

from bench.stats_api import StoreClock, footer, load, moto
from pipeline import aws
from pipeline.config import Settings
from pipeline.local.demo import DEMO_SITE, load_demo
from pipeline.ops import recipients, reports
from pipeline.resources import create_resources
from pipeline.stats import metrics
from pipeline.store.query import load_events
from pipeline.store.storage import day_bounds

# Monday 1 June 2026: a week and a month have just ended, so everything is due at once.
RUN_AT = datetime(2026, 6, 1, 0, 10, tzinfo=UTC)
# The demo's spike is 8 days before its last day: ending on 8 June puts it on 31 May (the
# alert day). 69 days reach back to 1 April: May's report compares with April.
DEMO_NOW = datetime(2026, 6, 8, 0, 5, tzinfo=UTC)
DEMO_DAYS = 69
SENDER = "reports@example.com"
RECIPIENT = "owner@example.com"
KINDS = ("weekly", "monthly", "alerts", "webhook")
SIX = ("visitors", "visits", "pageviews", "bounce_rate", "visit_duration", "views_per_visit")


class Hook(BaseHTTPRequestHandler):
    """A Slack-compatible webhook: takes the POST, answers 200, counts it."""

    posts: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        self.posts.append(self.rfile.read(int(self.headers.get("content-length", "0"))))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the figures are the output


@contextmanager
def webhook() -> Iterator[tuple[str, list[bytes]]]:
    """A threaded HTTP server on 127.0.0.1 until the block ends: its URL, the bodies posted."""
    Hook.posts = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", Hook.posts
    finally:
        server.shutdown()
        server.server_close()


def prepare(endpoint: str, hook: str, roll_up: bool) -> tuple[Settings, str]:
    """A fresh set of tables with the demo, a recipient, the webhook; (settings, what loaded)."""
    settings = Settings.for_prefix(f"brep{uuid.uuid4().hex[:6]}", endpoint_url=endpoint)
    settings = replace(
        settings, report_sender=SENDER, dashboard_url="https://dashboard.example.com/"
    )
    create_resources(settings)
    started = time.perf_counter()
    demo = load_demo(settings, now=DEMO_NOW, days=DEMO_DAYS, progress=False, roll_up=roll_up)
    loaded = (
        f"demo: {demo.stored} events stored, {len(demo.rolled_up)} days rolled up, "
        f"{len(demo.archived)} archived, in {time.perf_counter() - started:.1f} s"
    )
    aws.client("ses", settings).verify_email_identity(EmailAddress=SENDER)
    recipients.add_recipient(settings, DEMO_SITE, RECIPIENT, {"weekly", "monthly", "alerts"})
    recipients.set_webhook(settings, DEMO_SITE, hook)
    return settings, loaded


def reset_markers(settings: Settings) -> None:
    """Forget what was sent, so the next run finds everything due again."""
    names = [f"{what}_{kind}" for what in ("sent", "lease", "partial") for kind in KINDS]
    aws.client("dynamodb", settings).update_item(
        TableName=settings.sites_table,
        Key=recipients.item_key(DEMO_SITE),
        UpdateExpression="REMOVE " + ", ".join([*names, "last_sent", "last_sent_at"]),
    )


def sent_mail(settings: Settings) -> list[str]:
    """The subjects of the messages SES accepted from the sender, as moto keeps them (its
    `get_send_quota` counts deliveries, To header and Destinations both)."""
    found = requests.get(f"{settings.endpoint_url}/moto-api/data.json", timeout=60).json()
    messages = found.get("ses", {}).get("RawMessage", [])
    subjects = []
    for message in messages:
        if message.get("source") == SENDER:
            parsed = email.message_from_string(message.get("raw_data", ""))
            subjects.append(str(parsed.get("Subject", "")))
    return subjects


def kinds_of(subjects: list[str]) -> str:
    """How many of each kind ("weekly report", "monthly report", "unusual traffic")."""
    names = ("weekly report", "monthly report", "unusual traffic")
    counts = {name: sum(name in subject for subject in subjects) for name in names}
    return ", ".join(f"{count} {name}" for name, count in counts.items())


class ServiceClock(StoreClock):
    """`StoreClock` keyed by service too ("dynamodb Query", "email" for SES, "s3"): SES and
    S3 carry no X-Amz-Target, so the plain clock cannot tell them apart."""

    def key(self, endpoint: Endpoint, request: Any) -> str:
        operation = self.operation(request) if "X-Amz-Target" in request.headers else ""
        return f"{endpoint._endpoint_prefix} {operation}".strip()

    def spent(self, service: str) -> float:
        return sum(sum(t) for name, t in self.calls.items() if name.split()[0] == service)


def ms(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    answer = call()
    return (time.perf_counter() - started) * 1000, answer


def first_runs(
    settings: Settings, times: int, posts: list[bytes]
) -> tuple[list[float], list[float], list[float], list[dict[str, Any]], list[str], int, str]:
    """`times` runs with everything due: (ms, DynamoDB ms, SES ms of each, the summaries,
    subjects of the e-mails SES took, webhook posts, the last run's calls by operation)."""
    clock = ServiceClock()
    totals, store, ses, answers = [], [], [], []
    before, posted = len(sent_mail(settings)), len(posts)
    with clock.watching():
        for _ in range(times):
            reset_markers(settings)
            clock.ms, clock.calls = 0.0, {}
            spent, answer = ms(lambda: reports.run_due(settings, RUN_AT))
            totals.append(spent)
            store.append(clock.spent("dynamodb"))
            ses.append(clock.spent("email"))
            answers.append(answer)
    sent = sent_mail(settings)[before:]
    # The calls of the last run, by service ("email" is SES) and operation.
    calls = ", ".join(f"{name} {len(spent)}" for name, spent in sorted(clock.calls.items()))
    return totals, store, ses, answers, sent, len(posts) - posted, calls


def steady(settings: Settings, runs: int) -> list[float]:
    """Runs with nothing due (after a first run marked everything), 15 minutes apart."""
    reports.run_due(settings, RUN_AT)
    return [ms(lambda i=i: reports.run_due(settings, RUN_AT + timedelta(minutes=15 * i)))[0]
            for i in range(1, runs + 1)]  # fmt: skip


def parts(settings: Settings, times: int) -> dict[str, list[float]]:
    """The report builds and the alert check alone, as `run_due` makes them."""
    dynamodb = aws.client("dynamodb", settings)
    day = RUN_AT.date() - timedelta(days=1)
    calls = {
        "weekly report (`build_report`)": lambda: reports.build_report(
            settings, DEMO_SITE, "UTC", "weekly", RUN_AT, dynamodb
        ),
        "monthly report (`build_report`)": lambda: reports.build_report(
            settings, DEMO_SITE, "UTC", "monthly", RUN_AT, dynamodb
        ),
        "alert check (`alert_findings`)": lambda: reports.alert_findings(
            settings, DEMO_SITE, "UTC", day, RUN_AT, dynamodb
        ),
    }
    return {name: [ms(call)[0] for _ in range(times)] for name, call in calls.items()}


def check(settings: Settings) -> tuple[list[str], str]:
    """(wrong answers: the reports against `metrics.summary` of the raw events, the alert
    day; where the reports' numbers came from)."""
    wrong, sources = [], []
    for kind in ("weekly", "monthly"):
        report = reports.build_report(settings, DEMO_SITE, "UTC", kind, RUN_AT)
        start, end = day_bounds(report.first, "UTC")[0], day_bounds(report.last, "UTC")[1]
        events = load_events(DEMO_SITE, start, end, settings=settings)
        want = metrics.summary(metrics.select(events))
        for name in SIX:
            got, expected = getattr(report.summary, name), getattr(want, name)
            if abs(got - expected) > 1e-6 * max(1.0, abs(expected)):
                wrong.append(f"{kind} {name}: {got} (raw events: {expected})")
        sources.append(f"{kind} {report.summary.visitors:.0f} visitors from {report.source}")
        if report.summary.visitors <= 0:
            wrong.append(f"{kind}: no visitors")
    day = RUN_AT.date() - timedelta(days=1)
    found = reports.alert_findings(settings, DEMO_SITE, "UTC", day, RUN_AT)
    if not found:
        wrong.append(f"no alert on {day} (the demo's spike)")
    sources.append(f"{len(found)} alert finding(s) on {day}")
    return wrong, "; ".join(sources)


def figures(times: list[float]) -> str:
    return f"{statistics.median(times):.0f} ms | {max(times):.0f} ms"


def first_table(
    label: str,
    found: tuple[list[float], list[float], list[float], list[dict[str, Any]], list[str], int, str],
    split: dict[str, list[float]] | None = None,
) -> list[str]:
    totals, store, ses, answers, sent, posts, calls = found
    n = len(totals)
    lines = [
        f"{label}: {n} runs; SES took {len(sent)} e-mails ({kinds_of(sent)}), "
        f"the webhook got {posts} posts ({posts / n:.1f} a run); run_due said: {answers[-1]}",
        f"AWS calls of one run: {calls}",
        "",
        f"| everything due, one site | first | median of the {n - 1} after | slowest |",
        "|---|---|---|---|",
        f"| `run_due` wall time | {totals[0]:.0f} ms | {figures(totals[1:] or totals)} |",
        f"| of it, DynamoDB round trips (summed; parallel ones overlap) | {store[0]:.0f} ms | "
        f"{figures(store[1:] or store)} |",
        f"| of it, waiting on SES | {ses[0]:.0f} ms | {figures(ses[1:] or ses)} |",
    ]
    for name, spent in (split or {}).items():
        lines.append(f"| {name}, alone | {spent[0]:.0f} ms | {figures(spent[1:] or spent)} |")
    return lines


def run(runs: int = 20, first: int = 5, in_process: bool = False) -> str:
    lines = [f"before: {load()}"]
    with moto(in_process) as endpoint, webhook() as (hook, posts):
        settings, loaded = prepare(endpoint, hook, roll_up=True)
        lines.append(loaded)
        wrong, said = check(settings)
        found = first_runs(settings, first, posts)
        split = parts(settings, first)
        quiet = steady(settings, runs)
        lines += [
            "answers agree with the raw events (weekly, monthly) and the alert names the spike"
            if not wrong
            else "WRONG: " + "; ".join(wrong),
            said,
            "",
            f"load: {load()}",
            *first_table("with rollups", found, split),
            "",
            f"| nothing due (steady state) | median of {runs} | slowest |",
            "|---|---|---|",
            f"| `run_due` wall time | {figures(quiet)} |",
        ]
        raw, loaded = prepare(endpoint, hook, roll_up=False)
        lines += ["", loaded]
        wrong, said = check(raw)
        found = first_runs(raw, min(first, 3), posts)
        lines += [
            "raw fallback: answers agree"
            if not wrong
            else "raw fallback WRONG: " + "; ".join(wrong),
            said,
            f"load: {load()}",
            *first_table("without rollups (raw events)", found),
        ]
    lines += ["", *footer(in_process)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="steady-state runs (nothing due)")
    parser.add_argument("--first-runs", type=int, default=5, help="runs with everything due (≥ 2)")
    parser.add_argument(
        "--in-process", action="store_true", help="moto in a thread of this process"
    )
    args = parser.parse_args()
    print(run(max(args.runs, 1), max(args.first_runs, 2), args.in_process))


if __name__ == "__main__":
    main()
