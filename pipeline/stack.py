"""Settings as the pipeline runs with them: the environment, plus the resource names of a
deployed stack found by the stack's name alone.

Layers, so nothing imports round a circle: `config` (names and values, no I/O) ← `aws`
(clients) ← `stack` (reads CloudFormation).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from pipeline import aws
from pipeline.config import Settings, env_settings, stack_to_resolve
from pipeline.errors import MissingResource

# Logical IDs in infra/template.py → settings. The stack's resource list is read rather than
# its outputs: it is authoritative on AWS, and moto leaves outputs empty after a change set.
_RESOURCE_SETTINGS = {
    "EventsTable": "events_table",
    "SaltsTable": "salts_table",
    "SitesTable": "sites_table",
    "InboundQueue": "queue_name",
    "DeadLetterQueue": "dlq_name",
    "ArchiveBucket": "archive_bucket",  # the Parquet history (pipeline/store/archive.py)
}


def _name(physical_id: str) -> str:
    # A queue's physical ID is its URL; a table's and a bucket's is its name.
    return physical_id.rstrip("/").rsplit("/", 1)[-1]


def settings_for_stack(stack: str, settings: Settings) -> Settings:
    """`settings` with the table, queue and archive bucket names that stack `stack` created."""
    with aws.explained(settings, f"Stack {stack!r}"):
        try:
            found = aws.client("cloudformation", settings).describe_stack_resources(StackName=stack)
        except ClientError as exc:
            if "does not exist" in exc.response.get("Error", {}).get("Message", ""):
                raise MissingResource(
                    f"Stack {stack!r} does not exist in {settings.region}: deploy it with "
                    "`python -m infra deploy`, or set PIPELINE_STACK / AWS_REGION to where it is."
                ) from exc
            raise
    resources = found["StackResources"]
    # moto lists the resources it cannot create (the archive's bucket policy) without an ID.
    physical = {
        r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
        for r in resources
        if "LogicalResourceId" in r
    }
    return settings.with_overrides(
        **{
            name: _name(physical[key])
            for key, name in _RESOURCE_SETTINGS.items()
            if key in physical
        }
    )


def settings_from_env(
    env: Mapping[str, str] | None = None, resolve_stack: bool = True, **overrides: Any
) -> Settings:
    """Settings from the environment, with explicit keyword arguments winning.

    With `PIPELINE_STACK` set (and no table name given), the table and queue names come
    from that CloudFormation stack: the stack name alone is enough.
    """
    env = os.environ if env is None else env
    settings = env_settings(env, **overrides)
    stack = stack_to_resolve(env, **overrides) if resolve_stack else None
    if stack is None:
        return settings
    return settings_for_stack(stack, settings).with_overrides(**overrides)
