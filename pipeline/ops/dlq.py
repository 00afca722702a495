"""The dead-letter queue tool: count, inspect (with why each message failed), redrive.

    python -m pipeline.dlq count
    python -m pipeline.dlq inspect [--limit 10]
    python -m pipeline.dlq redrive [--limit N]

A message lands in the DLQ after three failed receives. `inspect` re-validates each body
against the pixel contract and replays its enrichment in-process (no AWS call, with a salt for
its day and its site registered for any page host): "malformed: …" names what is wrong with
it; "failed in enrichment: <ExceptionType>" means processing it raises (a bug to fix before a
redrive; the message fails alone, so redriving it cannot fail its neighbours); "valid" means
it failed for a transient reason (DynamoDB refused it, or the salts or the site registry
could not be read) and can be redriven once that is fixed. Inspecting does not consume:
every message is made visible again at once.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline import aws
from pipeline.config import Settings
from pipeline.enrich.salts import SALT_BYTES, salt_expiry
from pipeline.enrich.sites import Site
from pipeline.enrich.steps import Context, Dropped, Hit, enrich, hit_from_message, site_of
from pipeline.enrich.urls import strip_url
from pipeline.errors import MalformedMessage, PipelineError
from pipeline.ingest.contract import parse_message
from pipeline.resources import queue_url
from pipeline.stack import settings_from_env
from pipeline.store.storage import event_item

BATCH = 10


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    receive_count: int
    reason: str
    body: str


def permissive_context(hit: Hit) -> Context:
    """A context in which nothing but the hit itself can fail: a salt for its day, and its
    site registered for its page's own host (whatever the real registry says)."""
    page = strip_url(hit.page_url)
    site = Site(hit.site, (page.host,) if page else ())
    return Context(salts={hit.day: bytes(SALT_BYTES)}, sites={hit.site: site})


def why(body: str) -> str:
    """Why a dead letter failed: malformed, failed in enrichment (by exception type), or valid."""
    try:
        message = parse_message(body)
    except MalformedMessage as exc:
        return f"malformed: {exc}"
    except Exception as exc:  # the consumer fails such a body too: name its type only
        return f"malformed: unreadable ({type(exc).__name__})"
    try:  # what the consumer does with it, short of AWS calls
        hit = hit_from_message(message)
        salt_expiry(hit.day)  # a day the salt store cannot keep (the calendar's last)
        result = enrich(hit, permissive_context(hit))
        if not isinstance(result, Dropped):
            event_item(result, retention_days=1)
    except Exception as exc:  # the type alone: the text could quote the UA or the IP
        return f"failed in enrichment: {type(exc).__name__}"
    return "valid (failed to store: redrive it once DynamoDB accepts writes)"


def summary(body: str) -> str:
    """What identifies a dead letter on screen, and nothing of its visitor: the body itself
    carries the client's IP and User-Agent, which no output of ours may show."""
    try:
        message = parse_message(body)
        received = datetime.fromtimestamp(message.received_at_ms / 1000, tz=UTC)
    except Exception:  # malformed bodies are shown by size only: any part could be personal
        return f"({len(body)} characters)"
    site = site_of(message.query["d"])
    return f"request {message.request_id} at {received:%Y-%m-%dT%H:%M:%SZ} for site {site!r}"


def count(settings: Settings, sqs: Any = None) -> int:
    sqs = sqs or aws.client("sqs", settings)
    url = queue_url(sqs, settings, settings.dlq_name)
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def _receive(sqs: Any, url: str, limit: int) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    while len(found) < limit:
        page = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(BATCH, limit - len(found)),
            AttributeNames=["All"],
            VisibilityTimeout=30,
        )
        messages = [m for m in page.get("Messages", []) if m["MessageId"] not in found]
        if not messages:
            break
        found |= {m["MessageId"]: m for m in messages}
    return list(found.values())


def inspect(settings: Settings, limit: int = 10, sqs: Any = None) -> list[DeadLetter]:
    sqs = sqs or aws.client("sqs", settings)
    url = queue_url(sqs, settings, settings.dlq_name)
    messages = _receive(sqs, url, limit)
    for message in messages:  # put them back at once: inspecting consumes nothing
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    return [
        DeadLetter(
            m["MessageId"],
            int(m.get("Attributes", {}).get("ApproximateReceiveCount", 0)),
            why(m["Body"]),
            m["Body"],
        )
        for m in messages
    ]


def redrive(settings: Settings, limit: int = 1000, sqs: Any = None) -> int:
    """Move up to `limit` messages back to the inbound queue; the count moved."""
    sqs = sqs or aws.client("sqs", settings)
    dlq, inbound = queue_url(sqs, settings, settings.dlq_name), queue_url(sqs, settings)
    moved = 0
    while moved < limit:
        messages = _receive(sqs, dlq, min(BATCH, limit - moved))
        if not messages:
            return moved
        entries = [{"Id": str(i), "MessageBody": m["Body"]} for i, m in enumerate(messages)]
        sent = sqs.send_message_batch(QueueUrl=inbound, Entries=entries)
        ok = {int(e["Id"]) for e in sent.get("Successful", [])}
        done = [m for i, m in enumerate(messages) if i in ok]
        if done:  # delete only what reached the inbound queue: nothing is lost on the way
            sqs.delete_message_batch(
                QueueUrl=dlq,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        moved += len(done)
        if len(done) < len(messages):
            return moved
    return moved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.dlq", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=["count", "inspect", "redrive"])
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    settings = settings_from_env()
    try:
        if args.command == "count":
            print(count(settings))
        elif args.command == "inspect":
            for letter in inspect(settings, args.limit or 10):
                print(f"{letter.message_id}  received {letter.receive_count}×  {letter.reason}")
                print(f"    {summary(letter.body)}")
        else:
            moved = redrive(settings, args.limit or 1000)
            print(f"redrove {moved} message(s) to {settings.queue_name}")
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
