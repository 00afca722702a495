"""One place that builds boto3 clients and turns AWS failures into named errors.

Clients are built on demand (never at import time) so that moto's in-process mock, the
emulator and real AWS all see the same code path: only the endpoint differs.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from pipeline.config import Settings
from pipeline.errors import BackendUnavailable, MissingResource

# Standard retry mode already backs off on throttling; our own loops handle what remains
# (UnprocessedItems), so a few attempts here are enough.
CLIENT_CONFIG = Config(
    retries={"max_attempts": 4, "mode": "standard"},
    connect_timeout=5,
    read_timeout=30,
    max_pool_connections=32,
)

# For clients whose every request our own code builds from typed values (the consumer's
# writes): botocore's client-side check of each parameter against the service model walks
# every attribute of every item, ~4 µs an item; DynamoDB validates the request all the same
# and answers a bad one with a ValidationException, which the callers already handle.
UNVALIDATED_CONFIG = CLIENT_CONFIG.merge(Config(parameter_validation=False))

_NOT_FOUND_CODES = {
    "ResourceNotFoundException",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
}

# The emulator accepts any credentials; real AWS must find its own.
_EMULATOR_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def is_loopback_url(url: str | None) -> bool:
    """True when the URL's parsed host is `localhost` or a loopback address (127.0.0.0/8,
    ::1); a host that only contains such text (`127.0.0.1.nip.io`, `?localhost`) is not."""
    try:
        host = urlsplit(url or "").hostname
    except ValueError:  # a malformed netloc, e.g. an unclosed `[`
        return False
    if not host:
        return False
    if host == "localhost":  # urlsplit lowercases the host
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is 127.0.0.1
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def _is_local(endpoint_url: str | None) -> bool:
    return is_loopback_url(endpoint_url)


def client(service: str, settings: Settings, *, validate: bool = True) -> Any:
    """A boto3 client for `service` pointed at the settings' endpoint and region.

    `validate=False` skips botocore's client-side parameter validation (see
    `UNVALIDATED_CONFIG`): only for hot paths whose requests our code builds."""
    config = CLIENT_CONFIG if validate else UNVALIDATED_CONFIG
    kwargs: dict[str, Any] = {"region_name": settings.region, "config": config}
    if settings.endpoint_url:
        kwargs["endpoint_url"] = settings.endpoint_url
    if _is_local(settings.endpoint_url) and not os.environ.get("AWS_ACCESS_KEY_ID"):
        kwargs.update(_EMULATOR_CREDENTIALS)
    return boto3.session.Session().client(service, **kwargs)


def scanned(dynamodb: Any, **request: Any) -> Iterator[dict[str, Any]]:
    """Every item a DynamoDB Scan with `request` returns, page after page (boto3's paginator)."""
    for page in dynamodb.get_paginator("scan").paginate(**request):
        yield from page.get("Items", [])


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


@contextmanager
def explained(settings: Settings, resource: str) -> Iterator[None]:
    """Turn connection and not-found failures into one clear sentence about what to set."""
    try:
        yield
    except EndpointConnectionError as exc:
        where = settings.endpoint_url or f"AWS in {settings.region}"
        raise BackendUnavailable(
            f"Cannot reach {where}: start the local emulator (python -m pipeline.local) "
            f"or set AWS_ENDPOINT_URL to a reachable endpoint."
        ) from exc
    except NoCredentialsError as exc:
        raise BackendUnavailable(
            "No AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "or AWS_ENDPOINT_URL for the local emulator."
        ) from exc
    except ClientError as exc:
        if error_code(exc) in _NOT_FOUND_CODES:
            raise MissingResource(
                f"{resource} does not exist at {settings.endpoint_url or settings.region}: "
                f"deploy the stack (python -m infra deploy) or set the PIPELINE_* name variables."
            ) from exc
        raise
