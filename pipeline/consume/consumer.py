"""The queue consumer: the AWS Lambda handler, and the same code the local worker calls.

Each SQS record succeeds or fails alone. A message off the pixel contract, one whose
processing raised anything at all (a bug, or a parser that chokes on crafted input), or one
whose write DynamoDB would not take after retries, is reported in `batchItemFailures`, so SQS
redelivers only it (and moves it to the DLQ after the queue's maxReceiveCount) while its
neighbours are stored. A failure is logged with the message id and the exception's type and
code location, never its text, which could quote a User-Agent or an IP. Enriched events and
drops are written together in batches of 25. Each batch reads the salts its hits need: their
UTC day's, and for hits of a day's first `CARRY_OVER` minutes the day before's too (their
`prev_visitor`, see `pipeline.enrich.salts`).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline import aws
from pipeline.config import Settings
from pipeline.enrich.datacentres import EMPTY as NO_RANGES
from pipeline.enrich.datacentres import Ranges, RangesCache
from pipeline.enrich.salts import SaltStore
from pipeline.enrich.sites import Site, SiteRegistry
from pipeline.enrich.spam import BlocklistCache
from pipeline.enrich.steps import (
    Context,
    Dropped,
    Event,
    Hit,
    enrich,
    hits_from_message,
    in_carry_over,
)
from pipeline.errors import MalformedMessage, PipelineError
from pipeline.ingest.contract import parse_message
from pipeline.stack import settings_from_env
from pipeline.store.storage import (
    BatchWriter,
    day_bounds,
    days_to_mark,
    dirty_item,
    drop_item,
    event_item,
)

log = logging.getLogger("pipeline.consume.consumer")
# The compactor never clears the marker of a day still open, so once this consumer has written
# (site, today)'s marker it need not write it again, except near midnight: a batch that could
# still be writing when the day closes marks it, as does every event of a closed day.
REMARK_BEFORE_MIDNIGHT = timedelta(minutes=5)


def still_marked(
    key: tuple[str, date],
    now: datetime,
    marked_open_days: set[tuple[str, date]],
    end_of_day: datetime | None = None,
) -> bool:
    """Whether (site, day) keeps the marker this consumer wrote for it, through this batch.

    `end_of_day` is the end of the site's local day (default: UTC midnight)."""
    if end_of_day is None:
        end_of_day = datetime.combine(key[1] + timedelta(days=1), datetime.min.time(), UTC)
    return key in marked_open_days and end_of_day - now >= REMARK_BEFORE_MIDNIGHT


def salt_days(hit: Hit) -> set[date]:
    """The UTC days whose salts `hit` is hashed with: its own, and the day before for a hit in
    the first `CARRY_OVER` minutes after midnight (its `prev_visitor`)."""
    if in_carry_over(hit.received_at_ms, hit.day):
        return {hit.day, hit.day - timedelta(days=1)}
    return {hit.day}


def _zone_of(site: Site | None) -> str:
    return site.timezone if site else "UTC"


def _end_of(day: date, tz: str) -> datetime:
    try:
        return day_bounds(day, tz)[1]
    except (KeyError, ValueError, OSError):  # a zone this runtime can't load: UTC's end
        return datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)


@dataclass
class BatchOutcome:
    stored: int = 0
    dropped: Counter = field(default_factory=Counter)
    malformed: int = 0
    failures: list[str] = field(default_factory=list)

    def response(self) -> dict[str, Any]:
        """The Lambda partial-batch response (needs `ReportBatchItemFailures` on the mapping)."""
        return {"batchItemFailures": [{"itemIdentifier": mid} for mid in self.failures]}


class Consumer:
    """Turns SQS records into stored events; AWS clients are injected or built lazily."""

    def __init__(
        self,
        settings: Settings,
        dynamodb: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        # Every request of the consumer is built here from typed values: no client-side
        # validation of each item's attributes (DynamoDB still validates them).
        self._dynamodb = dynamodb or aws.client("dynamodb", settings, validate=False)
        self._clock = clock
        self.salts = SaltStore(self._dynamodb, settings.salts_table)
        self.sites = SiteRegistry(self._dynamodb, settings.sites_table)
        self.spam = BlocklistCache(self._dynamodb, settings.sites_table)
        self.datacentres = RangesCache(self._dynamodb, settings.sites_table)
        self.writer = BatchWriter(self._dynamodb, settings.events_table)
        self._marked_open_days: set[tuple[str, date]] = set()

    def handle(self, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
        """Lambda entry point shape: `{"Records": [...]}` in, partial-batch response out."""
        return self.process(event.get("Records", [])).response()

    def process(
        self, records: Iterable[Mapping[str, Any]], now: datetime | None = None
    ) -> BatchOutcome:
        now = now or datetime.fromtimestamp(self._clock(), tz=UTC)
        outcome = BatchOutcome()
        hits: list[tuple[str, Hit]] = []
        for record in records:
            message_id = record["messageId"]
            try:
                message_hits = hits_from_message(parse_message(record["body"]))
                hits.extend((message_id, hit) for hit in message_hits)
            except MalformedMessage as exc:  # its reasons name fields, never quote values
                log.warning("malformed message %s: %s", message_id, exc)
                outcome.malformed += 1
                outcome.failures.append(message_id)
            except Exception as exc:  # one message's failure must not fail its neighbours
                _log_failure(message_id, "parsing", exc)
                outcome.failures.append(message_id)

        needed = set().union(*(salt_days(hit) for _, hit in hits))
        salts, salt_failures = self._salts_for(needed, now)
        registry = self._registry_for({hit.site for _, hit in hits})
        sites, spam, ranges = registry or ({}, frozenset(), NO_RANGES)
        ctx = Context(
            salts=salts,
            sites=sites,
            spam_domains=spam,
            datacentre_ranges=ranges,
            respect_dnt=self.settings.respect_dnt,
        )
        # One item per hit; an event-API message can hold several hits (one per domain).
        items_by_message: list[tuple[str, dict[str, Any]]] = []
        touched: set[tuple[str, date]] = set()
        zones: dict[str, str] = {}
        marked_by: dict[str, set[tuple[str, date]]] = {}
        for message_id, hit in hits:
            # A salt that could not be read (not one outside the window: that is None, and
            # gives `stale` or no `prev_visitor`) leaves the hit for redelivery.
            if registry is None or (salt_failures and not salt_failures.isdisjoint(salt_days(hit))):
                _fail(outcome, message_id)
                continue
            try:
                result, item = self._item_for(hit, ctx)
            except Exception as exc:  # one message's failure must not fail its neighbours
                _log_failure(message_id, "enrichment", exc)
                _fail(outcome, message_id)
                continue
            if isinstance(result, Dropped):
                outcome.dropped[result.reason.value] += 1
            else:
                # The site's local days (its zone comes from the cached registry answer).
                zone = _zone_of(sites.get(hit.site))
                keys = {(hit.site, d) for d in days_to_mark(hit.received_at_ms, zone)}
                touched |= keys
                marked_by[message_id] = marked_by.get(message_id, set()) | keys
                zones[hit.site] = zone
            items_by_message.append((message_id, item))

        # Every (site, day) written to is marked for the compactor: a closed day's rollup is
        # recomputed after late events, and a day that just closed gets its first rollup. An
        # open day this consumer already marked keeps its marker (see REMARK_BEFORE_MIDNIGHT).
        marked_at = int(now.timestamp() * 1000)
        markers = {
            (site, day): dirty_item(site, day, marked_at)
            for site, day in touched
            if not still_marked((site, day), now, self._marked_open_days, _end_of(day, zones[site]))
        }
        written = self.writer.write([*(i for _, i in items_by_message), *markers.values()])
        unwritten = {(i["pk"]["S"], i["sk"]["S"]) for i in written}
        # Without its marker a day could keep a stale rollup: its events are redelivered too.
        unmarked = {key for key, m in markers.items() if (m["pk"]["S"], m["sk"]["S"]) in unwritten}
        for message_id, item in items_by_message:
            if marked_by.get(message_id, set()) & unmarked:
                unwritten.add((item["pk"]["S"], item["sk"]["S"]))
        # Forget days that have closed: the earliest local "today" on Earth is UTC's minus one.
        today = now.astimezone(UTC).date() - timedelta(days=1)
        self._marked_open_days = {
            key for key in (*self._marked_open_days, *markers.keys() - unmarked) if key[1] >= today
        }
        for message_id, item in items_by_message:
            if (item["pk"]["S"], item["sk"]["S"]) in unwritten:
                _fail(outcome, message_id)
            elif "reason" not in item:
                outcome.stored += 1
        if unwritten:
            log.warning("%d item(s) not written after retries; left for redelivery", len(unwritten))
        log.info(
            "batch: stored=%d dropped=%s malformed=%d failed=%d",
            outcome.stored,
            dict(outcome.dropped),
            outcome.malformed,
            len(outcome.failures),
        )
        return outcome

    def _item_for(self, hit: Hit, ctx: Context) -> tuple[Event | Dropped, dict[str, Any]]:
        """The enrichment of one hit and the item that stores it (its event, or its drop)."""
        result = enrich(hit, ctx)
        if isinstance(result, Dropped):
            return result, drop_item(
                hit.site, hit.received_at_ms, hit.request_id, result.reason.value
            )
        # Raw items live only the hot window (and a day more, so the compactor has archived
        # a closed day before they go); the Parquet archive keeps the retention.
        item = event_item(result, self.settings.hot_days + 1, self.settings.shards_for(hit.site))
        return result, item

    def _registry_for(
        self, domains: set[str]
    ) -> tuple[dict[str, Site | None], frozenset[str], Ranges] | None:
        """Each domain's registered site, the referrer-spam domains and the data-centre ranges;
        None when the registry can't be read (the batch is redelivered, not counted unchecked)."""
        try:
            return self.sites.lookup(domains), self.spam.domains(), self.datacentres.ranges()
        except (ClientError, BotoCoreError, PipelineError) as exc:
            log.warning("site registry unavailable: %s", exc)
            return None

    def _salts_for(self, days: set[date], now: datetime) -> tuple[dict[date, bytes], set[date]]:
        salts, failed = {}, set()
        for day in days:
            try:
                salt = self.salts.salt_for(day, now)
            except (ClientError, BotoCoreError) as exc:
                log.warning("salt for %s unavailable: %s", day, exc)
                failed.add(day)
                continue
            except Exception as exc:  # e.g. a day at the calendar's end: only its hits fail
                log.warning("salt for %s failed: %s", day, type(exc).__name__)
                failed.add(day)
                continue
            if salt is not None:
                salts[day] = salt
        return salts, failed


def _fail(outcome: BatchOutcome, message_id: str) -> None:
    """Report a message for redelivery, once, however many of its hits failed."""
    if message_id not in outcome.failures:
        outcome.failures.append(message_id)


def _log_failure(message_id: str, stage: str, exc: Exception) -> None:
    """Log a message that failed for an unexpected reason: its id, the exception's type and
    where it was raised. Not the exception's text, nor a traceback's: either can quote the
    message's User-Agent, IP or page URL."""
    frames = traceback.extract_tb(exc.__traceback__, limit=-1)  # the innermost frame only
    where = f" at {Path(frames[0].filename).name}:{frames[0].lineno}" if frames else ""
    log.warning("message %s failed in %s: %s%s", message_id, stage, type(exc).__name__, where)


_default_consumer: Consumer | None = None


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The AWS Lambda handler. Settings come from the function's environment."""
    global _default_consumer
    if _default_consumer is None:
        logging.getLogger().setLevel(logging.INFO)
        _default_consumer = Consumer(settings_from_env())
    return _default_consumer.handle(event, context)
