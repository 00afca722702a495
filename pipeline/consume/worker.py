"""The local stand-in for Lambda's SQS event source mapping.

It long-polls the queue, gathers a batch (up to `batch_size` messages or `batch_window`
seconds, as the mapping's MaximumBatchingWindowInSeconds does), calls the very same
handler code, deletes what succeeded and leaves failures to come back after the visibility
timeout; SQS's redrive policy moves a message to the DLQ after its third receive.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline import aws
from pipeline.config import Settings
from pipeline.resources import queue_url

log = logging.getLogger("pipeline.consume.worker")
SQS_MAX_MESSAGES = 10

Handler = Callable[[Mapping[str, Any], Any], Mapping[str, Any]]


@dataclass
class PollResult:
    received: int = 0
    succeeded: int = 0
    failed: int = 0


def lambda_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS message as Lambda's event source mapping hands it to a function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


class Worker:
    def __init__(
        self,
        settings: Settings,
        handler: Handler,
        sqs: Any = None,
        batch_size: int = 100,
        batch_window: float = 0.5,
        wait_time: int = 1,
    ) -> None:
        self.settings = settings
        self._handler = handler
        self._sqs = sqs or aws.client("sqs", settings)
        self._queue_url = queue_url(self._sqs, settings)
        self._queue_arn = self._sqs.get_queue_attributes(
            QueueUrl=self._queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        self._batch_size = batch_size
        self._batch_window = batch_window
        self._wait_time = wait_time

    def _gather(self, stop: threading.Event | None = None) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + self._batch_window
        while len(messages) < self._batch_size:
            if stop is not None and stop.is_set() and messages:
                break  # stopping: hand over what we hold instead of polling on
            wait = 0 if messages else self._wait_time
            page = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=min(SQS_MAX_MESSAGES, self._batch_size - len(messages)),
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
            ).get("Messages", [])
            messages += page
            if not page or time.monotonic() >= deadline:
                break
        return messages

    def poll_once(self, stop: threading.Event | None = None) -> PollResult:
        """Receive one batch, hand it to the handler, delete what it did not report failed."""
        messages = self._gather(stop)
        if not messages:
            return PollResult()
        records = [lambda_record(m, self._queue_arn, self.settings.region) for m in messages]
        try:
            response = self._handler({"Records": records}, None)
            failed_ids = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception as exc:  # a raising handler fails the whole batch, as on Lambda
            # The type only: an exception's text can quote a message's IP or User-Agent.
            log.error("handler raised %s; the batch will be redelivered", type(exc).__name__)
            failed_ids = {m["MessageId"] for m in messages}
        done = [m for m in messages if m["MessageId"] not in failed_ids]
        self._delete(done)
        return PollResult(
            received=len(messages), succeeded=len(done), failed=len(messages) - len(done)
        )

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), SQS_MAX_MESSAGES):
            chunk = messages[start : start + SQS_MAX_MESSAGES]
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
            ]
            self._sqs.delete_message_batch(QueueUrl=self._queue_url, Entries=entries)

    def drain(self, max_idle_polls: int = 1) -> PollResult:
        """Poll until the queue gives nothing `max_idle_polls` times in a row; totals."""
        total, idle = PollResult(), 0
        while idle < max_idle_polls:
            result = self.poll_once()
            idle = idle + 1 if not result.received else 0
            total.received += result.received
            total.succeeded += result.succeeded
            total.failed += result.failed
        return total

    def run(self, stop: threading.Event) -> None:
        """Poll until `stop` is set; a failing poll is logged and retried, never fatal.

        A stop takes at most one long poll (`wait_time`) plus the batch in hand: the batch
        is finished and deleted, never dropped half-way."""
        while not stop.is_set():
            try:
                self.poll_once(stop)
            except (ClientError, BotoCoreError) as exc:
                log.warning("poll failed (%s); retrying in 1 s", type(exc).__name__)
                stop.wait(1.0)
            except Exception as exc:  # an unexpected error must not end the worker thread
                log.error("poll failed unexpectedly (%s); retrying in 1 s", type(exc).__name__)
                stop.wait(1.0)


def main(argv: list[str] | None = None) -> None:
    """`python -m pipeline.worker`: poll the configured queue until SIGTERM or Ctrl-C."""
    import argparse
    import signal

    from pipeline.consume.consumer import Consumer
    from pipeline.stack import settings_from_env

    parser = argparse.ArgumentParser(prog="python -m pipeline.worker", description=main.__doc__)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = settings_from_env()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    worker = Worker(settings, Consumer(settings).handle, batch_size=args.batch_size)
    print("worker polling", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        worker.run(stop)


if __name__ == "__main__":
    main()
