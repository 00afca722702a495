"""`python -m infra` against moto's server: what moto can deploy, deployed; errors in words.

moto deploys the data path (queues with their redrive policy, tables, the functions and the
consumer's event source mapping, the alarm topic and its e-mail subscription). Its
CloudFormation does not create API Gateway, CloudFront, stages or CloudWatch alarms, and it
cannot run a Lambda without Docker: those parts are checked by test_infra_template.py (the
alarms listing reads alarms put on moto's CloudWatch directly).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import EndpointConnectionError

from infra.deploy import DeployError, Target, create_change_set, deploy, destroy, diff, explain
from infra.template import Code
from pipeline import aws
from pipeline.config import Settings
from pipeline.stack import settings_from_env

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def target(moto_server) -> Target:
    return Target(
        stack=f"s{uuid.uuid4().hex[:8]}", settings=Settings(endpoint_url=moto_server), edge=False
    )


def test_deploy_creates_the_data_path_a_second_deploy_changes_nothing_destroy_removes_it(
    target, monkeypatch
):
    said: list[str] = []
    deploy(target, say=said.append)
    assert any("Add      ConsumerFunction" in line for line in said)

    cfn = aws.client("cloudformation", target.settings)
    assert (
        cfn.describe_stacks(StackName=target.stack)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    )
    monkeypatch.setenv("PIPELINE_STACK", target.stack)
    found = settings_from_env(endpoint_url=target.settings.endpoint_url)
    assert found.events_table.startswith(f"{target.stack}-EventsTable")

    sqs = aws.client("sqs", found)
    inbound = sqs.get_queue_url(QueueName=found.queue_name)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=inbound, AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert int(redrive["maxReceiveCount"]) == 3 and redrive["deadLetterTargetArn"].endswith(
        found.dlq_name
    )
    assert int(attributes["VisibilityTimeout"]) == 180

    dynamodb = aws.client("dynamodb", found)
    for table, key in (
        (found.events_table, ["pk", "sk"]),
        (found.salts_table, ["day"]),
        (found.sites_table, ["site"]),
    ):
        described = dynamodb.describe_table(TableName=table)["Table"]
        assert [k["AttributeName"] for k in described["KeySchema"]] == key
        assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        # moto's CloudFormation ignores TimeToLiveSpecification; test_infra_template checks it.

    lam = aws.client("lambda", found)
    function = lam.get_function_configuration(FunctionName=f"{target.stack}-consumer")
    # moto's CloudFormation drops Architectures (arm64 is checked in test_infra_template).
    assert (function["Runtime"], function["Handler"], function["Timeout"]) == (
        "python3.13",
        "pipeline.consume.consumer.handler",
        30,
    )

    def text_env(described: dict) -> dict[str, str]:
        # moto hands a Number parameter given outright (HotDays, RetentionDays: the deploy
        # passes the settings' values) to the function as an int; Lambda's environment is text.
        return {k: str(v) for k, v in described["Environment"]["Variables"].items()}

    tables_and_days = {
        "PIPELINE_EVENTS_TABLE": found.events_table,
        "PIPELINE_SALTS_TABLE": found.salts_table,
        "PIPELINE_SITES_TABLE": found.sites_table,
        "PIPELINE_HOT_DAYS": "7",  # Settings().hot_days
        "PIPELINE_RETENTION_DAYS": "400",
        "PIPELINE_SHARDS": "",  # the parameters' defaults: nothing was --set
    }
    assert text_env(function) == tables_and_days | {"PIPELINE_RESPECT_DNT": "false"}
    compactor = lam.get_function_configuration(FunctionName=f"{target.stack}-compactor")
    assert (compactor["Handler"], compactor["Timeout"]) == ("pipeline.store.compactor.handler", 300)
    readers_env = tables_and_days | {"PIPELINE_ARCHIVE_BUCKET": found.archive_bucket}
    assert text_env(compactor) == readers_env | {
        "PIPELINE_REPORT_SENDER": "",
        "PIPELINE_DASHBOARD_URL": "",
    }
    stats_api = lam.get_function_configuration(FunctionName=f"{target.stack}-stats-api")
    assert stats_api["Handler"] == "pipeline.api.app.lambda_handler"
    assert text_env(stats_api) == readers_env

    # The archive: created by the stack, named from it, encrypted; the functions' settings
    # (from the stack alone) write and read it.
    assert found.archive_bucket.startswith(f"{target.stack}-archivebucket")
    s3 = aws.client("s3", found)
    rule = s3.get_bucket_encryption(Bucket=found.archive_bucket)[
        "ServerSideEncryptionConfiguration"
    ]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    # moto's CloudFormation applies neither the lifecycle rules, the public access block nor
    # the bucket policy: test_infra_template.py checks them.
    s3.put_object(
        Bucket=found.archive_bucket, Key="events/site=a.example/day=2026-01-01/x", Body=b"1"
    )
    (mapping,) = lam.list_event_source_mappings(FunctionName=f"{target.stack}-consumer")[
        "EventSourceMappings"
    ]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert (
        mapping["BatchSize"],
        mapping["MaximumBatchingWindowInSeconds"],
        mapping["ScalingConfig"],
    ) == (100, 1, {"MaximumConcurrency": 5})

    said.clear()
    assert diff(target, say=said.append) == []
    deploy(target, say=said.append)
    assert f"No changes: stack {target.stack!r} is up to date." in said

    destroy(target, say=said.append)
    assert not [
        s
        for s in cfn.list_stacks()["StackSummaries"]
        if s["StackName"] == target.stack and s["StackStatus"] != "DELETE_COMPLETE"
    ]
    # The artifacts are gone; the archive (DeletionPolicy Retain) and its files are kept.
    left = [
        b["Name"]
        for b in aws.client("s3", target.settings).list_buckets()["Buckets"]
        if b["Name"].startswith(target.stack)
    ]
    assert left == [found.archive_bucket]
    assert said[-1].startswith(f"Kept the archive bucket {found.archive_bucket} ")
    assert s3.list_objects_v2(Bucket=found.archive_bucket)["KeyCount"] == 1


def test_a_stack_in_rollback_complete_gets_one_sentence_and_the_fix(target, monkeypatch):
    aws.client("cloudformation", target.settings).create_stack(
        StackName=target.stack,
        TemplateBody=json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}),
    )
    real_client = aws.client

    def rolled_back(parsed, **_):
        for stack in parsed.get("Stacks", []):
            stack["StackStatus"] = "ROLLBACK_COMPLETE"  # as after a failed first create

    def client(service, settings):
        made = real_client(service, settings)
        if service == "cloudformation":
            made.meta.events.register("after-call.cloudformation.DescribeStacks", rolled_back)
        return made

    monkeypatch.setattr(aws, "client", client)
    with pytest.raises(DeployError, match=r"ROLLBACK_COMPLETE .*python -m infra destroy --yes"):
        create_change_set(target, Code("bucket", "key", "key2"))


def test_unreachable_region_is_explained():
    error = explain(
        EndpointConnectionError(endpoint_url="https://cloudformation.xx-nowhere-1.amazonaws.com"),
        Target("s", Settings(region="xx-nowhere-1")),
    )
    assert "xx-nowhere-1" in str(error) and "--region" in str(error)


def test_missing_credentials_get_one_sentence_not_a_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",  # never probe the instance metadata address
        "AWS_REGION": "us-east-1",
    }
    result = subprocess.run(
        [sys.executable, "-m", "infra", "outputs"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "error: No AWS credentials found: run `aws configure` (or set AWS_PROFILE), then deploy again."
    )


def test_cost_of_a_million_events():
    result = subprocess.run(
        [sys.executable, "-m", "infra", "cost", "--events-per-month", "1000000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert "API Gateway (REST)" in result.stdout and "3.50" in result.stdout
    assert "per million events" in result.stdout


def test_the_stats_api_is_on_the_bill_per_request():
    from pipeline.ops import cost

    def api_line(requests: int) -> float:
        lines = cost.monthly_cost(1_000_000, api_requests=requests)
        return next(line.dollars for line in lines if line.service == "Stats API")

    assert api_line(0) == 0
    assert api_line(20_000) == pytest.approx(2 * api_line(10_000))
    # API Gateway alone is $3.50 per million: the line is at least that.
    assert api_line(1_000_000) > 3.50
    result = subprocess.run(
        [sys.executable, "-m", "infra", "cost", "--api-requests-per-month", "50000"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0 and "50,000 requests" in result.stdout


# ---- issue 17: settings with --set, `settings`, `alarms` -------------------------------------


def _cli(target: Target, capsys, *argv: str) -> tuple[int, str, str]:
    """`python -m infra ARGV` in-process against moto's server; (exit code, stdout, stderr)."""
    from infra.__main__ import main

    common = ["--stack", target.stack, "--endpoint-url", target.settings.endpoint_url]
    code = main([argv[0], *common, "--data-path-only", *argv[1:]])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _env(target: Target, function: str) -> dict[str, str]:
    lam = aws.client("lambda", target.settings)
    described = lam.get_function_configuration(FunctionName=f"{target.stack}-{function}")
    return {k: str(v) for k, v in described["Environment"]["Variables"].items()}


def _parameters(target: Target) -> dict[str, str]:
    stack = aws.client("cloudformation", target.settings).describe_stacks(StackName=target.stack)
    return {p["ParameterKey"]: str(p["ParameterValue"]) for p in stack["Stacks"][0]["Parameters"]}


def _subscriptions(target: Target) -> list[tuple[str, str]]:
    sns = aws.client("sns", target.settings)
    return [
        (s["Protocol"], s["Endpoint"])
        for s in sns.list_subscriptions()["Subscriptions"]
        if f":{target.stack}-AlarmTopic" in s["TopicArn"]
    ]


def test_settings_are_set_at_deploy_changed_one_at_a_time_and_read_back(target, capsys):
    code, out, err = _cli(
        target,
        capsys,
        "deploy",
        "--set",
        "AlarmEmail=Ops@Example.com",
        "--set",
        "retentiondays=300",
    )
    assert code == 0, err
    # The confirmation step, in words, after the outputs.
    assert '"Subscription Confirmation"' in out and "Ops@example.com" in out
    assert "nothing is delivered until the link in it is" in out
    assert _subscriptions(target) == [("email", "Ops@example.com")]
    assert _env(target, "consumer")["PIPELINE_RETENTION_DAYS"] == "300"

    code, out, err = _cli(target, capsys, "settings")
    assert code == 0, err
    listed = dict(line.split(None, 1) for line in out.strip().splitlines())
    assert listed == {
        "HotDays": "7",
        "RetentionDays": "300",
        "RespectDnt": "false",
        "Shards": "(empty)",
        "AlarmEmail": "Ops@example.com",
        "ReportSender": "(empty)",
        "DashboardUrl": "(empty)",
    }

    # diff shows the parameter change and changes nothing.
    code, out, err = _cli(target, capsys, "diff", "--set", "RetentionDays=90")
    assert code == 0, err
    assert "  RetentionDays: 300 → 90" in out.splitlines()
    assert _parameters(target)["RetentionDays"] == "300"

    # Bad input: one sentence each, exit 2, the stack's parameters untouched.
    before = _parameters(target)
    for bad in (
        ["--set", "RetentionDays=90", "--set", "HotDays=0"],
        ["--set", "Retention=90"],
        ["--set", "AlarmEmail=ops-at-example.com"],
    ):
        code, out, err = _cli(target, capsys, "deploy", *bad)
        assert code == 2 and out == ""
        (line,) = err.strip().splitlines()
        assert line.startswith("error: ") and line.endswith(".")
    assert _parameters(target) == before

    # One setting changes; the others keep their deployed values, not the defaults.
    code, out, err = _cli(
        target,
        capsys,
        "deploy",
        "--set",
        "RetentionDays=90",
        "--set",
        "Shards=big.example=4",
        "--set",
        "RespectDnt=TRUE",
        "--set",
        "ReportSender=reports@example.com",
        "--set",
        "DashboardUrl=https://analytics.example.com/",
    )
    assert code == 0, err
    assert "  RetentionDays: 300 → 90" in out.splitlines()
    assert "  Shards: (empty) → big.example=4" in out.splitlines()
    consumer, compactor, stats_api = (
        _env(target, f) for f in ("consumer", "compactor", "stats-api")
    )
    assert consumer["PIPELINE_RETENTION_DAYS"] == compactor["PIPELINE_RETENTION_DAYS"] == "90"
    assert consumer["PIPELINE_RESPECT_DNT"] == "true"
    assert {
        consumer["PIPELINE_SHARDS"],
        compactor["PIPELINE_SHARDS"],
        stats_api["PIPELINE_SHARDS"],
    } == {"big.example=4"}
    assert compactor["PIPELINE_REPORT_SENDER"] == "reports@example.com"
    assert compactor["PIPELINE_DASHBOARD_URL"] == "https://analytics.example.com/"
    assert consumer["PIPELINE_HOT_DAYS"] == "7"
    kept = _parameters(target)
    assert (kept["AlarmEmail"], kept["HotDays"]) == ("Ops@example.com", "7")
    assert _subscriptions(target) == [("email", "Ops@example.com")]

    # A site's shards never go down: refused before anything changes.
    code, out, err = _cli(target, capsys, "deploy", "--set", "Shards=big.example=2")
    assert code == 2 and "Shards can only go up: big.example would go from 4 to 2" in err
    assert _parameters(target) == kept

    # Nothing to change: said, and diff agrees.
    code, out, err = _cli(target, capsys, "deploy", "--set", "RetentionDays=90")
    assert code == 0, err
    assert f"No changes: stack {target.stack!r} is up to date." in out
    code, out, err = _cli(target, capsys, "diff")
    assert out.splitlines()[-1] == f"No changes: stack {target.stack!r} is up to date."

    destroy(target, say=lambda _: None)


def test_alarms_lists_the_stacks_alarms_their_state_and_who_is_notified(target, capsys):
    code, out, err = _cli(target, capsys, "alarms")
    assert code == 2 and f"Stack {target.stack!r} does not exist" in err
    deploy(target, say=lambda _: None, sets={"AlarmEmail": "ops@example.com"})
    cfn = aws.client("cloudformation", target.settings)
    (topic,) = [
        r["PhysicalResourceId"]
        for r in cfn.describe_stack_resources(StackName=target.stack)["StackResources"]
        if r.get("LogicalResourceId") == "AlarmTopic"
    ]
    # moto's CloudFormation cannot create alarms: put them as the full stack's template does.
    from infra.template import Code as TemplateCode
    from infra.template import build_template

    cloudwatch = aws.client("cloudwatch", target.settings)
    full = build_template(TemplateCode("b", "k", "k2"))["Resources"]
    lag = full["ConsumerLagAlarm"]["Properties"]
    name = lag["AlarmName"]["Fn::Sub"].replace("${AWS::StackName}", target.stack)
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        AlarmDescription=lag["AlarmDescription"],
        AlarmActions=[topic],
        OKActions=[topic],
        Namespace=lag["Namespace"],
        MetricName=lag["MetricName"],
        Dimensions=[{"Name": "QueueName", "Value": "inbound"}],
        Statistic=lag["Statistic"],
        Period=lag["Period"],
        EvaluationPeriods=lag["EvaluationPeriods"],
        Threshold=lag["Threshold"],
        ComparisonOperator=lag["ComparisonOperator"],
    )
    cloudwatch.set_alarm_state(
        AlarmName=name, StateValue="ALARM", StateReason="Threshold Crossed: 3 datapoints > 600"
    )
    # Not the stack's: a sibling stack's alarm on its own topic, and one without actions.
    common = {"Namespace": "AWS/SQS", "MetricName": "X", "Statistic": "Maximum", "Period": 300}
    common |= {"EvaluationPeriods": 1, "Threshold": 1, "ComparisonOperator": "GreaterThanThreshold"}
    other = f"arn:aws:sns:us-east-1:123456789012:{target.stack}-dev-AlarmTopic-X"
    cloudwatch.put_metric_alarm(AlarmName=f"{target.stack}-dev-lag", AlarmActions=[other], **common)
    cloudwatch.put_metric_alarm(AlarmName=f"{target.stack}-silent", **common)

    code, out, err = _cli(target, capsys, "alarms")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"Alarms of stack {target.stack!r} (topic {topic}):"
    (listed,) = [line for line in lines if f"{target.stack}-" in line and "topic" not in line]
    assert listed.split()[:2] == ["ALARM", f"{target.stack}-consumer-lag"]
    assert listed.endswith("— Threshold Crossed: 3 datapoints > 600")
    assert "  email ops@example.com — confirmed" in lines  # moto confirms e-mail at once

    destroy(target, say=lambda _: None)
