"""Deploy, diff, inspect and remove the stack with CloudFormation change sets (boto3).

Every AWS failure that a person can fix becomes a `DeployError` whose message is one
sentence and the command to run; the CLI prints it instead of a traceback.
"""

from __future__ import annotations

import json
import secrets
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

from infra import package
from infra import settings as stack_settings
from infra.template import Code, build_template, parameters
from pipeline import aws
from pipeline.config import Settings

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
TERMINAL_OK = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}
TERMINAL_FAILED = {
    "CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "UPDATE_ROLLBACK_COMPLETE",
    "UPDATE_ROLLBACK_FAILED", "DELETE_FAILED",
}  # fmt: skip
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")

Printer = Callable[[str], None]


class DeployError(Exception):
    """A failure with one clear sentence about what to do."""


@dataclass(frozen=True)
class Target:
    stack: str
    settings: Settings
    edge: bool = True  # False: data path only (emulators without API Gateway/CloudFront)


def _client(service: str, target: Target) -> Any:
    return aws.client(service, target.settings)


def explain(exc: Exception, target: Target) -> DeployError:
    """A boto failure as one sentence and the command that fixes it."""
    if isinstance(exc, NoCredentialsError):
        return DeployError(
            "No AWS credentials found: run `aws configure` (or set AWS_PROFILE), then deploy again."
        )
    if isinstance(exc, NoRegionError):
        return DeployError("No AWS region set: pass --region or set AWS_REGION.")
    if isinstance(exc, EndpointConnectionError):
        return DeployError(
            f"Cannot reach AWS in region {target.settings.region!r}: check the region name "
            "(--region) and that the services exist there."
        )
    if isinstance(exc, ClientError):
        code = aws.error_code(exc)
        message = exc.response.get("Error", {}).get("Message", "")
        if code in {
            "InvalidClientTokenId",
            "UnrecognizedClientException",
            "ExpiredToken",
            "SignatureDoesNotMatch",
        }:
            return DeployError(
                f"AWS rejected the credentials ({code}): refresh them (`aws configure`)."
            )
        if code in {"AccessDenied", "AccessDeniedException"}:
            return DeployError(
                f"Not allowed: {message} Use credentials with administrator rights "
                "(docs/deploy.md)."
            )
        return DeployError(f"AWS said {code}: {message}")
    return DeployError(str(exc))


def described_stack(target: Target) -> dict[str, Any] | None:
    """The stack as DescribeStacks tells it; None when there is no stack."""
    try:
        stacks = _client("cloudformation", target).describe_stacks(StackName=target.stack)["Stacks"]
    except ClientError as exc:
        if "does not exist" in exc.response.get("Error", {}).get("Message", ""):
            return None
        raise
    return stacks[0]


def stack_status(target: Target) -> str | None:
    stack = described_stack(target)
    return stack["StackStatus"] if stack else None


def outputs(target: Target) -> dict[str, str]:
    """The stack's outputs (pixel URL, table names, queue URLs), by key."""
    try:
        stacks = _client("cloudformation", target).describe_stacks(StackName=target.stack)["Stacks"]
    except ClientError as exc:
        if "does not exist" in exc.response.get("Error", {}).get("Message", ""):
            raise DeployError(
                f"Stack {target.stack!r} does not exist: deploy it with `python -m infra deploy`."
            ) from exc
        raise explain(exc, target) from exc
    except BotoCoreError as exc:
        raise explain(exc, target) from exc
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def artifact_bucket(target: Target) -> str:
    account = _client("sts", target).get_caller_identity()["Account"]
    return f"{target.stack}-artifacts-{account}-{target.settings.region}".lower()[:63]


def _ensure_bucket(target: Target, bucket: str) -> None:
    s3 = _client("s3", target)
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except ClientError as exc:
        if aws.error_code(exc) not in {"404", "NoSuchBucket", "NotFound"}:
            raise
    options = (
        {}
        if target.settings.region == "us-east-1"
        else {"CreateBucketConfiguration": {"LocationConstraint": target.settings.region}}
    )
    s3.create_bucket(Bucket=bucket, **options)
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            k: True
            for k in (
                "BlockPublicAcls",
                "IgnorePublicAcls",
                "BlockPublicPolicy",
                "RestrictPublicBuckets",
            )
        },
    )


def _upload(
    target: Target, bucket: str, function: str, platform: tuple[str, ...] | None, say: Printer
) -> str:
    with tempfile.TemporaryDirectory() as scratch:
        zip_path = Path(scratch) / f"{function}.zip"
        say(f"Building the {function} package…")
        key = f"{function}/{package.build(zip_path, platform=platform, function=function)}.zip"
        s3 = _client("s3", target)
        try:
            s3.head_object(Bucket=bucket, Key=key)
            say(f"Package {key} already uploaded.")
        except ClientError:
            s3.upload_file(str(zip_path), bucket, key)
            say(f"Uploaded s3://{bucket}/{key} ({zip_path.stat().st_size:,} bytes).")
    return key


def upload_package(
    target: Target, say: Printer, platform: tuple[str, ...] | None = package.LAMBDA_PLATFORM
) -> Code:
    """Build both functions' packages and upload each once (its key is its content hash)."""
    bucket = artifact_bucket(target)
    _ensure_bucket(target, bucket)
    consumer = _upload(target, bucket, "consumer", platform, say)
    compactor = _upload(target, bucket, "compactor", platform, say)
    return Code(bucket=bucket, key=consumer, compactor_key=compactor)


def deployed_parameters(target: Target) -> dict[str, str] | None:
    """The deployed stack's parameter values by name (NoEcho ones as AWS shows them, "****");
    None when there is no stack."""
    stack = described_stack(target)
    return None if stack is None else parameter_values(stack)


def parameter_values(stack: Mapping[str, Any]) -> dict[str, str]:
    """A described stack's parameter values by name."""
    # moto hands back a Number given outright as a number: parameter values are text.
    return {
        p["ParameterKey"]: str(p.get("ParameterValue", "")) for p in stack.get("Parameters", [])
    }


def planned_values(
    target: Target, previous: Mapping[str, str] | None, sets: Mapping[str, str]
) -> dict[str, str]:
    """Each settable parameter's value after the deploy: what `--set` says, else what is
    deployed, else the template's default (a new stack, or a parameter new to the stack)."""
    defaults = parameters(target.edge, target.settings)
    return {
        name: sets.get(name, (previous or {}).get(name, defaults[name]["Default"]))
        for name in stack_settings.settable()
    }


def _parameters(
    target: Target, previous: Mapping[str, str] | None, sets: Mapping[str, str]
) -> list[dict[str, Any]]:
    """What the change set is given: `--set` values outright; on an update every other
    parameter the stack has keeps its value (UsePreviousValue: a `--set` of one never resets
    the others to their defaults); a parameter new to the stack takes its default."""
    given: list[dict[str, Any]] = []
    for name in parameters(target.edge, target.settings):
        if name in sets and (previous is None or previous.get(name) != sets[name]):
            given.append({"ParameterKey": name, "ParameterValue": sets[name]})
        elif previous is not None and name in previous:
            # Also a --set of the deployed value: the same value is no change (moto compares
            # a Number given outright as text with the number it stored).
            given.append({"ParameterKey": name, "UsePreviousValue": True})
        elif name == "OriginSecret":
            given.append({"ParameterKey": name, "ParameterValue": secrets.token_urlsafe(32)})
    return given


def _describe_changes(description: dict[str, Any]) -> list[str]:
    lines = []
    for change in description.get("Changes", []):
        rc = change["ResourceChange"]
        replace = " (replacement)" if rc.get("Replacement") == "True" else ""
        lines.append(
            f"  {rc['Action']:<8} {rc['LogicalResourceId']:<28} {rc['ResourceType']}{replace}"
        )
    return lines


def _wait_change_set(cfn: Any, target: Target, name: str) -> dict[str, Any]:
    for _ in range(600):
        description = cfn.describe_change_set(StackName=target.stack, ChangeSetName=name)
        if description["Status"] in {"CREATE_COMPLETE", "FAILED"}:
            return description
        time.sleep(1)
    raise DeployError(
        f"Change set {name} did not finish in 10 minutes: see the CloudFormation console."
    )


def create_change_set(
    target: Target, code: Code, sets: Mapping[str, str] | None = None
) -> tuple[str, dict[str, Any] | None]:
    """(name, description) of a new change set; description None when nothing changes."""
    cfn = _client("cloudformation", target)
    stack = described_stack(target)  # one DescribeStacks: its status and its parameters
    status = stack["StackStatus"] if stack else None
    if status == "ROLLBACK_COMPLETE":
        raise DeployError(
            f"Stack {target.stack!r} is in ROLLBACK_COMPLETE (its first create failed) and "
            "can't be updated: remove it with `python -m infra destroy --yes`, then deploy again."
        )
    if status and status.endswith("_IN_PROGRESS"):
        raise DeployError(
            f"Stack {target.stack!r} is busy ({status}): wait for it, then run the command again."
        )
    name = f"deploy-{int(time.time())}"
    previous = parameter_values(stack) if stack else None
    try:
        cfn.create_change_set(
            StackName=target.stack,
            ChangeSetName=name,
            ChangeSetType="UPDATE" if status else "CREATE",
            # The parameters' defaults are the target's settings: a new stack starts with the
            # deploying shell's PIPELINE_ values; an update keeps the deployed ones.
            TemplateBody=json.dumps(
                build_template(code, edge=target.edge, settings=target.settings)
            ),
            Parameters=_parameters(target, previous, sets or {}),
            Capabilities=CAPABILITIES,
        )
    except ClientError as exc:
        # moto refuses an update that changes nothing outright; AWS fails the change set.
        if any(marker in exc.response.get("Error", {}).get("Message", "") for marker in NO_CHANGES):
            return name, None
        raise
    description = _wait_change_set(cfn, target, name)
    if description["Status"] == "FAILED":
        reason = description.get("StatusReason", "")
        cfn.delete_change_set(StackName=target.stack, ChangeSetName=name)
        if any(marker in reason for marker in NO_CHANGES):
            return name, None
        raise DeployError(f"CloudFormation refused the change set: {reason}")
    return name, description


def ignored_shell_values(
    target: Target, previous: Mapping[str, str], sets: Mapping[str, str]
) -> list[str]:
    """A sentence per setting whose deploying-shell value (PIPELINE_HOT_DAYS=14 ...) differs
    from both the default and the deployed value: it only seeds a new stack, so say how to
    change it instead of silently keeping the deployed one."""
    shell = parameters(target.edge, target.settings)
    plain = parameters(target.edge, Settings())
    return [
        f"{name} stays {previous[name]!r} (deployed): the shell's value {shell[name]['Default']!r} "
        f"only seeds a new stack; change it with --set {name}={shell[name]['Default']}."
        for name in stack_settings.settable()
        if name in previous
        and name not in sets
        and shell[name].get("Default") != plain[name].get("Default")
        and shell[name].get("Default") != previous[name]
    ]


def plan(target: Target, sets: Mapping[str, str], say: Printer) -> list[str]:
    """The settings a deploy with `sets` changes (`  Name: old → new`), checked first: a
    site's shard count may not go down. Reads the stack, changes nothing; says which of the
    shell's values an update leaves alone."""
    previous = deployed_parameters(target)
    if previous is None:
        return []  # a new stack: every value is new, the change set lists the resources
    values = planned_values(target, previous, sets)
    stack_settings.check_shards_not_lowered(previous.get("Shards", ""), values["Shards"])
    for note in ignored_shell_values(target, previous, sets):
        say(note)
    return stack_settings.changes(previous, values)


def _follow(target: Target, since: float, say: Printer) -> str:
    cfn = _client("cloudformation", target)
    seen: set[str] = set()
    for _ in range(3600):
        try:
            events = cfn.describe_stack_events(StackName=target.stack)["StackEvents"]
        except ClientError as exc:
            if "does not exist" in exc.response.get("Error", {}).get("Message", ""):
                return "DELETE_COMPLETE"  # deleted between two polls
            raise
        for event in reversed(events):
            if event["EventId"] in seen or event["Timestamp"].timestamp() < since - 1:
                continue
            seen.add(event["EventId"])
            reason = (
                f" — {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
            )
            say(f"  {event['ResourceStatus']:<22} {event['LogicalResourceId']}{reason}")
        status = stack_status(target) or "DELETE_COMPLETE"
        if status in TERMINAL_OK | TERMINAL_FAILED | {"DELETE_COMPLETE"}:
            return status
        time.sleep(2)
    raise DeployError("The stack did not settle in two hours: see the CloudFormation console.")


def deploy(
    target: Target,
    say: Printer = print,
    platform: tuple[str, ...] | None = package.LAMBDA_PLATFORM,
    sets: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Create or update the stack with the `--set` values `sets` (already checked by
    infra.settings.parse_sets); a deploy with no change changes nothing. Its outputs."""
    sets = sets or {}
    try:
        settings_changed = plan(target, sets, say)
        code = upload_package(target, say, platform)
        name, description = create_change_set(target, code, sets)
        if description is None:
            say(f"No changes: stack {target.stack!r} is up to date.")
            return outputs(target)
        say(f"Change set {name}:")
        for line in [*settings_changed, *_describe_changes(description)]:
            say(line)
        started = time.time()
        _client("cloudformation", target).execute_change_set(
            StackName=target.stack, ChangeSetName=name
        )
        status = _follow(target, started, say)
    except (ClientError, BotoCoreError) as exc:
        raise explain(exc, target) from exc
    if status not in TERMINAL_OK:
        raise DeployError(
            f"Deploy ended in {status}: the events above say which resource failed and why."
        )
    return outputs(target)


def diff(
    target: Target,
    say: Printer = print,
    platform: tuple[str, ...] | None = package.LAMBDA_PLATFORM,
    sets: Mapping[str, str] | None = None,
) -> list[str]:
    """What a deploy (with the same `--set` values) would change, without changing anything:
    the settings that change (`  RetentionDays: 400 → 90`), then the resources."""
    sets = sets or {}
    try:
        settings_changed = plan(target, sets, say)
        code = upload_package(target, say, platform)
        name, description = create_change_set(target, code, sets)
        if description is None:
            return []
        _client("cloudformation", target).delete_change_set(
            StackName=target.stack, ChangeSetName=name
        )
    except (ClientError, BotoCoreError) as exc:
        raise explain(exc, target) from exc
    return [*settings_changed, *_describe_changes(description)]


def deployed_settings(target: Target) -> dict[str, str]:
    """`python -m infra settings`: the deployed stack's parameter values."""
    try:
        found = deployed_parameters(target)
    except (ClientError, BotoCoreError) as exc:
        raise explain(exc, target) from exc
    if found is None:
        raise DeployError(
            f"Stack {target.stack!r} does not exist: deploy it with `python -m infra deploy`."
        )
    return found


def destroy_question(stack: str) -> str:
    """What `python -m infra destroy` asks first: what is lost, and what stays."""
    return (
        f"Delete stack {stack!r} with its tables (every event and rollup in DynamoDB)? "
        "Its Parquet archive bucket is kept; destroy prints how to delete it. [y/N] "
    )


def archive_kept(bucket: str) -> str:
    """The sentence destroy ends with: the archive outlives the stack, and how to remove it."""
    return (
        f"Kept the archive bucket {bucket} (DeletionPolicy Retain: it holds the only copy of "
        f"closed days). To delete it and every file in it: aws s3 rb s3://{bucket} --force"
    )


def _archive_bucket(target: Target) -> str | None:
    """The stack's archive bucket, looked up before the stack goes (also when a failed
    create left no outputs)."""
    try:
        found = _client("cloudformation", target).describe_stack_resource(
            StackName=target.stack, LogicalResourceId="ArchiveBucket"
        )["StackResourceDetail"]
    except ClientError:
        return None  # a stack from before the archive, or the bucket was never created
    return found.get("PhysicalResourceId") or None


def destroy(target: Target, say: Printer = print) -> None:
    """Delete the stack (tables included) and the artifact bucket; the archive bucket stays."""
    try:
        archive: str | None = None
        if stack_status(target) is None:
            say(f"Stack {target.stack!r} does not exist: nothing to remove.")
        else:
            archive = _archive_bucket(target)
            started = time.time()
            _client("cloudformation", target).delete_stack(StackName=target.stack)
            status = _follow(target, started, say)
            if status != "DELETE_COMPLETE":
                raise DeployError(
                    f"Delete ended in {status}: see the events above, fix, and run destroy again."
                )
        _delete_bucket(target, artifact_bucket(target), say)
    except (ClientError, BotoCoreError) as exc:
        raise explain(exc, target) from exc
    if archive:
        say(archive_kept(archive))


def _delete_bucket(target: Target, bucket: str, say: Printer) -> None:
    s3 = _client("s3", target)
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=item["Key"])
        s3.delete_bucket(Bucket=bucket)
        say(f"Removed artifact bucket {bucket}.")
    except ClientError as exc:
        if aws.error_code(exc) != "NoSuchBucket":
            raise
