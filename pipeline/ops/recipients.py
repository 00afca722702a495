"""Who receives a site's e-mail reports and traffic notifications, and the `report` command.

One registry item per site (the sites table, key `#report#<site>`, skipped by `list_sites`):

- `recipients` (M): address → {`weekly`, `monthly`, `alerts` (BOOL), `token` (S: the
  recipient's unsubscribe token, `secrets.token_urlsafe(32)`, stored as is: every e-mail
  carries it again)}
- `webhook` (S): a Slack-compatible incoming webhook that receives notifications
- `rev` (N): bumped by every change of recipients or webhook; a change is written only if
  `rev` is still what it read (two `report add` at once cannot lose one)
- what `pipeline.ops.reports` writes: `sent_<kind>` (S, the last period sent: a week's Monday,
  a month "YYYY-MM", a notification day), `lease_<kind>` (N: until when, in ms, a run is
  sending it), `partial_<kind>` (M: period, emails: who got it before a failure), `last_sent`,
  `last_sent_at`,
  `last_error`, `last_error_at` (S, shown in Pipeline health)

    python -m pipeline.sites report add example.com ann@example.com --weekly --alerts
    python -m pipeline.sites report list example.com
    python -m pipeline.sites report remove example.com ann@example.com
    python -m pipeline.sites report webhook example.com https://hooks.slack.com/services/...
    python -m pipeline.sites report webhook example.com --remove
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pipeline import aws
from pipeline.config import Settings
from pipeline.enrich.sites import normalize_domain, registered
from pipeline.errors import PipelineError, StorageError
from pipeline.ops.emails import check_email

PREFIX = "#report#"
KINDS = ("weekly", "monthly", "alerts")
MAX_URL = 2000
_ATTEMPTS = 5


class InvalidRecipient(PipelineError, ValueError):
    """A `report` request the registry won't take; the message is one sentence."""


@dataclass(frozen=True)
class Recipient:
    email: str
    token: str
    weekly: bool = False
    monthly: bool = False
    alerts: bool = False

    def wants(self, kind: str) -> bool:
        return bool(getattr(self, kind, False))

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(kind for kind in KINDS if self.wants(kind))


@dataclass(frozen=True)
class ReportSettings:
    """A site's `#report#` item, read."""

    site: str
    recipients: tuple[Recipient, ...] = ()
    webhook: str = ""
    rev: int = 0
    item: Mapping[str, Any] = field(default_factory=dict)  # the raw item (markers and all)

    def text(self, name: str) -> str:
        return self.item.get(name, {}).get("S", "")


def item_key(site: str) -> dict[str, Any]:
    return {"site": {"S": PREFIX + site}}


def recipient_from(email: str, value: Mapping[str, Any]) -> Recipient:
    flags = value.get("M", {})
    return Recipient(
        email=email,
        token=flags.get("token", {}).get("S", ""),
        **{kind: bool(flags.get(kind, {}).get("BOOL", False)) for kind in KINDS},
    )


def recipient_value(recipient: Recipient) -> dict[str, Any]:
    flags: dict[str, Any] = {kind: {"BOOL": recipient.wants(kind)} for kind in KINDS}
    return {"M": {**flags, "token": {"S": recipient.token}}}


def settings_from_item(item: Mapping[str, Any]) -> ReportSettings:
    people = item.get("recipients", {}).get("M", {})
    return ReportSettings(
        site=item["site"]["S"].removeprefix(PREFIX),
        recipients=tuple(recipient_from(email, value) for email, value in sorted(people.items())),
        webhook=item.get("webhook", {}).get("S", ""),
        rev=int(item.get("rev", {}).get("N", "0")),
        item=dict(item),
    )


def check_webhook(url: str) -> str:
    """An https URL (http only to this machine, for tests); one sentence otherwise."""
    text = url.strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        parts = None
    loopback = parts is not None and parts.scheme == "http" and aws.is_loopback_url(text)
    if (
        parts is None
        or len(text) > MAX_URL
        or not parts.hostname
        or (parts.scheme != "https" and not loopback)
        or any(c.isspace() for c in text)
    ):
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise InvalidRecipient(
            f"{shown!r} is not an https:// webhook URL like https://hooks.slack.com/services/..."
        )
    return text


def read(settings: Settings, site: str, dynamodb: Any = None) -> ReportSettings:
    """The site's report settings (none yet: no recipients)."""
    dynamodb = dynamodb or aws.client("dynamodb", settings)
    with aws.explained(settings, f"Table {settings.sites_table!r}"):
        found = dynamodb.get_item(
            TableName=settings.sites_table, Key=item_key(site), ConsistentRead=True
        )
    return settings_from_item(found.get("Item") or item_key(site))


def all_report_settings(settings: Settings, dynamodb: Any = None) -> list[ReportSettings]:
    """Every site's `#report#` item (one Scan of the registry, which is small)."""
    return [settings_from_item(item) for item in _report_items(settings, dynamodb)]


def _report_items(settings: Settings, dynamodb: Any = None) -> Iterator[dict[str, Any]]:
    dynamodb = dynamodb or aws.client("dynamodb", settings)
    kwargs: dict[str, Any] = {
        "TableName": settings.sites_table,
        "FilterExpression": "begins_with(site, :p)",
        "ExpressionAttributeValues": {":p": {"S": PREFIX}},
    }
    with aws.explained(settings, f"Table {settings.sites_table!r}"):
        yield from aws.scanned(dynamodb, **kwargs)


def _write(
    settings: Settings, dynamodb: Any, current: ReportSettings, people: list[Recipient], hook: str
) -> bool:
    """Store recipients and webhook if nobody changed them since `current` was read."""
    values: dict[str, Any] = {
        ":r": {"M": {p.email: recipient_value(p) for p in people}},
        ":new": {"N": str(current.rev + 1)},
        ":old": {"N": str(current.rev)},
    }
    update = "SET recipients = :r, rev = :new"
    if hook:
        update += ", webhook = :w"
        values[":w"] = {"S": hook}
    else:
        update += " REMOVE webhook"
    try:
        dynamodb.update_item(
            TableName=settings.sites_table,
            Key=item_key(current.site),
            UpdateExpression=update,
            ConditionExpression="attribute_not_exists(rev) OR rev = :old",
            ExpressionAttributeValues=values,
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return False
    return True


def _change(settings: Settings, site: str, edit: Any) -> ReportSettings:
    """Apply `edit(current) -> (recipients, webhook)` with optimistic concurrency."""
    dynamodb = aws.client("dynamodb", settings)
    for _ in range(_ATTEMPTS):
        current = read(settings, site, dynamodb)
        people, hook = edit(current)
        with aws.explained(settings, f"Table {settings.sites_table!r}"):
            if _write(settings, dynamodb, current, people, hook):
                return read(settings, site, dynamodb)
    raise StorageError(f"the report settings of {site} kept changing; try again")


def add_recipient(settings: Settings, site: str, email: str, kinds: set[str]) -> Recipient:
    """Add (or update the kinds of) a recipient of a registered site."""
    if not kinds or not kinds <= set(KINDS):
        raise InvalidRecipient("say what to send: --weekly, --monthly and/or --alerts")
    address = check_email(email)
    site = registered(settings, site)

    def edit(current: ReportSettings) -> tuple[list[Recipient], str]:
        others = [p for p in current.recipients if p.email.casefold() != address.casefold()]
        same = [p for p in current.recipients if p.email.casefold() == address.casefold()]
        token = same[0].token if same and same[0].token else secrets.token_urlsafe(32)
        flags = {kind: kind in kinds for kind in KINDS}
        return [*others, Recipient(address, token, **flags)], current.webhook

    stored = _change(settings, site, edit)
    return next(p for p in stored.recipients if p.email == address)


def remove_recipient(settings: Settings, site: str, email: str) -> bool:
    """Stop sending anything to `email` for `site`; False when it was not a recipient."""
    address, site = check_email(email), normalize_domain(site)
    current = read(settings, site)
    if not any(p.email.casefold() == address.casefold() for p in current.recipients):
        return False

    def edit(current: ReportSettings) -> tuple[list[Recipient], str]:
        kept = [p for p in current.recipients if p.email.casefold() != address.casefold()]
        return kept, current.webhook

    _change(settings, site, edit)
    return True


def set_webhook(settings: Settings, site: str, url: str) -> None:
    """Send the site's notifications to `url` too ("" stops that)."""
    hook = check_webhook(url) if url else ""
    site = registered(settings, site) if hook else normalize_domain(site)
    _change(settings, site, lambda current: (list(current.recipients), hook))


def unsubscribe(settings: Settings, token: str) -> tuple[str, str] | None:
    """Remove the recipient whose unsubscribe token this is (every kind): (their address, the
    site), or None for a token nobody has (used or mistyped)."""
    token = token.strip()
    if not token or len(token) > 200:
        return None
    for found in all_report_settings(settings):
        for person in found.recipients:
            if person.token and secrets.compare_digest(person.token, token):
                remove_recipient(settings, found.site, person.email)
                return person.email, found.site
    return None


# ---- the `report` command of `python -m pipeline.sites` ----


def add_parser(commands: Any) -> None:
    """Adds the `report` command to `python -m pipeline.sites`."""
    report = commands.add_parser("report", help="the site's e-mail reports and notifications")
    sub = report.add_subparsers(dest="report_command", required=True)
    add = sub.add_parser("add", help="send reports to an address (again: change what it gets)")
    add.add_argument("domain")
    add.add_argument("email")
    add.add_argument("--weekly", action="store_true", help="a report of every week (Mon–Sun)")
    add.add_argument("--monthly", action="store_true", help="a report of every calendar month")
    add.add_argument("--alerts", action="store_true", help="traffic spike and drop notifications")
    listing = sub.add_parser("list", help="who gets what, and the webhook")
    listing.add_argument("domain")
    remove = sub.add_parser("remove", help="stop sending anything to an address")
    remove.add_argument("domain")
    remove.add_argument("email")
    hook = sub.add_parser("webhook", help="post notifications to a Slack-compatible webhook")
    hook.add_argument("domain")
    hook.add_argument("url", nargs="?", default="")
    hook.add_argument("--remove", action="store_true", help="stop posting to the webhook")


def command(settings: Settings, args: argparse.Namespace) -> int:
    """`report add|list|remove|webhook`: what to print, and the exit status."""
    action = args.report_command
    if action == "add":
        kinds = {kind for kind in KINDS if getattr(args, kind)}
        person = add_recipient(settings, args.domain, args.email, kinds)
        print(f"{person.email} gets {', '.join(person.kinds)} for {normalize_domain(args.domain)}")
    elif action == "list":
        found = read(settings, normalize_domain(args.domain))
        for person in found.recipients:
            print(f"{person.email}\t{', '.join(person.kinds)}")
        if found.webhook:
            print(f"webhook\t{_shown_webhook(found.webhook)}")
    elif action == "remove":
        if not remove_recipient(settings, args.domain, args.email):
            print(f"{args.email} gets no reports for {args.domain}", file=sys.stderr)
            return 1
        print(f"{args.email} gets nothing more for {normalize_domain(args.domain)}")
    elif args.remove == bool(args.url):
        raise InvalidRecipient("give either a webhook URL or --remove")
    else:
        set_webhook(settings, args.domain, "" if args.remove else args.url)
        print("webhook removed" if args.remove else "notifications go to the webhook too")
    return 0


def _shown_webhook(url: str) -> str:
    # A Slack webhook's path is its secret: show where it goes, not the key.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…"
