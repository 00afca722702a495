"""E-mail reports and traffic notifications, sent on the compactor's schedule.

What is due, per site with recipients (`pipeline.ops.recipients`), in the site's time zone:

- **weekly**: the previous Monday–Sunday, once the week has ended;
- **monthly**: the previous calendar month, once it has ended;
- **alerts** (e-mail) and **webhook** (Slack-compatible `{"text": ...}`): yesterday's spikes and
  drops, once yesterday has ended (never a half day), from `pipeline.stats.anomalies` over the
  daily visitors of the whole site and of each source, page and country, as the Overview's
  insights; nothing without the detector's `min_history` of earlier weeks.

Each kind has a marker in the site's `#report#` item: `sent_<kind>` is the last period handled.
A run first *claims* a period with a conditional write (not handled yet, and no other run's
lease alive), so two runs never both send; the period is marked sent only after SES (or the
webhook) accepted every message. A failure is logged without body or addresses, stored as the
site's `last_error` (one sentence) and retried on the next run, which skips the recipients that
already got it (`partial_<kind>`). `run_due` never raises: the compactor must go on.

Numbers are `pipeline.metrics`'s: from the daily rollups when they cover the period
(`load_rollups(compute_missing=False)`, one Query), else from the raw events.

Messages go out with `ses.send_raw_email`: a text and an HTML part (inline styles, every value
escaped) and a `List-Unsubscribe` header, which `send_email` cannot carry.
"""

from __future__ import annotations

import html
import json
import logging
import math
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from pipeline import aws
from pipeline.config import Settings
from pipeline.enrich.sites import Site, list_sites
from pipeline.errors import RollupsIncomplete
from pipeline.ops import recipients
from pipeline.ops.recipients import ReportSettings
from pipeline.stats import anomalies, countries, metrics
from pipeline.store import rollups
from pipeline.store.query import load_events, load_rollups
from pipeline.store.storage import day_bounds

log = logging.getLogger("pipeline.ops.reports")
TOP = 5
TOPS = (("referrer_source", "Top sources"), ("path", "Top pages"), ("country", "Top countries"))
# Enough daily history for the detector: its seasons (weeks) before the day, and the day.
ALERT_WINDOW_DAYS = 7 * 4 + 7
LEASE_MS = 10 * 60 * 1000  # a run that died while sending: another may try after this
WEBHOOK_TIMEOUT = 10
KIND_NAMES = {
    "weekly": "weekly report",
    "monthly": "monthly report",
    "alerts": "traffic notification",
    "webhook": "webhook notification",
}
SIX = (
    ("visitors", "Unique visitors", False),
    ("visits", "Total visits", False),
    ("pageviews", "Total pageviews", False),
    ("views_per_visit", "Views per visit", False),
    ("bounce_rate", "Bounce rate", True),
    ("visit_duration", "Visit duration", False),
)


class DeliveryError(Exception):
    """A message not accepted; the text is one sentence for the site's `last_error`."""


# ---- periods (pure) ----


def local_today(now: datetime, tz: str) -> date:
    return now.astimezone(ZoneInfo(tz)).date()


def last_week(today: date) -> tuple[date, date]:
    """The previous Monday–Sunday (the last week that has ended by `today`)."""
    monday = today - timedelta(days=today.weekday() + 7)
    return monday, monday + timedelta(days=6)


def last_month(today: date) -> tuple[date, date]:
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last


def previous_period(kind: str, first: date, last: date) -> tuple[date, date]:
    """What a report compares with: the week before, or the calendar month before."""
    if kind == "monthly":
        return last_month(first)
    length = (last - first).days + 1
    return first - timedelta(days=length), first - timedelta(days=1)


def period_key(kind: str, first: date) -> str:
    """The marker of a period: ISO strings order as the periods do."""
    return first.strftime("%Y-%m") if kind == "monthly" else first.isoformat()


def period_label(kind: str, first: date, last: date) -> str:
    if kind == "monthly":
        return first.strftime("%B %Y")
    if first == last:
        return first.strftime("%a %d %b %Y")
    return f"{first.strftime('%d %b')} – {last.strftime('%d %b %Y')}"


def dashboard_link(base: str, site: str, first: date, last: date) -> str:
    """The dashboard's view of the period, compared with the period before ("" without a
    dashboard URL)."""
    if not base:
        return ""
    query = {
        "site": site,
        "period": "custom",
        "from": first.isoformat(),
        "to": last.isoformat(),
        "compare": "previous",
    }
    return base.rstrip("/") + "/?" + urlencode(query)


def unsubscribe_link(base: str, token: str) -> str:
    return base.rstrip("/") + "/?" + urlencode({"unsubscribe": token}) if base else ""


# ---- the numbers ----


@dataclass
class Report:
    site: str
    kind: str  # weekly | monthly
    first: date
    last: date
    summary: metrics.Summary
    previous: metrics.Summary
    tops: dict[str, pd.DataFrame]  # dimension → value, visitors (TOP rows)
    link: str = ""
    source: str = "rollups"  # or "raw events"

    @property
    def label(self) -> str:
        return period_label(self.kind, self.first, self.last)

    @property
    def subject(self) -> str:
        return f"{self.site}: {KIND_NAMES[self.kind]} for {self.label}"

    def changes(self) -> dict[str, float | None]:
        return {
            name: metrics.percent_change(getattr(self.summary, name), getattr(self.previous, name))
            for name, _, _ in SIX
        }


def _rollup_numbers(
    settings: Settings, site: str, tz: str, first: date, last: date, now: datetime, dynamodb: Any
) -> tuple[metrics.Summary, dict[str, pd.DataFrame]]:
    days = load_rollups(
        site, first, last, tz=tz, settings=settings, now=now, dynamodb=dynamodb,
        compute_missing=False,
    )  # fmt: skip
    tops = {d: rollups.breakdown(days, d, TOP) for d, _ in TOPS}
    return rollups.summary(days), tops


def _raw_numbers(
    settings: Settings, site: str, tz: str, first: date, last: date, dynamodb: Any
) -> tuple[metrics.Summary, dict[str, pd.DataFrame]]:
    start, end = day_bounds(first, tz)[0], day_bounds(last, tz)[1]
    events = load_events(site, start, end, settings=settings, dynamodb=dynamodb)
    selection = metrics.select(events)
    tops = {d: metrics.breakdown(selection, d, TOP) for d, _ in TOPS}
    return metrics.summary(selection), tops


def period_numbers(
    settings: Settings,
    site: str,
    tz: str,
    first: date,
    last: date,
    now: datetime,
    dynamodb: Any = None,
) -> tuple[metrics.Summary, dict[str, pd.DataFrame], str]:
    """The six numbers and the top tables of local days first..last: from the daily rollups
    when they are all up to date, else from the raw events (the same numbers)."""
    dynamodb = dynamodb or aws.client("dynamodb", settings)
    try:
        found = _rollup_numbers(settings, site, tz, first, last, now, dynamodb)
        return (*found, "rollups")
    except RollupsIncomplete:
        return (*_raw_numbers(settings, site, tz, first, last, dynamodb), "raw events")


def build_report(
    settings: Settings, site: str, tz: str, kind: str, now: datetime, dynamodb: Any = None
) -> Report:
    """The report of the last complete week or month before `now` in zone `tz`."""
    today = local_today(now, tz)
    first, last = last_week(today) if kind == "weekly" else last_month(today)
    return report_for(settings, site, tz, kind, first, last, now, dynamodb)


def report_for(
    settings: Settings,
    site: str,
    tz: str,
    kind: str,
    first: date,
    last: date,
    now: datetime,
    dynamodb: Any = None,
) -> Report:
    summary, tops, source = period_numbers(settings, site, tz, first, last, now, dynamodb)
    before = previous_period(kind, first, last)
    previous = period_numbers(settings, site, tz, *before, now, dynamodb)[0]
    link = dashboard_link(settings.dashboard_url, site, first, last)
    return Report(site, kind, first, last, summary, previous, tops, link, source)


# ---- spikes and drops ----


def _labelled(by_dimension: Mapping[str, Mapping[str, pd.Series]]) -> dict[str, pd.Series]:
    return {
        f"{label} {value}": series
        for dimension, label in anomalies.DIMENSION_LABELS
        for value, series in by_dimension.get(dimension, {}).items()
        if str(value)
    }


def day_series(
    settings: Settings, site: str, tz: str, first: date, last: date, now: datetime, dynamodb: Any
) -> tuple[pd.Series, dict[str, pd.Series]]:
    """Daily visitors of the site, and of each source, page and country (the Overview's
    insight series), over local days first..last: rollups when they cover them, else raw."""
    try:
        days = load_rollups(
            site, first, last, tz=tz, settings=settings, now=now, dynamodb=dynamodb,
            compute_missing=False,
        )  # fmt: skip
        total = rollups.daily(days).set_index("bucket")["visitors"]
        dims = {d: rollups.daily_values(days, d) for d, _ in anomalies.DIMENSION_LABELS}
        return total, _labelled(dims)
    except RollupsIncomplete:
        pass
    start, end = day_bounds(first, tz)[0], day_bounds(last, tz)[1]
    events = load_events(site, start, end, settings=settings, dynamodb=dynamodb)
    bounds = (pd.Timestamp(start), pd.Timestamp(end) - pd.Timedelta(microseconds=1))
    total = anomalies.daily_visitors(events, tz, *bounds)
    dims = {
        column: {
            value: anomalies.daily_visitors(subset, tz, *bounds)
            for value, subset in events.groupby(column, observed=True)
        }
        for column, _ in anomalies.DIMENSION_LABELS
    }
    return total, _labelled(dims)


def findings_on(total: pd.Series, by_label: Mapping[str, pd.Series], day: date) -> list[str]:
    """The insights (plain sentences, largest first) about `day` alone, a completed day."""
    found = anomalies.insights_from(total, by_label, limit=len(by_label) + 1)
    # Each sentence names its day ("... on Tue 18 Nov ..."); the window is shorter than a
    # year, so the name is unambiguous.
    mark = f"on {pd.Timestamp(day).strftime('%a %d %b')}"
    return [text for text in found if mark in text][:TOP]


def alert_findings(
    settings: Settings, site: str, tz: str, day: date, now: datetime, dynamodb: Any = None
) -> list[str]:
    """Spikes and drops of local `day` (which must have ended by `now`)."""
    dynamodb = dynamodb or aws.client("dynamodb", settings)
    first = day - timedelta(days=ALERT_WINDOW_DAYS - 1)
    total, by_label = day_series(settings, site, tz, first, day, now, dynamodb)
    if total.empty or not total.any():
        return []
    return findings_on(total, by_label, day)


# ---- rendering (pure) ----


def _number(value: float) -> str:
    return f"{round(value):,}"


def _value(name: str, value: float) -> str:
    if name == "bounce_rate":
        return f"{round(value * 100)}%"
    if name == "views_per_visit":
        return f"{value:.2f}"
    if name == "visit_duration":
        return metrics.duration_text(value)
    return _number(value)


def _change(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{'+' if value > 0 else ''}{round(value)}%"


def _top_rows(table: pd.DataFrame, dimension: str) -> list[tuple[str, str]]:
    rows = []
    for value, visitors in zip(table["value"], table["visitors"], strict=True):
        shown = str(value) or "(none)"
        if dimension == "country":
            shown = _country(shown)
        rows.append((shown, _number(visitors)))
    return rows


def _country(code: str) -> str:
    name = countries.country_name(code)
    return f"{name} ({code})" if name else code


def _footer_text(unsubscribe: str, site: str) -> str:
    if unsubscribe:
        return f"Stop these e-mails: {unsubscribe}"
    return (
        f"You get this because you were added as a recipient of {site}; the site's owner "
        f"removes you with: python -m pipeline.sites report remove {site} <address>"
    )


def render_text(report: Report, unsubscribe: str = "") -> str:
    changes = report.changes()
    lines = [report.subject, ""]
    for name, label, _ in SIX:
        value = _value(name, getattr(report.summary, name))
        lines.append(f"{label}: {value} ({_change(changes[name])} on the period before)")
    for dimension, title in TOPS:
        lines += ["", f"{title}:"]
        rows = _top_rows(report.tops[dimension], dimension)
        lines += [f"  {value}: {visitors}" for value, visitors in rows] or ["  none"]
    if report.link:
        lines += ["", f"Open the dashboard: {report.link}"]
    lines += ["", _footer_text(unsubscribe, report.site)]
    return "\n".join(lines) + "\n"


_CELL = "padding:4px 8px;border-bottom:1px solid #e5e7eb;"
_BOX = "font-family:Helvetica,Arial,sans-serif;color:#111827;max-width:600px;margin:0 auto;"


def _html_change(value: float | None, lower_is_better: bool) -> str:
    if value is None or value == 0:
        color = "#6b7280"
    else:
        good = (value < 0) if lower_is_better else (value > 0)
        color = "#15803d" if good else "#b91c1c"
    return f'<span style="color:{color};font-size:13px;">{html.escape(_change(value))}</span>'


def _page(title: str, body: str, footer: str) -> str:
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>"
        f'<body style="margin:0;padding:16px;background:#f9fafb;"><div style="{_BOX}">'
        f'<h1 style="font-size:20px;margin:0 0 16px;">{html.escape(title)}</h1>{body}'
        f'<p style="font-size:12px;color:#6b7280;margin-top:24px;">{footer}</p>'
        "</div></body></html>"
    )


def _footer_html(unsubscribe: str, site: str) -> str:
    if unsubscribe:
        link = html.escape(unsubscribe, quote=True)
        return f'<a href="{link}" style="color:#6b7280;">Unsubscribe from these e-mails</a>'
    return html.escape(_footer_text("", site))


def render_html(report: Report, unsubscribe: str = "") -> str:
    """The report as an HTML e-mail: inline styles only (mail clients drop style sheets)."""
    changes = report.changes()
    cells = "".join(
        f'<td style="{_CELL}vertical-align:top;"><div style="font-size:12px;color:#6b7280;">'
        f"{html.escape(label)}</div>"
        f'<div style="font-size:20px;font-weight:bold;">'
        f"{html.escape(_value(name, getattr(report.summary, name)))}</div>"
        f"{_html_change(changes[name], lower_better)}</td>"
        for name, label, lower_better in SIX
    )
    numbers = f'<table style="border-collapse:collapse;width:100%;"><tr>{cells}</tr></table>'
    tables = ""
    for dimension, title in TOPS:
        rows = _top_rows(report.tops[dimension], dimension) or [("none", "")]
        body = "".join(
            f'<tr><td style="{_CELL}">{html.escape(value)}</td>'
            f'<td style="{_CELL}text-align:right;">{html.escape(visitors)}</td></tr>'
            for value, visitors in rows
        )
        tables += (
            f'<h2 style="font-size:16px;margin:20px 0 6px;">{html.escape(title)}</h2>'
            f'<table style="border-collapse:collapse;width:100%;font-size:14px;">'
            f'<tr><th style="{_CELL}text-align:left;">{html.escape(title.split()[-1][:-1].title())}'
            f'</th><th style="{_CELL}text-align:right;">Visitors</th></tr>{body}</table>'
        )
    if report.link:
        href = html.escape(report.link, quote=True)
        tables += (
            f'<p style="margin-top:20px;"><a href="{href}" style="color:#2563eb;">'
            f"Open {html.escape(report.label)} in the dashboard</a></p>"
        )
    return _page(report.subject, numbers + tables, _footer_html(unsubscribe, report.site))


@dataclass
class Alert:
    site: str
    day: date
    findings: list[str]
    link: str = ""

    @property
    def subject(self) -> str:
        return f"{self.site}: unusual traffic on {self.day.strftime('%a %d %b %Y')}"


def alert_text(alert: Alert, unsubscribe: str = "") -> str:
    lines = [alert.subject, "", *[f"- {finding}" for finding in alert.findings]]
    if alert.link:
        lines += ["", f"Open the day in the dashboard: {alert.link}"]
    return "\n".join([*lines, "", _footer_text(unsubscribe, alert.site)]) + "\n"


def alert_html(alert: Alert, unsubscribe: str = "") -> str:
    items = "".join(
        f'<li style="margin:4px 0;">{html.escape(finding)}</li>' for finding in alert.findings
    )
    body = f'<ul style="padding-left:20px;font-size:14px;">{items}</ul>'
    if alert.link:
        href = html.escape(alert.link, quote=True)
        body += f'<p><a href="{href}" style="color:#2563eb;">Open the day in the dashboard</a></p>'
    return _page(alert.subject, body, _footer_html(unsubscribe, alert.site))


def slack_escape(text: str) -> str:
    """Text as Slack's mrkdwn shows it literally: `<`, `>` and `&` are its control characters
    (a page path `/<!channel>` would otherwise notify a whole channel, `<https://x|y>` make a
    disguised link). Slack documents exactly these three escapes."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webhook_text(alert: Alert) -> str:
    """The notification for a webhook; every value from the events is escaped."""
    day = alert.day.strftime("%a %d %b %Y")
    lines = [f"Unusual traffic on {slack_escape(alert.site)}, {day}:"]
    lines += [f"• {slack_escape(finding)}" for finding in alert.findings]
    if alert.link:
        lines.append(slack_escape(alert.link))  # a bare link: every Slack-compatible tool shows it
    return "\n".join(lines)


# ---- sending ----


def mime_message(
    sender: str, to: str, subject: str, text: str, html_body: str, unsubscribe: str
) -> bytes:
    """A multipart/alternative message (text first, then HTML), with `List-Unsubscribe`."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1])
    if unsubscribe:
        message["List-Unsubscribe"] = f"<{unsubscribe}>"
    message.set_content(text)
    message.add_alternative(html_body, subtype="html")
    return message.as_bytes()


def ses_sentence(exc: ClientError | BotoCoreError) -> str:
    """Why SES did not take a message, in one sentence without addresses (its own message
    can name them)."""
    if isinstance(exc, BotoCoreError):
        return f"SES could not be reached ({type(exc).__name__}); retried on the next run"
    code = aws.error_code(exc)
    if code == "MessageRejected":
        return (
            "SES rejected the message: verify the sender address in SES and, while the "
            "account is in the SES sandbox, every recipient too (or leave the sandbox); "
            "retried on the next run"
        )
    if code in ("Throttling", "ThrottlingException", "MaxSendingRateExceeded", "LimitExceeded"):
        return "SES is throttling or the daily sending quota is used up; retried on the next run"
    if code in ("AccessDenied", "AccessDeniedException"):
        return "the compactor may not send with SES (ses:SendRawEmail); retried on the next run"
    return f"SES refused the message ({code}); retried on the next run"


def send_mail(
    ses: Any, sender: str, to: str, subject: str, text: str, body: str, unsub: str
) -> None:
    raw = mime_message(sender, to, subject, text, body, unsub)
    try:
        ses.send_raw_email(Source=sender, Destinations=[to], RawMessage={"Data": raw})
    except (ClientError, BotoCoreError) as exc:
        raise DeliveryError(ses_sentence(exc)) from None


def post_webhook(url: str, text: str) -> None:
    """POST `{"text": ...}` (Slack's incoming-webhook format; Mattermost, Discord's /slack
    endpoint and others take it too)."""
    recipients.check_webhook(url)  # https only (http to this machine): stored URLs too
    request = urllib.request.Request(  # noqa: S310 - scheme checked just above
        url,
        data=json.dumps({"text": text}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as answer:  # noqa: S310
            answer.read(1024)
    except urllib.error.HTTPError as exc:
        raise DeliveryError(
            f"the webhook answered HTTP {exc.code}; retried on the next run"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = type(getattr(exc, "reason", exc)).__name__
        raise DeliveryError(
            f"the webhook could not be reached ({reason}); retried on the next run"
        ) from None


# ---- markers in the #report# item ----


def _update(settings: Settings, dynamodb: Any, site: str, **kwargs: Any) -> bool:
    """A conditional UpdateItem of the site's `#report#` item; False when the condition fails."""
    try:
        dynamodb.update_item(
            TableName=settings.sites_table, Key=recipients.item_key(site), **kwargs
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return False
    return True


def claim(settings: Settings, dynamodb: Any, site: str, kind: str, key: str, now_ms: int) -> bool:
    """Take `kind`'s period `key` for this run: not handled yet and no live lease of another
    run. Only one of two runs at once gets it."""
    return _update(
        settings,
        dynamodb,
        site,
        UpdateExpression=f"SET lease_{kind} = :until",
        ConditionExpression=(
            f"attribute_exists(site) AND (attribute_not_exists(sent_{kind}) OR sent_{kind} < :key)"
            f" AND (attribute_not_exists(lease_{kind}) OR lease_{kind} < :now)"
        ),
        ExpressionAttributeValues={
            ":until": {"N": str(now_ms + LEASE_MS)},
            ":key": {"S": key},
            ":now": {"N": str(now_ms)},
        },
    )


def mark_sent(
    settings: Settings, dynamodb: Any, site: str, kind: str, key: str, said: str, now: datetime
) -> None:
    """The period is handled; `said` ("" when there was nothing to send) is what was sent."""
    update = f"SET sent_{kind} = :key REMOVE lease_{kind}, partial_{kind}"
    values = {":key": {"S": key}}
    if said:
        update = f"SET sent_{kind} = :key, last_sent = :said, last_sent_at = :at "
        update += f"REMOVE lease_{kind}, partial_{kind}"
        values |= {":said": {"S": said}, ":at": {"S": now.isoformat(timespec="seconds")}}
    _update(settings, dynamodb, site, UpdateExpression=update, ExpressionAttributeValues=values)


def mark_failed(
    settings: Settings,
    dynamodb: Any,
    site: str,
    kind: str,
    key: str,
    done: Sequence[str],
    error: str,
    now: datetime,
) -> None:
    """Keep who already got the period, the error, and free the period for the next run."""
    _update(
        settings,
        dynamodb,
        site,
        UpdateExpression=(
            f"SET partial_{kind} = :p, last_error = :e, last_error_at = :at REMOVE lease_{kind}"
        ),
        ExpressionAttributeValues={
            ":p": {"M": {"period": {"S": key}, "emails": {"L": [{"S": e} for e in done]}}},
            ":e": {"S": error},
            ":at": {"S": now.isoformat(timespec="seconds")},
        },
    )


def clear_error(settings: Settings, dynamodb: Any, site: str) -> None:
    _update(settings, dynamodb, site, UpdateExpression="REMOVE last_error, last_error_at")


def already_got(found: ReportSettings, kind: str, key: str) -> set[str]:
    partial = found.item.get(f"partial_{kind}", {}).get("M", {})
    if partial.get("period", {}).get("S") != key:
        return set()
    return {e["S"] for e in partial.get("emails", {}).get("L", [])}


# ---- what is due, and sending it ----


@dataclass
class RunSummary:
    emails: int = 0
    webhooks: int = 0
    failures: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "report_emails_sent": self.emails,
            "webhook_posts": self.webhooks,
            "report_failures": self.failures,
        }
        if self.notes:
            found["reports_note"] = "; ".join(dict.fromkeys(self.notes))
        return found


@dataclass
class Job:
    kind: str  # weekly | monthly | alerts | webhook
    key: str
    to: list[recipients.Recipient]  # e-mail recipients (none for the webhook)


def due_jobs(found: ReportSettings, tz: str, now: datetime, sender: str) -> list[Job]:
    """What the site's recipients should get by `now` and has not been handled (pure)."""
    today = local_today(now, tz)
    yesterday = today - timedelta(days=1)
    periods = {
        "weekly": period_key("weekly", last_week(today)[0]),
        "monthly": period_key("monthly", last_month(today)[0]),
        "alerts": yesterday.isoformat(),
        "webhook": yesterday.isoformat(),
    }
    jobs = []
    for kind, key in periods.items():
        if found.text(f"sent_{kind}") >= key:
            continue
        if kind == "webhook":
            if found.webhook:
                jobs.append(Job(kind, key, []))
            continue
        people = [p for p in found.recipients if p.wants(kind)]
        if people and sender:
            jobs.append(Job(kind, key, people))
    return jobs


@dataclass
class SiteRun:
    settings: Settings
    dynamodb: Any
    ses: Callable[[], Any]
    site: Site
    found: ReportSettings
    now: datetime
    summary: RunSummary
    _findings: list[str] | None = None

    def findings(self) -> list[str]:
        if self._findings is None:
            day = local_today(self.now, self.site.timezone) - timedelta(days=1)
            self._findings = alert_findings(
                self.settings, self.site.domain, self.site.timezone, day, self.now, self.dynamodb
            )
        return self._findings


def _deliver(run: SiteRun, job: Job) -> tuple[str, list[str]]:
    """Send `job`; (what was sent, "" for nothing; who got it). Raises DeliveryError."""
    settings, site, tz = run.settings, run.site.domain, run.site.timezone
    base = settings.dashboard_url
    if job.kind in ("weekly", "monthly"):
        report = build_report(settings, site, tz, job.kind, run.now, run.dynamodb)
        subject = report.subject

        def render(unsub: str) -> tuple[str, str]:
            return render_text(report, unsub), render_html(report, unsub)
    else:
        findings = run.findings()
        if not findings:
            return "", []
        day = date.fromisoformat(job.key)
        alert = Alert(site, day, findings, dashboard_link(base, site, day, day))
        subject = alert.subject
        if job.kind == "webhook":
            post_webhook(run.found.webhook, webhook_text(alert))
            run.summary.webhooks += 1
            return f"{KIND_NAMES['webhook']} for {job.key}", []

        def render(unsub: str) -> tuple[str, str]:
            return alert_text(alert, unsub), alert_html(alert, unsub)

    done = sorted(already_got(run.found, job.kind, job.key))
    ses = run.ses()
    for person in job.to:
        if person.email in done:
            continue
        unsub = unsubscribe_link(base, person.token)
        text, body = render(unsub)
        try:
            send_mail(ses, settings.report_sender, person.email, subject, text, body, unsub)
        except DeliveryError as exc:
            raise PartlySent(str(exc), done) from None
        done.append(person.email)
        run.summary.emails += 1
    label = f"{KIND_NAMES[job.kind]} for {period_label_of(job)}"
    return f"{label} to {len(job.to)} recipient(s)", done


class PartlySent(DeliveryError):
    def __init__(self, sentence: str, done: list[str]) -> None:
        super().__init__(sentence)
        self.done = done


def period_label_of(job: Job) -> str:
    if job.kind == "monthly":
        return date.fromisoformat(job.key + "-01").strftime("%B %Y")
    return job.key if job.kind != "weekly" else f"the week of {job.key}"


def run_site(run: SiteRun) -> None:
    """Everything due for one site; each kind fails alone."""
    jobs = due_jobs(run.found, run.site.timezone, run.now, run.settings.report_sender)
    now_ms = int(run.now.timestamp() * 1000)
    failed = sent = False
    for job in jobs:
        site = run.site.domain
        if not claim(run.settings, run.dynamodb, site, job.kind, job.key, now_ms):
            continue  # handled meanwhile, or another run is on it
        try:
            said, _ = _deliver(run, job)
        except Exception as exc:  # never crash the compactor; next run retries
            failed = True
            done = exc.done if isinstance(exc, PartlySent) else []
            sentence = (
                str(exc)
                if isinstance(exc, DeliveryError)
                else (f"could not be prepared ({type(exc).__name__}); retried on the next run")
            )
            error = f"{KIND_NAMES[job.kind]} for {job.key}: {sentence}"
            # No body, no addresses: the kind, the period and why.
            log.warning("%s: %s", site, error)
            run.summary.failures += 1
            mark_failed(run.settings, run.dynamodb, site, job.kind, job.key, done, error, run.now)
            continue
        mark_sent(run.settings, run.dynamodb, site, job.kind, job.key, said, run.now)
        sent = sent or bool(said)
    if sent and not failed and run.found.text("last_error"):
        clear_error(run.settings, run.dynamodb, run.site.domain)


def run_due(
    settings: Settings,
    now: datetime | None = None,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Send every report and notification due by `now`; a small summary. Never raises.
    No site is started after `deadline` (a `clock()` value): the sites left stay due, and the
    next run sends them (a site costs ~3 s with rollups, ~40 s without: bench/RESULTS.md)."""
    now = now or datetime.now(UTC)
    summary = RunSummary()
    try:
        dynamodb = aws.client("dynamodb", settings)
        wanted = [
            f for f in recipients.all_report_settings(settings, dynamodb)
            if f.recipients or f.webhook
        ]  # fmt: skip
        if not wanted:
            return summary.as_dict()
        if not settings.report_sender and any(f.recipients for f in wanted):
            summary.notes.append("no report sender configured (ReportSender): no e-mail sent")
        sites = {site.domain: site for site in list_sites(settings)}
        clients: dict[str, Any] = {}

        def ses() -> Any:
            if "ses" not in clients:
                clients["ses"] = aws.client("ses", settings)
            return clients["ses"]

        for done, found in enumerate(wanted):
            if deadline is not None and clock() >= deadline:
                left = len(wanted) - done
                summary.notes.append(f"out of time: {left} site(s) left for the next run")
                log.warning("reports: out of time, %d site(s) left for the next run", left)
                break
            site = sites.get(found.site)
            if site is None:
                continue  # removed from the registry: nothing is counted, nothing to report
            try:
                run_site(SiteRun(settings, dynamodb, ses, site, found, now, summary))
            except Exception as exc:  # one site's failure must not stop others
                summary.failures += 1
                log.warning("%s: reports not handled (%s)", found.site, type(exc).__name__)
    except Exception as exc:  # the compactor's run must go on
        summary.failures += 1
        summary.notes.append(f"reports not handled ({type(exc).__name__})")
        log.warning("reports not handled: %s", type(exc).__name__)
    return summary.as_dict()


# ---- status for Pipeline health ----


@dataclass(frozen=True)
class Status:
    site: str
    recipients: int
    webhook: bool
    last_sent: str
    last_sent_at: str
    last_error: str
    last_error_at: str


def status(settings: Settings) -> list[Status]:
    """Per site with recipients or a webhook: what was last sent and the last error."""
    return [
        Status(
            found.site,
            len(found.recipients),
            bool(found.webhook),
            found.text("last_sent"),
            found.text("last_sent_at"),
            found.text("last_error"),
            found.text("last_error_at"),
        )
        for found in recipients.all_report_settings(settings)
        if found.recipients or found.webhook
    ]
