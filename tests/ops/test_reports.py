"""E-mail reports and traffic notifications from the demo's data, sent through moto's SES.

One module-wide moto holds four weeks of demo traffic (with its Hacker News spike on
Wed 18 Nov 2026); each test starts from a site without recipients and reads the messages
moto's SES accepted back, MIME parts and all.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import boto3
import pandas as pd
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from pipeline import aws, load_events, metrics
from pipeline import reports as preview_cli
from pipeline.config import Settings, resource_env
from pipeline.local.demo import DEMO_SITE, load_demo
from pipeline.ops import recipients, reports
from pipeline.store import compactor
from pipeline.store.storage import day_bounds
from tests.conftest import create_test_resources

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)  # a Thursday; the demo's spike: Wed 18 Nov
SPIKE_DAY = date(2026, 11, 18)
SENDER = "reports@example.net"
DASHBOARD = "https://analytics.example.net/"
REGION = "us-east-1"


@pytest.fixture(scope="module")
def demo() -> Iterator[Settings]:
    with mock_aws():
        current = Settings.for_prefix(f"r{uuid.uuid4().hex[:8]}", region=REGION)
        create_test_resources(current)
        load_demo(current, now=NOW, days=28, progress=False, roll_up=True)
        yield current


@pytest.fixture
def site(demo: Settings) -> Settings:
    """The demo's settings with a sender and a dashboard URL, and no recipients yet."""
    aws.client("dynamodb", demo).delete_item(
        TableName=demo.sites_table, Key=recipients.item_key(DEMO_SITE)
    )
    ses = aws.client("ses", demo)
    for identity in ses.list_identities()["Identities"]:
        ses.delete_identity(Identity=identity)
    return demo.with_overrides(report_sender=SENDER, dashboard_url=DASHBOARD)


def sent(since: int = 0) -> list[email.message.EmailMessage]:
    """The messages moto's SES accepted (raw ones, parsed), from the `since`-th on."""
    messages = ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages[since:]
    return [email.message_from_string(m.raw_data, policy=email.policy.default) for m in messages]


def count_sent() -> int:
    return len(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


def parts(message: email.message.EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",)).get_content()
    html_part = message.get_body(preferencelist=("html",)).get_content()
    return text, html_part


def verify(settings: Settings) -> None:
    aws.client("ses", settings).verify_email_identity(EmailAddress=SENDER)


def expected(settings: Settings, first: date, last: date):
    """What `pipeline.metrics` says for the site's local days first..last, from raw events."""
    start, end = day_bounds(first, "UTC")[0], day_bounds(last, "UTC")[1]
    events = load_events(DEMO_SITE, start, end, settings=settings)
    chosen = metrics.select(events)
    tops = {d: metrics.breakdown(chosen, d, 5) for d, _ in reports.TOPS}
    return metrics.summary(chosen), tops


def item(settings: Settings) -> dict:
    return recipients.read(settings, DEMO_SITE).item


def test_a_weekly_report_carries_the_metrics_numbers_links_and_unsubscribe(site):
    ann = recipients.add_recipient(site, DEMO_SITE, "Ann@Example.org", {"weekly"})
    verify(site)
    before = count_sent()
    outcome = reports.run_due(site, now=NOW)
    assert outcome["report_emails_sent"] == 1 and outcome["report_failures"] == 0
    (message,) = sent(before)
    assert message["To"] == ann.email == "Ann@example.org"
    assert message["From"] == SENDER
    assert message["Subject"] == "example.com: weekly report for 16 Nov – 22 Nov 2026"
    text, html_part = parts(message)

    summary, tops = expected(site, date(2026, 11, 16), date(2026, 11, 22))
    previous, _ = expected(site, date(2026, 11, 9), date(2026, 11, 15))
    report = reports.build_report(site, DEMO_SITE, "UTC", "weekly", NOW)
    assert report.source == "rollups"  # the demo's days are rolled up: one Query, not events
    assert report.summary.as_dict() == pytest.approx(summary.as_dict())
    assert report.previous.as_dict() == pytest.approx(previous.as_dict())
    for dimension, _ in reports.TOPS:
        pd.testing.assert_frame_equal(
            report.tops[dimension][["value", "visitors"]], tops[dimension][["value", "visitors"]]
        )
    assert f"Unique visitors: {summary.visitors:,} " in text
    assert f"Total visits: {summary.visits:,} " in text
    assert f"Total pageviews: {summary.pageviews:,} " in text
    assert f"Views per visit: {summary.views_per_visit:.2f} " in text
    assert f"Bounce rate: {round(summary.bounce_rate * 100)}% " in text
    change = round(metrics.percent_change(summary.visitors, previous.visitors))
    assert f"({'+' if change > 0 else ''}{change}% on the period before)" in text
    top_source = tops["referrer_source"].iloc[0]
    assert f"  {top_source['value']}: {top_source['visitors']:,}" in text
    assert f">{tops['path'].iloc[0]['value']}</td>" in html_part
    assert f">{summary.pageviews:,}</div>" in html_part
    assert "United States (US)" in text and "<style" not in html_part

    link = (
        DASHBOARD + "?site=example.com&period=custom&from=2026-11-16&to=2026-11-22&compare=previous"
    )
    assert link in text and link.replace("&", "&amp;") in html_part
    unsubscribe = f"{DASHBOARD}?unsubscribe={ann.token}"
    assert f"Stop these e-mails: {unsubscribe}" in text
    assert f'href="{unsubscribe}"' in html_part
    assert message["List-Unsubscribe"] == f"<{unsubscribe}>"

    # Sent once: the week is marked, and another run says nothing more.
    assert item(site)["sent_weekly"]["S"] == "2026-11-16"
    assert reports.run_due(site, now=NOW + timedelta(hours=3))["report_emails_sent"] == 0
    assert count_sent() == before + 1
    (row,) = reports.status(site)
    assert (
        row.last_sent.startswith("weekly report for the week of 2026-11-16") and not row.last_error
    )


def test_a_monthly_report_reads_raw_events_where_rollups_are_missing(site):
    recipients.add_recipient(site, DEMO_SITE, "ann@example.org", {"monthly"})
    verify(site)
    before = count_sent()
    at = datetime(2026, 12, 2, 9, tzinfo=UTC)
    assert reports.run_due(site, now=at)["report_emails_sent"] == 1
    (message,) = sent(before)
    assert message["Subject"] == "example.com: monthly report for November 2026"
    text, html_part = parts(message)
    summary, _ = expected(site, date(2026, 11, 1), date(2026, 11, 30))
    # The demo's last day was open when it loaded: no rollup, so the raw events answer.
    assert reports.build_report(site, DEMO_SITE, "UTC", "monthly", at).source == "raw events"
    assert f"Unique visitors: {summary.visitors:,} " in text
    assert f"Total pageviews: {summary.pageviews:,} " in text
    assert "from=2026-11-01&amp;to=2026-11-30" in html_part
    assert item(site)["sent_monthly"]["S"] == "2026-11"


class Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Hook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    """A local Slack-style incoming webhook; what it received is in `Hook.received`."""
    Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/secret"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_the_demo_spike_sends_exactly_one_notification_and_one_webhook_post(site, webhook):
    bob = recipients.add_recipient(site, DEMO_SITE, "bob@example.org", {"alerts"})
    recipients.set_webhook(site, DEMO_SITE, webhook)
    verify(site)
    before = count_sent()
    morning = datetime(2026, 11, 19, 0, 20, tzinfo=UTC)  # the spike's day has just ended
    first = reports.run_due(site, now=morning)
    second = reports.run_due(site, now=morning + timedelta(hours=9))
    assert (first["report_emails_sent"], first["webhook_posts"]) == (1, 1)
    assert (second["report_emails_sent"], second["webhook_posts"]) == (0, 0)
    (message,) = sent(before)
    assert message["To"] == bob.email
    assert message["Subject"] == "example.com: unusual traffic on Wed 18 Nov 2026"
    text, html_part = parts(message)
    # The reason in plain words: the Overview's insight sentence.
    assert "- Visitors from Hacker News: " in text and "the usual Wednesday on Wed 18 Nov" in text
    assert "Visitors from Hacker News" in html_part
    assert f"?unsubscribe={bob.token}" in text
    assert "from=2026-11-18&to=2026-11-18" in text
    (post,) = Hook.received
    assert set(post) == {"text"}
    assert post["text"].startswith("Unusual traffic on example.com, Wed 18 Nov 2026:")
    assert "Visitors from Hacker News" in post["text"] and "unsubscribe" not in post["text"]
    assert item(site)["sent_alerts"]["S"] == item(site)["sent_webhook"]["S"] == "2026-11-18"


def test_two_runs_at_once_cannot_both_claim_a_day(site):
    recipients.add_recipient(site, DEMO_SITE, "bob@example.org", {"alerts"})
    dynamodb = aws.client("dynamodb", site)
    now_ms = int(NOW.timestamp() * 1000)
    assert reports.claim(site, dynamodb, DEMO_SITE, "alerts", "2026-11-25", now_ms)
    assert not reports.claim(site, dynamodb, DEMO_SITE, "alerts", "2026-11-25", now_ms + 1000)
    # A run that died holding the day: another may take it once the lease has run out.
    later = now_ms + reports.LEASE_MS + 1
    assert reports.claim(site, dynamodb, DEMO_SITE, "alerts", "2026-11-25", later)


def test_an_ordinary_day_sends_nothing_and_is_not_looked_at_again(site, webhook):
    recipients.add_recipient(site, DEMO_SITE, "bob@example.org", {"alerts"})
    recipients.set_webhook(site, DEMO_SITE, webhook)
    verify(site)
    before = count_sent()
    day_after = datetime(2026, 11, 25, 8, tzinfo=UTC)
    assert reports.alert_findings(site, DEMO_SITE, "UTC", date(2026, 11, 24), day_after) == []
    outcome = reports.run_due(site, now=day_after)
    assert (outcome["report_emails_sent"], outcome["webhook_posts"]) == (0, 0)
    assert count_sent() == before and Hook.received == []
    assert item(site)["sent_alerts"]["S"] == "2026-11-24"


def test_no_sender_sends_no_email_and_says_so(site, webhook):
    unsent = site.with_overrides(report_sender="")
    recipients.add_recipient(unsent, DEMO_SITE, "ann@example.org", {"weekly", "alerts"})
    verify(site)
    before = count_sent()
    outcome = reports.run_due(unsent, now=NOW)
    assert outcome["report_emails_sent"] == 0 and count_sent() == before
    assert "no report sender configured" in outcome["reports_note"]
    assert "sent_weekly" not in item(site)  # sent once a sender is set


def test_ses_refusing_is_logged_stored_retried_and_never_crashes_the_compactor(
    site, monkeypatch, caplog
):
    recipients.add_recipient(site, DEMO_SITE, "ann@example.org", {"weekly"})
    # The compactor's Lambda, configured from its environment, with the sender not verified.
    for name, value in resource_env(site).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PIPELINE_SPAM_LIST_URL", "")
    monkeypatch.setenv("PIPELINE_DATACENTRE_SOURCES", "")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    before = count_sent()
    with caplog.at_level(logging.INFO):
        result = compactor.handler({}, None)
    assert result["report_failures"] == 1 and result["report_emails_sent"] == 0
    assert count_sent() == before
    stored = item(site)
    assert "SES rejected the message: verify the sender address" in stored["last_error"]["S"]
    assert "sent_weekly" not in stored and "lease_weekly" not in stored
    warnings = [r.getMessage() for r in caplog.records if r.name == "pipeline.ops.reports"]
    assert warnings and all("ann@example.org" not in w and "Unique" not in w for w in warnings)
    (row,) = reports.status(site)
    assert row.last_error.startswith("weekly report for ")

    verify(site)
    outcome = reports.run_due(site)
    assert outcome["report_emails_sent"] == 1 and outcome["report_failures"] == 0
    assert len(sent(before)) == 1
    stored = item(site)
    assert "last_error" not in stored and "sent_weekly" in stored


def test_reports_stop_at_the_deadline_and_the_next_run_sends_what_was_left(site, monkeypatch):
    recipients.add_recipient(site, DEMO_SITE, "ann@example.org", {"weekly"})
    verify(site)
    before = count_sent()
    late = reports.run_due(site, deadline=100.0, clock=lambda: 100.0)
    assert late["report_emails_sent"] == 0 and count_sent() == before
    assert late["reports_note"] == "out of time: 1 site(s) left for the next run"
    assert "sent_weekly" not in item(site)
    assert reports.run_due(site, deadline=100.0, clock=lambda: 99.0)["report_emails_sent"] == 1

    # The Lambda's context sets the deadline: the time left minus the compactor's margin.
    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return (compactor.REPORTS_MARGIN_SECONDS - 1) * 1000

    deadline = compactor.reports_deadline(Context())
    assert deadline is not None and deadline < time.monotonic()
    assert compactor.reports_deadline(None) is None


def test_a_recipient_who_got_the_report_before_a_failure_does_not_get_it_twice(site):
    recipients.add_recipient(site, DEMO_SITE, "ann@example.org", {"weekly"})
    recipients.add_recipient(site, DEMO_SITE, "bob@example.org", {"weekly"})
    verify(site)
    real = reports.send_mail
    calls: list[str] = []

    def throttled_for_bob(ses, sender, to, *args):
        calls.append(to)
        if to.startswith("bob") and calls.count(to) == 1:
            error = {"Error": {"Code": "Throttling", "Message": "Maximum sending rate exceeded."}}
            raise reports.DeliveryError(reports.ses_sentence(ClientError(error, "SendRawEmail")))
        return real(ses, sender, to, *args)

    before = count_sent()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reports, "send_mail", throttled_for_bob)
        first = reports.run_due(site, now=NOW)
        assert first["report_failures"] == 1
        assert "throttling" in item(site)["last_error"]["S"]
        second = reports.run_due(site, now=NOW + timedelta(minutes=15))
    assert second["report_emails_sent"] == 1 and second["report_failures"] == 0
    assert [m["To"] for m in sent(before)] == ["ann@example.org", "bob@example.org"]


def test_no_notification_without_enough_history(demo):
    # The module's moto, other tables.
    settings = Settings.for_prefix(f"h{uuid.uuid4().hex[:8]}", region=REGION)
    create_test_resources(settings)
    # Ten days of demo traffic: its spike is on the second day, with no week before it.
    now = datetime(2026, 11, 10, 12, tzinfo=UTC)
    load_demo(settings, now=now, days=10, progress=False, roll_up=True)
    spike = date(2026, 11, 2)
    events = load_events(DEMO_SITE, datetime(2026, 11, 1, tzinfo=UTC), now, settings=settings)
    daily = events[events["name"] == "pageview"].groupby(events["ts"].dt.date)["visitor"]
    visitors = daily.nunique()
    assert visitors[spike] >= 2.5 * visitors[date(2026, 11, 1)]  # a spike, planted
    settings = settings.with_overrides(report_sender=SENDER, dashboard_url=DASHBOARD)
    recipients.add_recipient(settings, DEMO_SITE, "bob@example.org", {"alerts"})
    boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress=SENDER)
    before = count_sent()
    assert reports.alert_findings(settings, DEMO_SITE, "UTC", spike, now) == []
    outcome = reports.run_due(settings, now=datetime(2026, 11, 3, 1, tzinfo=UTC))
    assert outcome["report_emails_sent"] == 0 and count_sent() == before


def test_every_value_is_escaped_in_the_html():
    hostile = "<img src=x onerror=alert(1)>"
    table = pd.DataFrame({"value": [hostile], "visitors": [3]})
    empty = metrics.summary(pd.DataFrame(columns=["ts", "visitor", "name", "path"]))
    report = reports.Report(
        "example.com", "weekly", date(2026, 11, 16), date(2026, 11, 22), empty, empty,
        {d: table for d, _ in reports.TOPS}, 'https://a.example/?x="><script>',
    )  # fmt: skip
    page = reports.render_html(report, "https://a.example/?unsubscribe=t&x=<b>")
    assert hostile not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script>" not in page and "<b>" not in page
    alert = reports.Alert("example.com", SPIKE_DAY, [f"Visitors of {hostile}: 3×"])
    assert hostile not in reports.alert_html(alert, "")


def test_a_webhook_post_shows_event_values_as_text_not_slack_markup():
    # A page path is the visitor's to choose: `<!channel>` would notify a whole channel and
    # `<https://evil.example|Your bank>` would be a disguised link.
    findings = ["Visitors of /<!channel>: 9.0×", "Visitors from <https://evil.example|Bank> & co"]
    text = reports.webhook_text(reports.Alert("example.com", SPIKE_DAY, findings))
    assert "<" not in text and ">" not in text
    assert "/&lt;!channel&gt;" in text and "&lt;https://evil.example|Bank&gt; &amp; co" in text


@pytest.mark.parametrize(
    ("code", "words"),
    [
        pytest.param("MessageRejected", "verify the sender address", id="unverified-or-sandbox"),
        pytest.param("Throttling", "throttling", id="throttled"),
        pytest.param("AccessDenied", "ses:SendRawEmail", id="no-permission"),
        pytest.param("SomethingNew", "SES refused the message (SomethingNew)", id="other"),
    ],
)
def test_ses_errors_are_one_sentence_without_addresses(code, words):
    error = {"Error": {"Code": code, "Message": "Email address is not verified: ann@example.org"}}
    sentence = reports.ses_sentence(ClientError(error, "SendRawEmail"))
    assert words in sentence and "@" not in sentence and "\n" not in sentence


def test_periods_are_whole_weeks_and_months_in_the_site_zone():
    # Monday 00:30 in Berlin is still Sunday in UTC: Berlin's last week is the one just ended.
    monday_berlin = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)
    assert reports.last_week(reports.local_today(monday_berlin, "Europe/Berlin")) == (
        date(2026, 11, 16),
        date(2026, 11, 22),
    )
    assert reports.last_week(reports.local_today(monday_berlin, "UTC")) == (
        date(2026, 11, 9),
        date(2026, 11, 15),
    )
    assert reports.last_month(date(2026, 3, 1)) == (date(2026, 2, 1), date(2026, 2, 28))
    assert reports.previous_period("monthly", date(2026, 3, 1), date(2026, 3, 31)) == (
        date(2026, 2, 1),
        date(2026, 2, 28),
    )
    link = reports.dashboard_link("https://a.example/dash", "example.com", SPIKE_DAY, SPIKE_DAY)
    assert parse_qs(urlsplit(link).query) == {
        "site": ["example.com"],
        "period": ["custom"],
        "from": ["2026-11-18"],
        "to": ["2026-11-18"],
        "compare": ["previous"],
    }
    assert link.startswith("https://a.example/dash/?")
    assert reports.dashboard_link("", "example.com", SPIKE_DAY, SPIKE_DAY) == ""


def test_preview_writes_the_report_html_locally(demo, tmp_path, monkeypatch, capsys):
    for name, value in resource_env(demo).items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "week.html"
    argv = ["preview", "example.com", "--week", "--out", str(out), "--at", "2026-11-26"]
    assert preview_cli.main(argv) == 0
    assert capsys.readouterr().out == f"wrote {out}\n"
    page = out.read_text(encoding="utf-8")
    summary, _ = expected(demo, date(2026, 11, 16), date(2026, 11, 22))
    assert "weekly report for 16 Nov – 22 Nov 2026" in page
    assert f">{summary.visitors:,}</div>" in page
    assert preview_cli.main(["preview", "nowhere.example", "--month"]) == 2
    assert preview_cli.main(["preview", "example.com", "--month", "--at", "soon"]) == 2
    err = capsys.readouterr().err
    assert "error: nowhere.example is not registered" in err
    assert "error: 'soon' is not a date like 2026-11-27" in err and "Traceback" not in err
