"""Share links and login allowlists per site, kept in the site registry table.

A share link opens one site's dashboard, read only, to whoever holds it (Plausible's shared
links). Its token is 32 random bytes from `secrets` (43 URL-safe characters), shown once when
the link is made; the registry keeps only its SHA-256, in an item of its own:

    {"site": "#share#<sha256 hex>", "share_site": "example.com", "prefix": "AbC12x",
     "created_at": "2026-11-27T15:00:00Z", "expires_at": "2026-12-27T15:00:00Z",
     "password": "scrypt$16384$8$1$<salt>$<hash>"}

`expires_at` and `password` are absent for a link that never expires or has no password. A
plain hash suits the token (256 random bits: nothing to guess from it); a password is chosen by
a person, so it gets scrypt with a random salt per link (hashlib, no dependency) and is
compared in constant time. The visible six-character prefix names a link in `list` and
`revoke`, as API keys are named.

Who may log in through the identity provider (`[auth]`) is an allowlist per site:

    {"site": "#access#example.com", "access_site": "example.com",
     "emails": {"SS": ["ann@example.org", "*@example.com"]}}

An entry is an address (checked and normalised by `pipeline.ops.emails.check_email`) or a whole
domain written `*@example.com`. Removing a site leaves its links and allowlist in place, refused
while the site is not registered (`open_share`, `allowed_sites`).

    python -m pipeline.sites share create example.com [--password | --password-stdin]
                                                      [--expires-days 30] [--base-url URL]
    python -m pipeline.sites share list example.com
    python -m pipeline.sites share revoke example.com PREFIX
    python -m pipeline.sites access add|remove example.com EMAIL
    python -m pipeline.sites access list example.com

"""

from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import hmac
import secrets
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from pipeline import aws
from pipeline.config import ENV_DASHBOARD_URL, Settings
from pipeline.enrich.sites import RESERVED_KEY_PREFIX, is_registered, normalize_domain, registered
from pipeline.errors import PipelineError
from pipeline.ops.emails import InvalidEmail, check_email, same_address

SHARE_ITEM_PREFIX = "#share#"
ACCESS_ITEM_PREFIX = "#access#"
TOKEN_BYTES = 32
PREFIX_CHARS = 6
MAX_TOKEN_CHARS = 200  # anything longer is no token of ours: refused before hashing
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024
MAX_EXPIRES_DAYS = 3650
# scrypt at RFC 7914's interactive cost: ~16 MB and some 50 ms a check.
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LEN = 2**14, 8, 1, 32
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class ShareError(PipelineError):
    """A share or allowlist command that cannot be done; the message is one sentence."""


class ShareRefused(ShareError):
    """A share link that opens nothing (unknown, revoked, expired, its site gone)."""


@dataclass(frozen=True)
class Share:
    """A share link as the registry keeps it: never the token, which is not stored."""

    site: str
    prefix: str
    created_at: str
    expires_at: str | None = None
    digest: str = ""  # the token's SHA-256: the item's key, and what a session remembers
    password_hash: str = field(default="", repr=False)

    @property
    def has_password(self) -> bool:
        return bool(self.password_hash)


# ---- tokens and passwords (pure) ----


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def hash_password(password: str, salt: bytes | None = None) -> str:
    """`scrypt$n$r$p$salt$hash`, with a fresh random salt unless one is given."""
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=SCRYPT_LEN
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def password_matches(password: str, stored: str) -> bool:
    """Whether `password` is the one `stored` was made from (constant-time comparison); a
    malformed stored value matches nothing."""
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt" or len(password) > MAX_PASSWORD_CHARS:
            return False
        given = hashlib.scrypt(
            password.encode(),
            salt=base64.urlsafe_b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=SCRYPT_LEN,
        )
        return hmac.compare_digest(given, base64.urlsafe_b64decode(expected))
    except (ValueError, TypeError):
        return False


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS or len(password) > MAX_PASSWORD_CHARS:
        raise ShareError(
            f"a share link's password is {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )
    return password


def share_link(base_url: str, token: str) -> str:
    """`{base_url}/?share=<token>`, whatever the base's trailing slash."""
    return base_url.rstrip("/") + "/?" + urlencode({"share": token})


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def _parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def shown_time(stamp: str) -> str:
    """`2026-12-04T21:00:00Z` → `2026-12-04 21:00 UTC`."""
    return _parse_stamp(stamp).strftime("%Y-%m-%d %H:%M UTC")


def share_item(share: Share) -> dict[str, Any]:
    item: dict[str, Any] = {
        "site": {"S": SHARE_ITEM_PREFIX + share.digest},
        "share_site": {"S": share.site},
        "prefix": {"S": share.prefix},
        "created_at": {"S": share.created_at},
    }
    if share.expires_at:
        item["expires_at"] = {"S": share.expires_at}
    if share.password_hash:
        item["password"] = {"S": share.password_hash}
    return item


def share_from_item(item: Mapping[str, Any]) -> Share:
    return Share(
        site=item["share_site"]["S"],
        prefix=item["prefix"]["S"],
        created_at=item.get("created_at", {}).get("S", ""),
        expires_at=item.get("expires_at", {}).get("S") or None,
        digest=item["site"]["S"].removeprefix(SHARE_ITEM_PREFIX),
        password_hash=item.get("password", {}).get("S", ""),
    )


def refusal(share: Share | None, now: datetime, site_registered: bool) -> str | None:
    """Why `share` opens nothing at `now` (one sentence), or None when it opens its site."""
    if share is None:
        return "This share link is not valid: it was revoked, or it was never made."
    if share.expires_at and _parse_stamp(share.expires_at) <= now:
        return f"This share link expired on {shown_time(share.expires_at)}."
    if not site_registered:
        return "This share link's site is no longer registered here."
    return None


# ---- allowlist entries (pure) ----


def check_entry(text: str) -> str:
    """An allowlist entry: an address, or `*@domain` for everyone of a domain."""
    given = str(text).strip()
    if given.startswith("*@"):
        try:
            domain = check_email("x" + given[1:]).rsplit("@", 1)[1]
        except InvalidEmail:
            raise InvalidEmail(f"{given[:80]!r} is not a domain entry like *@example.com") from None
        return "*@" + domain.lower()
    return check_email(given)


def entry_allows(entry: str, email: str) -> bool:
    """Whether an allowlist entry lets `email` (a normalised address) in."""
    if entry.startswith("*@"):
        return email.rsplit("@", 1)[-1].casefold() == entry[2:].casefold()
    return same_address(entry, email)


# ---- the registry ----


def _table(settings: Settings) -> str:
    return f"Table {settings.sites_table!r}"


def create_share(
    settings: Settings,
    site: str,
    password: str | None = None,
    expires_days: int | None = None,
    now: datetime | None = None,
) -> tuple[str, Share]:
    """A new share link of `site` (registered); its token, returned this once only."""
    site = registered(settings, site)
    if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRES_DAYS:
        raise ShareError(f"--expires-days is a whole number of days from 1 to {MAX_EXPIRES_DAYS}")
    now = now or datetime.now(UTC)
    token = new_token()
    share = Share(
        site=site,
        prefix=token[:PREFIX_CHARS],
        created_at=_stamp(now),
        expires_at=_stamp(now + timedelta(days=expires_days)) if expires_days else None,
        digest=token_digest(token),
        password_hash=hash_password(check_password(password)) if password is not None else "",
    )
    with aws.explained(settings, _table(settings)):
        aws.client("dynamodb", settings).put_item(
            TableName=settings.sites_table,
            Item=share_item(share),
            # 256 random bits never collide; the condition only guards against a broken RNG.
            ConditionExpression="attribute_not_exists(site)",
        )
    return token, share


def _scan(settings: Settings, **filters: Any) -> list[dict[str, Any]]:
    with aws.explained(settings, _table(settings)):
        dynamodb = aws.client("dynamodb", settings)
        return list(aws.scanned(dynamodb, TableName=settings.sites_table, **filters))


def list_shares(settings: Settings, site: str) -> list[Share]:
    """`site`'s share links, oldest first."""
    items = _scan(
        settings,
        FilterExpression="begins_with(site, :p) AND share_site = :s",
        ExpressionAttributeValues={
            ":p": {"S": SHARE_ITEM_PREFIX},
            ":s": {"S": normalize_domain(site)},
        },
    )
    return sorted((share_from_item(i) for i in items), key=lambda s: (s.created_at, s.prefix))


def revoke_share(settings: Settings, site: str, prefix: str) -> int:
    """Delete `site`'s links whose visible prefix is `prefix`; how many there were. An open
    dashboard session of such a link is refused at its next interaction."""
    if len(prefix) != PREFIX_CHARS:
        raise ShareError(f"give the link's {PREFIX_CHARS}-character prefix, as `list` shows it")
    doomed = [s for s in list_shares(settings, site) if s.prefix == prefix]
    with aws.explained(settings, _table(settings)):
        dynamodb = aws.client("dynamodb", settings)
        for share in doomed:
            dynamodb.delete_item(
                TableName=settings.sites_table,
                Key={"site": {"S": SHARE_ITEM_PREFIX + share.digest}},
            )
    return len(doomed)


def open_digest(settings: Settings, digest: str, now: datetime) -> Share:
    """The share whose token hashes to `digest`, if it opens its site at `now`; a
    `ShareRefused` with one sentence otherwise. Read afresh each time: revoking is immediate."""
    with aws.explained(settings, _table(settings)):
        dynamodb = aws.client("dynamodb", settings)
        item = dynamodb.get_item(
            TableName=settings.sites_table,
            Key={"site": {"S": SHARE_ITEM_PREFIX + digest}},
            ConsistentRead=True,
        ).get("Item")
        share = share_from_item(item) if item else None
        registered = share is not None and is_registered(dynamodb, settings.sites_table, share.site)
    reason = refusal(share, now, registered)
    if reason or share is None:
        raise ShareRefused(reason or "This share link is not valid.")
    return share


def open_share(settings: Settings, token: str, now: datetime | None = None) -> Share:
    """The share `token` opens at `now` (its site, its password hash to check); a
    `ShareRefused` with one sentence for an unknown, forged, revoked or expired token, or one
    whose site is no longer registered."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise ShareRefused(refusal(None, datetime.now(UTC), False) or "")
    return open_digest(settings, token_digest(token), now or datetime.now(UTC))


def _access_key(site: str) -> dict[str, Any]:
    return {"site": {"S": ACCESS_ITEM_PREFIX + site}}


def allow(settings: Settings, site: str, entry: str) -> str:
    """Add `entry` (an address or `*@domain`) to `site`'s allowlist; the entry as stored."""
    site, entry = registered(settings, site), check_entry(entry)
    with aws.explained(settings, _table(settings)):
        aws.client("dynamodb", settings).update_item(
            TableName=settings.sites_table,
            Key=_access_key(site),
            UpdateExpression="ADD emails :e SET access_site = :s",
            ExpressionAttributeValues={":e": {"SS": [entry]}, ":s": {"S": site}},
        )
    return entry


def allowed_entries(settings: Settings, site: str) -> list[str]:
    """`site`'s allowlist, sorted."""
    with aws.explained(settings, _table(settings)):
        item = (
            aws.client("dynamodb", settings)
            .get_item(TableName=settings.sites_table, Key=_access_key(normalize_domain(site)))
            .get("Item", {})
        )
    return sorted(item.get("emails", {}).get("SS", []))


def disallow(settings: Settings, site: str, entry: str) -> bool:
    """Remove `entry` from `site`'s allowlist (matched as `same_address` does); False when it
    was not there."""
    site = normalize_domain(site)
    wanted = check_entry(entry)
    present = [e for e in allowed_entries(settings, site) if same_address(e, wanted)]
    if not present:
        return False
    with aws.explained(settings, _table(settings)):
        aws.client("dynamodb", settings).update_item(
            TableName=settings.sites_table,
            Key=_access_key(site),
            UpdateExpression="DELETE emails :e",
            ExpressionAttributeValues={":e": {"SS": present}},
        )
    return True


def sites_allowing(items: Iterable[Mapping[str, Any]], email: str) -> list[str]:
    """From the registry's items, the registered sites whose allowlist lets `email` in."""
    items = list(items)
    registered = {
        i["site"]["S"] for i in items if not i["site"]["S"].startswith(RESERVED_KEY_PREFIX)
    }
    allowed = {
        i["access_site"]["S"]
        for i in items
        if i["site"]["S"].startswith(ACCESS_ITEM_PREFIX)
        and "access_site" in i
        and any(entry_allows(e, email) for e in i.get("emails", {}).get("SS", []))
    }
    return sorted(allowed & registered)


def allowed_sites(settings: Settings, email: str) -> list[str]:
    """The registered sites `email` may see after an identity-provider login (none for
    something that is not an address). One scan: the registry is a few hundred items."""
    try:
        address = check_email(email)
    except InvalidEmail:
        return []
    items = _scan(
        settings,
        FilterExpression="NOT begins_with(site, :r) OR begins_with(site, :a)",
        ExpressionAttributeValues={
            ":r": {"S": RESERVED_KEY_PREFIX},
            ":a": {"S": ACCESS_ITEM_PREFIX},
        },
        ProjectionExpression="site, access_site, emails",
    )
    return sites_allowing(items, address)


# ---- the `share` and `access` commands ----


def add_parsers(commands: Any) -> None:
    """Adds the `share` and `access` commands to `python -m pipeline.sites`."""
    share = commands.add_parser("share", help="links that open one site's dashboard, read only")
    share_commands = share.add_subparsers(dest="share_command", required=True)
    create = share_commands.add_parser("create", help="make a link (shown once)")
    create.add_argument("domain")
    asked = create.add_mutually_exclusive_group()
    asked.add_argument(
        "--password", action="store_true", help="ask for a password the link will need"
    )
    asked.add_argument(
        "--password-stdin", action="store_true", help="read that password from standard input"
    )
    create.add_argument(
        "--expires-days", type=int, metavar="N", help="the link stops working after N days"
    )
    create.add_argument(
        "--base-url",
        default="",
        metavar="URL",
        help=f"the dashboard's address (default: {ENV_DASHBOARD_URL})",
    )
    listed = share_commands.add_parser("list", help="the site's links, by visible prefix")
    listed.add_argument("domain")
    revoke = share_commands.add_parser("revoke", help="delete a link (refused at once)")
    revoke.add_argument("domain")
    revoke.add_argument("prefix", help="the link's first characters, as `share list` shows them")

    access = commands.add_parser(
        "access", help="who may see the site after logging in ([auth] in secrets.toml)"
    )
    access_commands = access.add_subparsers(dest="access_command", required=True)
    for name, text in (("add", "allow an address"), ("remove", "stop allowing an address")):
        sub = access_commands.add_parser(name, help=text)
        sub.add_argument("domain")
        sub.add_argument("email", help="name@example.com, or *@example.com for a whole domain")
    access_commands.add_parser("list", help="the site's allowlist").add_argument("domain")


def _password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not args.password:
        return None
    first = check_password(getpass.getpass("Password for the link: "))
    if getpass.getpass("The same password again: ") != first:
        raise ShareError("the two passwords differ; nothing was made")
    return first


def share_command(settings: Settings, args: argparse.Namespace) -> int:
    """`share create|list|revoke`: what to print, and the exit status."""
    if args.share_command == "create":
        token, share = create_share(settings, args.domain, _password(args), args.expires_days)
        until = f"until {shown_time(share.expires_at)}" if share.expires_at else "no expiry"
        guarded = "with a password" if share.has_password else "no password"
        base = args.base_url or settings.dashboard_url
        print(
            f"Share link for {share.site} ({until}, {guarded}, prefix {share.prefix}; "
            "shown once, anyone holding it sees this site):"
        )
        if base:
            print(share_link(base, token))
        else:
            print(token)
            print(
                f"Set {ENV_DASHBOARD_URL} or pass --base-url to get the whole link: "
                "the dashboard's address followed by /?share=<this token>."
            )
    elif args.share_command == "list":
        for share in list_shares(settings, args.domain):
            expires = shown_time(share.expires_at) if share.expires_at else "never"
            password = "yes" if share.has_password else "no"
            print(f"{share.prefix}\t{shown_time(share.created_at)}\t{expires}\t{password}")
    elif not revoke_share(settings, args.domain, args.prefix):
        print(f"{args.domain} has no share link starting {args.prefix}", file=sys.stderr)
        return 1
    return 0


def access_command(settings: Settings, args: argparse.Namespace) -> int:
    """`access add|list|remove`: what to print, and the exit status."""
    if args.access_command == "add":
        entry = allow(settings, args.domain, args.email)
        print(f"{entry} may see {normalize_domain(args.domain)} after logging in")
    elif args.access_command == "list":
        for entry in allowed_entries(settings, args.domain):
            print(entry)
    elif not disallow(settings, args.domain, args.email):
        print(f"{args.email} was not allowed on {args.domain}", file=sys.stderr)
        return 1
    return 0


def command(settings: Settings, args: argparse.Namespace) -> int:
    """`share …` or `access …` (a `ShareError`/`InvalidEmail` is printed by the caller)."""
    if args.command == "share":
        return share_command(settings, args)
    return access_command(settings, args)
