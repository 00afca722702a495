"""The embedded local AWS: moto's HTTP server on 127.0.0.1, inside this process, and the
snapshots that keep its DynamoDB tables across restarts.

Snapshots go through the DynamoDB API (scan out, batch-write back in), not moto's internal
backend objects: the API is what moto promises to keep, the file is plain JSON of typed items
that any later moto (or real DynamoDB) can take, and a queue message, which still carries a
raw IP address, is never written to disk.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from moto.server import ThreadedMotoServer

from pipeline import aws
from pipeline.resources import TTL_ATTRIBUTE

log = logging.getLogger("pipeline.local.emulator")
SNAPSHOT_FILE = "dynamodb.json"
SNAPSHOT_VERSION = 1
BATCH_LIMIT = 25
# werkzeug starts its log lines with the peer's address: "127.0.0.1 - - [date] ...".
_WERKZEUG_PREFIX = re.compile(r"^\S+ - - \[[^\]]*\] ")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _NoAddress(logging.Filter):
    """Drops the client address werkzeug puts in front of its log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = _WERKZEUG_PREFIX.sub("", record.msg)
        return True


def _quiet_handle_error(request: Any, client_address: Any) -> None:
    # socketserver's default prints "Exception occurred during processing of request from
    # (address, port)" and a traceback to stderr; a client that hung up is not news.
    log.debug("emulator: a request failed")


class EmbeddedAWS:
    """moto's server in a thread. Use as a context manager, or `start()` / `stop()`."""

    def __init__(self, port: int = 0) -> None:
        self.port = port or free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> EmbeddedAWS:
        # Werkzeug logs every request line; at thousands of requests that drowns real logs.
        werkzeug = logging.getLogger("werkzeug")
        werkzeug.setLevel(logging.ERROR)
        if not any(isinstance(f, _NoAddress) for f in werkzeug.filters):
            werkzeug.addFilter(_NoAddress())
        self._server.start()
        inner = getattr(self._server, "_server", None)
        if inner is not None:
            inner.handle_error = _quiet_handle_error
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> EmbeddedAWS:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---- snapshots of the tables -------------------------------------------------------------


def _encode_value(value: Mapping[str, Any]) -> dict[str, Any]:
    """One typed attribute value as JSON: binary becomes base64 text, the rest is JSON already."""
    (kind, inner), *_ = value.items()
    if kind == "B":
        return {"B": base64.b64encode(inner).decode("ascii")}
    if kind == "BS":
        return {"BS": [base64.b64encode(b).decode("ascii") for b in inner]}
    if kind == "M":
        return {"M": {k: _encode_value(v) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [_encode_value(v) for v in inner]}
    return {kind: inner}


def _decode_value(value: Mapping[str, Any]) -> dict[str, Any]:
    (kind, inner), *_ = value.items()
    if kind == "B":
        return {"B": base64.b64decode(inner)}
    if kind == "BS":
        return {"BS": [base64.b64decode(b) for b in inner]}
    if kind == "M":
        return {"M": {k: _decode_value(v) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [_decode_value(v) for v in inner]}
    return {kind: inner}


def encode_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as the low-level client returns it → JSON-safe."""
    return {name: _encode_value(value) for name, value in item.items()}


def decode_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of `encode_item`: what `BatchWriteItem` takes."""
    return {name: _decode_value(value) for name, value in item.items()}


def is_expired(item: Mapping[str, Any], now_s: float) -> bool:
    """Past its TTL: DynamoDB would delete it, so a snapshot neither keeps nor restores it
    (salts in particular must be gone after their two days)."""
    expires = item.get(TTL_ATTRIBUTE, {}).get("N")
    try:
        return expires is not None and float(expires) <= now_s
    except ValueError:
        return False


def dump_tables(dynamodb: Any, now_s: float) -> dict[str, Any]:
    """Every table on the endpoint: key schema and live items, as JSON-safe data."""
    tables: dict[str, Any] = {}
    for page in dynamodb.get_paginator("list_tables").paginate():
        for name in page["TableNames"]:
            description = dynamodb.describe_table(TableName=name)["Table"]
            tables[name] = {
                "key_schema": description["KeySchema"],
                "attribute_definitions": description["AttributeDefinitions"],
                "items": [
                    encode_item(item)
                    for item in aws.scanned(dynamodb, TableName=name)
                    if not is_expired(item, now_s)
                ],
            }
    return {"version": SNAPSHOT_VERSION, "saved_at": int(now_s), "tables": tables}


def write_snapshot(snapshot: Mapping[str, Any], path: Path) -> None:
    """Write atomically: a temp file in the same folder, flushed to disk, renamed over `path`.
    A crash mid-write leaves the previous snapshot whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(snapshot, out, separators=(",", ":"))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def read_snapshot(path: Path) -> dict[str, Any] | None:
    """The snapshot at `path`, None if there is none; ValueError if it is not one of ours."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    snapshot = json.loads(text)
    if not isinstance(snapshot, dict) or snapshot.get("version") != SNAPSHOT_VERSION:
        raise ValueError(f"{path} is not a version-{SNAPSHOT_VERSION} table snapshot")
    return snapshot


def _ensure_table(dynamodb: Any, name: str, table: Mapping[str, Any]) -> None:
    try:
        dynamodb.create_table(
            TableName=name,
            KeySchema=table["key_schema"],
            AttributeDefinitions=table["attribute_definitions"],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise


def restore_tables(dynamodb: Any, snapshot: Mapping[str, Any], now_s: float) -> int:
    """Write a snapshot's live items back (creating a table that is missing); how many."""
    restored = 0
    for name, table in snapshot["tables"].items():
        _ensure_table(dynamodb, name, table)
        items = [decode_item(i) for i in table["items"] if not is_expired(i, now_s)]
        for start in range(0, len(items), BATCH_LIMIT):
            chunk = items[start : start + BATCH_LIMIT]
            pending: dict[str, Any] = {name: [{"PutRequest": {"Item": item}} for item in chunk]}
            for _ in range(10):  # the emulator takes everything; real DynamoDB may not
                pending = dynamodb.batch_write_item(RequestItems=pending).get(
                    "UnprocessedItems", {}
                )
                if not pending:
                    break
            else:
                raise RuntimeError(f"could not restore every item of {name}")
        restored += len(items)
    return restored


class TableSnapshots:
    """Load on start, save on demand and periodically, one save at a time."""

    def __init__(
        self,
        dynamodb: Any,
        data_dir: Path,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._dynamodb = dynamodb
        self.path = Path(data_dir) / SNAPSHOT_FILE
        self._clock = clock
        self._lock = threading.Lock()
        self.saves = 0

    def load(self) -> int:
        """Restore the saved tables; how many items (0 when nothing was saved yet)."""
        snapshot = read_snapshot(self.path)
        return restore_tables(self._dynamodb, snapshot, self._clock()) if snapshot else 0

    def save(self) -> None:
        with self._lock:
            write_snapshot(dump_tables(self._dynamodb, self._clock()), self.path)
            self.saves += 1

    def run(self, stop: threading.Event, every: float) -> None:
        """Save every `every` seconds until `stop`; a failed save is logged and retried."""
        while not stop.wait(every):
            try:
                self.save()
            except (ClientError, BotoCoreError, OSError) as exc:
                log.warning("snapshot failed: %s", type(exc).__name__)
