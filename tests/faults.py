"""DynamoDB faults injected into a real boto3 client through botocore's event hooks.

The requests still go to moto; the hooks make DynamoDB behave as it does under load:
refuse a whole call with a throttling error, or take only part of a batch and return the
rest as `UnprocessedItems` (those items are really not written). Faults hit either the first
calls (`throttle_calls`, `partial_calls`) or a random fraction of calls (`*_rate`).
"""

from __future__ import annotations

import random
from typing import Any

from botocore.awsrequest import AWSResponse


class DynamoFaults:
    def __init__(
        self,
        client: Any,
        throttle_calls: int = 0,
        partial_calls: int = 0,
        hold_back: int = 3,
        throttle_rate: float = 0.0,
        partial_rate: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.throttle_calls, self.partial_calls, self.hold_back = (
            throttle_calls,
            partial_calls,
            hold_back,
        )
        self.throttle_rate, self.partial_rate = throttle_rate, partial_rate
        self.rng = random.Random(seed)
        self.calls = self.throttled = self.held_back = 0
        self._throttle_this_call = False
        self._held: dict[str, list[dict[str, Any]]] = {}
        events = client.meta.events
        events.register("before-parameter-build.dynamodb.BatchWriteItem", self._decide)
        events.register("before-call.dynamodb.BatchWriteItem", self._maybe_throttle)
        events.register("after-call.dynamodb.BatchWriteItem", self._report_unprocessed)

    def _decide(self, params: dict[str, Any], **_: Any) -> None:
        self.calls += 1
        self._throttle_this_call = (
            self.calls <= self.throttle_calls or self.rng.random() < self.throttle_rate
        )
        partial = self.throttle_calls < self.calls <= self.throttle_calls + self.partial_calls
        if self._throttle_this_call or not (partial or self.rng.random() < self.partial_rate):
            return
        for table, requests in params["RequestItems"].items():
            keep = max(1, len(requests) - self.hold_back)
            self._held[table] = requests[keep:]
            params["RequestItems"][table] = requests[:keep]
            self.held_back += len(requests) - keep

    def _maybe_throttle(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if not self._throttle_this_call:
            return None
        self.throttled += 1
        error = {
            "Error": {"Code": "ProvisionedThroughputExceededException", "Message": "injected"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        return AWSResponse("http://dynamodb", 400, {}, None), error

    def _report_unprocessed(self, parsed: dict[str, Any], **_: Any) -> None:
        if self._held:
            parsed["UnprocessedItems"] = self._held
            self._held = {}
