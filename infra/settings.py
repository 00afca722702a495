"""The stack's settings on the command line: `--set Name=value` checked before AWS is asked.

Names are the stack's parameter names (any case: `retentiondays=90` is `RetentionDays`); each
value is checked here, with one sentence for what is wrong, so a bad value never reaches
CloudFormation and nothing is changed. The template's own constraints (AllowedPattern,
MinValue...) stay as a second, coarser guard for a console or `aws cloudformation` update.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from infra.template import MAX_RETENTION_DAYS, MAX_SHARDS, parameters
from pipeline.enrich.sites import normalize_domain
from pipeline.errors import PipelineError
from pipeline.ops.emails import check_email

# Set by `deploy` itself (a fresh random secret on create, kept on update): never by hand.
MANAGED = frozenset({"OriginSecret"})
HOT_DAYS_RANGE = (1, 365)
RETENTION_DAYS_RANGE = (1, MAX_RETENTION_DAYS)
EMPTY = "(empty)"


class SettingError(PipelineError):
    """A `--set` that names no setting or gives a value the setting cannot take."""


def settable() -> tuple[str, ...]:
    """Every name `--set` accepts, in the template's order."""
    return tuple(name for name in parameters(edge=True) if name not in MANAGED)


def no_echo() -> frozenset[str]:
    """Parameters whose value is never shown (AWS answers "****" for them too)."""
    return frozenset(name for name, spec in parameters(edge=True).items() if spec.get("NoEcho"))


def canonical_name(text: str) -> str:
    """The parameter `text` names, whatever its case; one sentence listing them when none."""
    found = {name.lower(): name for name in settable()}.get(text.strip().lower())
    if found is None:
        raise SettingError(
            f"There is no setting {text.strip()!r}: the settings are {', '.join(settable())}."
        )
    return found


def _whole_number(name: str, value: str, low: int, high: int) -> str:
    text = value.strip()
    if not re.fullmatch(r"[0-9]+", text) or not low <= int(text) <= high:
        raise SettingError(
            f"{name} must be a whole number of days from {low} to {high}, not {value!r}."
        )
    return str(int(text))


def _respect_dnt(value: str) -> str:
    text = value.strip().lower()
    if text not in {"true", "false"}:
        raise SettingError(f"RespectDnt must be true or false, not {value!r}.")
    return text


def check_shards(value: str) -> str:
    """`site=n,...` normalised (domains lower-cased, in the order given); "" clears it."""
    if not value.strip():
        return ""
    pairs: dict[str, int] = {}
    for item in value.split(","):
        site, equals, count = item.partition("=")
        try:
            domain = normalize_domain(site) if equals else ""
        except PipelineError:
            domain = ""
        number = count.strip()
        if (
            not domain
            or not re.fullmatch(r"[0-9]+", number)
            or not 1 <= int(number) <= MAX_SHARDS
            or domain in pairs
        ):
            raise SettingError(
                "Shards must be site=n pairs separated by commas, each site once with n from "
                f"1 to {MAX_SHARDS} (e.g. big.example=8,other.example=2): {item.strip()!r} "
                "is not one."
            )
        pairs[domain] = int(number)
    return ",".join(f"{site}={n}" for site, n in pairs.items())


def _email(name: str, value: str) -> str:
    if not value.strip():
        return ""
    try:
        return check_email(value)
    except PipelineError as exc:
        raise SettingError(f"{name} must be an e-mail address or empty: {exc}.") from None


def check_dashboard_url(value: str) -> str:
    """An https URL with a host (the base of the links in e-mails); "" leaves links out."""
    text = value.strip()
    if not text:
        return ""
    try:
        parts = urlsplit(text)
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme != "https"
        or not parts.hostname
        or parts.query
        or parts.fragment
        or re.search(r"\s", text)
    ):
        raise SettingError(
            "DashboardUrl must be an https:// address like https://analytics.example.com/ "
            f"(no query, no fragment) or empty, not {value!r}."
        )
    return text


def check_value(name: str, value: str) -> str:
    """`value` for parameter `name` as the stack takes it (text), or one sentence why not."""
    if name == "HotDays":
        return _whole_number(name, value, *HOT_DAYS_RANGE)
    if name == "RetentionDays":
        return _whole_number(name, value, *RETENTION_DAYS_RANGE)
    if name == "RespectDnt":
        return _respect_dnt(value)
    if name == "Shards":
        return check_shards(value)
    if name in {"AlarmEmail", "ReportSender"}:
        return _email(name, value)
    if name == "DashboardUrl":
        return check_dashboard_url(value)
    raise SettingError(f"There is no setting {name!r}: the settings are {', '.join(settable())}.")


def parse_sets(given: Iterable[str]) -> dict[str, str]:
    """`--set` arguments (`Name=value`) as {parameter: checked value}; the first bad one raises."""
    found: dict[str, str] = {}
    for text in given:
        key, equals, value = text.partition("=")
        if not equals or not key.strip():
            raise SettingError(
                f"--set takes Name=value (e.g. --set RetentionDays=90), not {text!r}."
            )
        name = canonical_name(key)
        if name in found:
            raise SettingError(f"{name} is set twice: give each setting once.")
        found[name] = check_value(name, value)
    return found


def _shards(text: str) -> dict[str, int]:
    pairs = (item.split("=", 1) for item in text.split(",") if "=" in item)
    return {site.strip().lower(): int(n) for site, n in pairs if n.strip().isdigit()}


def check_shards_not_lowered(previous: str, new: str) -> None:
    """A site's shard count only ever goes up: readers read shards 0..n-1, so events already
    written to a higher shard would drop out of every number."""
    before, after = _shards(previous), _shards(new)
    lowered = [
        (site, n, after.get(site, 1)) for site, n in before.items() if after.get(site, 1) < n
    ]
    if lowered:
        site, old, now = lowered[0]
        raise SettingError(
            f"Shards can only go up: {site} would go from {old} to {now}, and the events already "
            f"written to its shards {now} to {old - 1} would drop out of every number."
        )


def shown(name: str, value: str) -> str:
    """A value as `settings` and `diff` print it: NoEcho masked, empty said."""
    if name in no_echo():
        return "****"
    return value if value != "" else EMPTY


def changes(previous: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """`Name: old → new` for each parameter whose value changes (new ones: from "(none)")."""
    return [
        f"  {name}: {shown(name, previous[name]) if name in previous else '(none)'} → "
        f"{shown(name, value)}"
        for name, value in new.items()
        if previous.get(name) != value and name not in no_echo()
    ]


def render(values: Mapping[str, str]) -> str:
    """The `python -m infra settings` listing: every parameter and its deployed value."""
    width = max((len(name) for name in values), default=0)
    return "\n".join(f"{name:<{width}}  {shown(name, value)}" for name, value in values.items())
