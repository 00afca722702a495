"""The deploy seeds a new stack's hot window and retention from the target's settings,
`--set` changes them later, and destroy keeps the Parquet archive (DeletionPolicy Retain) and says how to delete it.

Against moto's server, with small stand-in zips as the functions' code: moto stores a
Lambda's code without running it, so the packages need not be built (test_infra_deploy.py
deploys the real ones).
"""

from __future__ import annotations

import io
import uuid
import zipfile
from dataclasses import replace

import pytest

from infra.deploy import (
    Target,
    archive_kept,
    create_change_set,
    deployed_parameters,
    destroy,
    destroy_question,
    ignored_shell_values,
)
from infra.template import Code
from pipeline import aws
from pipeline.config import Settings

pytestmark = pytest.mark.integration


def _code(target: Target) -> Code:
    """A bucket holding a stand-in zip for each function."""
    bucket = f"{target.stack}-artifacts"
    s3 = aws.client("s3", target.settings)
    s3.create_bucket(Bucket=bucket)
    body = io.BytesIO()
    with zipfile.ZipFile(body, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
    for key in ("consumer.zip", "compactor.zip"):
        s3.put_object(Bucket=bucket, Key=key, Body=body.getvalue())
    return Code(bucket=bucket, key="consumer.zip", compactor_key="compactor.zip")


def _apply(target: Target, code: Code, waiter: str, sets: dict[str, str] | None = None) -> None:
    """Create the change set the deploy would, execute it and wait for the stack."""
    name, description = create_change_set(target, code, sets)
    assert description is not None, "the change set should change something"
    cfn = aws.client("cloudformation", target.settings)
    cfn.execute_change_set(StackName=target.stack, ChangeSetName=name)
    cfn.get_waiter(waiter).wait(
        StackName=target.stack, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )


def _function_env(target: Target, function: str) -> dict[str, str]:
    lam = aws.client("lambda", target.settings)
    described = lam.get_function_configuration(FunctionName=f"{target.stack}-{function}")
    # moto hands a Number parameter given outright to the function as an int; Lambda's
    # environment is text.
    return {name: str(value) for name, value in described["Environment"]["Variables"].items()}


def test_the_deploy_takes_hot_days_and_retention_from_the_settings_and_destroy_keeps_the_archive(
    moto_server,
):
    target = Target(
        stack=f"a{uuid.uuid4().hex[:8]}",
        settings=Settings(endpoint_url=moto_server, hot_days=3, retention_days=30),
        edge=False,
    )
    code = _code(target)
    _apply(target, code, "stack_create_complete")

    cfn = aws.client("cloudformation", target.settings)
    template = cfn.get_template(StackName=target.stack)["TemplateBody"]
    assert template["Parameters"]["HotDays"]["Default"] == "3"
    assert template["Parameters"]["RetentionDays"]["Default"] == "30"
    for function in ("consumer", "compactor"):
        env = _function_env(target, function)
        assert (env["PIPELINE_HOT_DAYS"], env["PIPELINE_RETENTION_DAYS"]) == ("3", "30")

    # The shell's settings seed a new stack only: a later deploy from a shell with another
    # window keeps the deployed one, and says how to change it.
    wider = replace(target, settings=replace(target.settings, hot_days=14))
    assert ignored_shell_values(wider, deployed_parameters(wider) or {}, {}) == [
        "HotDays stays '3' (deployed): the shell's value '14' only seeds a new stack; "
        "change it with --set HotDays=14."
    ]
    _apply(wider, code, "stack_update_complete")
    assert _function_env(wider, "compactor")["PIPELINE_HOT_DAYS"] == "3"
    # --set changes it; the retention set at creation stays.
    _apply(wider, code, "stack_update_complete", {"HotDays": "14"})
    env = _function_env(wider, "compactor")
    assert (env["PIPELINE_HOT_DAYS"], env["PIPELINE_RETENTION_DAYS"]) == ("14", "30")
    assert ignored_shell_values(wider, deployed_parameters(wider) or {}, {}) == []

    bucket = cfn.describe_stack_resource(StackName=target.stack, LogicalResourceId="ArchiveBucket")[
        "StackResourceDetail"
    ]["PhysicalResourceId"]
    s3 = aws.client("s3", target.settings)
    key = "events/site=a.example/day=2026-01-01/part-0.parquet"
    s3.put_object(Bucket=bucket, Key=key, Body=b"kept")

    said: list[str] = []
    destroy(target, say=said.append)
    assert said[-1] == archive_kept(bucket)
    assert f"aws s3 rb s3://{bucket} --force" in said[-1]
    # The stack is gone, the archive and its file are not.
    assert not [
        s
        for s in cfn.list_stacks()["StackSummaries"]
        if s["StackName"] == target.stack and s["StackStatus"] != "DELETE_COMPLETE"
    ]
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"kept"

    # A second destroy finds no stack and promises nothing about a bucket it cannot name.
    said.clear()
    destroy(target, say=said.append)
    assert said == [f"Stack {target.stack!r} does not exist: nothing to remove."]


def test_the_destroy_question_says_the_archive_stays():
    question = destroy_question("analytics")
    assert "'analytics'" in question and "archive bucket is kept" in question
    assert question.endswith("[y/N] ")
