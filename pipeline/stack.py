"""Resource names from a deployed stack, found by the stack's name alone."""

from __future__ import annotations

from botocore.exceptions import ClientError

from pipeline import aws
from pipeline.config import Settings
from pipeline.errors import MissingResource

# Logical IDs in infra/template.py → settings. The stack's resource list is read rather than
# its outputs: it is authoritative on AWS, and moto leaves outputs empty after a change set.
_RESOURCE_SETTINGS = {
    "EventsTable": "events_table",
    "SaltsTable": "salts_table",
    "SitesTable": "sites_table",
    "InboundQueue": "queue_name",
    "DeadLetterQueue": "dlq_name",
}


def _name(physical_id: str) -> str:
    # A queue's physical ID is its URL; a table's is its name.
    return physical_id.rstrip("/").rsplit("/", 1)[-1]


def settings_for_stack(stack: str, settings: Settings) -> Settings:
    """`settings` with the table and queue names that stack `stack` created."""
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
    physical = {r["LogicalResourceId"]: r.get("PhysicalResourceId", "") for r in resources}
    return settings.with_overrides(
        **{
            name: _name(physical[key])
            for key, name in _RESOURCE_SETTINGS.items()
            if key in physical
        }
    )
