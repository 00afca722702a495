"""DynamoDB faults injected into a real boto3 client through botocore's event hooks.

The requests still go to moto; the hooks make DynamoDB behave as it does under load:
refuse a whole call with a throttling error, or take only part of a batch and return the
rest as `UnprocessedItems` (those items are really not written).
"""

from __future__ import annotations

from typing import Any

from botocore.awsrequest import AWSResponse


class DynamoFaults:
    def __init__(
        self, client: Any, throttle_calls: int = 0, partial_calls: int = 0, hold_back: int = 3
    ) -> None:
        self.throttle_calls = throttle_calls  # the first N calls fail with a throttling error
        self.partial_calls = partial_calls  # the next N calls leave `hold_back` items unprocessed
        self.hold_back = hold_back
        self.calls = 0
        self.throttled = 0
        self.held_back = 0
        self._held: dict[str, list[dict[str, Any]]] = {}
        events = client.meta.events
        events.register("before-parameter-build.dynamodb.BatchWriteItem", self._maybe_hold_back)
        events.register("before-call.dynamodb.BatchWriteItem", self._maybe_throttle)
        events.register("after-call.dynamodb.BatchWriteItem", self._report_unprocessed)

    def _maybe_hold_back(self, params: dict[str, Any], **_: Any) -> None:
        self.calls += 1
        if self.throttle_calls < self.calls <= self.throttle_calls + self.partial_calls:
            for table, requests in params["RequestItems"].items():
                keep = max(1, len(requests) - self.hold_back)
                self._held[table] = requests[keep:]
                params["RequestItems"][table] = requests[:keep]
                self.held_back += len(requests) - keep

    def _maybe_throttle(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if self.calls > self.throttle_calls:
            return None
        self.throttled += 1
        response = AWSResponse("http://dynamodb", 400, {}, None)
        error = {
            "Error": {"Code": "ProvisionedThroughputExceededException", "Message": "injected"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        return response, error

    def _report_unprocessed(self, parsed: dict[str, Any], **_: Any) -> None:
        if self._held:
            parsed["UnprocessedItems"] = self._held
            self._held = {}
