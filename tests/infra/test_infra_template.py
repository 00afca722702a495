"""The CloudFormation template: cfn-lint (real resource schemas) and the settings that matter."""

from __future__ import annotations

import base64
import copy
import json

import pytest
from cfnlint.api import ManualArgs, lint

from infra.template import FORWARDED_HEADERS, PIXEL_TEMPLATE, Code, build_template
from pipeline import resources
from pipeline.ingest import tracker

CODE = Code(
    bucket="analytics-artifacts-123456789012-us-east-1",
    key="consumer/abc.zip",
    compactor_key="compactor/def.zip",
)


@pytest.fixture(scope="module")
def template() -> dict:
    return build_template(CODE)


def lint_errors(template: dict) -> list[str]:
    matches = lint(json.dumps(template), config=ManualArgs(regions=["us-east-1"]))
    return [f"{m.rule.id} {m.message}" for m in matches if m.rule.id.startswith("E")]


def resource(template: dict, name: str) -> dict:
    return template["Resources"][name]["Properties"]


def test_cfn_lint_passes_on_the_whole_stack(template):
    assert lint_errors(template) == []


def test_cfn_lint_passes_on_the_data_path_only_stack():
    assert lint_errors(build_template(CODE, edge=False)) == []


def test_cfn_lint_catches_a_misspelt_property(template):
    broken = copy.deepcopy(template)
    broken["Resources"]["InboundQueue"]["Properties"]["VisibiltyTimeout"] = 30
    assert any("VisibiltyTimeout" in error for error in lint_errors(broken))


def test_queues_dlq_and_visibility(template):
    inbound, dlq = resource(template, "InboundQueue"), resource(template, "DeadLetterQueue")
    assert inbound["RedrivePolicy"]["maxReceiveCount"] == resources.MAX_RECEIVE_COUNT == 3
    assert inbound["VisibilityTimeout"] >= 6 * resource(template, "ConsumerFunction")["Timeout"]
    assert dlq["MessageRetentionPeriod"] > inbound["MessageRetentionPeriod"]


def test_tables_are_on_demand_with_ttl_and_point_in_time_recovery(template):
    for name in ("EventsTable", "SaltsTable"):
        table = resource(template, name)
        assert table["BillingMode"] == "PAY_PER_REQUEST"
        assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
        assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_consumer_function_and_its_event_source(template):
    function, mapping = (
        resource(template, "ConsumerFunction"),
        resource(template, "ConsumerEventSource"),
    )
    assert (function["Runtime"], function["Architectures"], function["Handler"]) == (
        "python3.13",
        ["arm64"],
        "pipeline.consume.consumer.handler",
    )
    assert function["Code"] == {"S3Bucket": CODE.bucket, "S3Key": CODE.key}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] > 10 and mapping["MaximumBatchingWindowInSeconds"] >= 1
    assert "MaximumConcurrency" in mapping["ScalingConfig"]
    assert "ReservedConcurrentExecutions" not in function


def _statements(template: dict, role: str) -> list[dict]:
    return [
        s for p in resource(template, role)["Policies"] for s in p["PolicyDocument"]["Statement"]
    ]


def test_least_privilege(template):
    assert _statements(template, "ApiSendRole") == [
        {
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": {"Fn::GetAtt": ["InboundQueue", "Arn"]},
        }
    ]
    consumer = _statements(template, "ConsumerRole")
    assert all("*" not in json.dumps(s["Action"]) and s["Resource"] != "*" for s in consumer)
    assert {s["Resource"]["Fn::GetAtt"][0] for s in consumer} == {
        "InboundQueue",
        "EventsTable",
        "SaltsTable",
        "SitesTable",
        "ConsumerLogGroup",
    }
    registry = next(s for s in consumer if s["Resource"]["Fn::GetAtt"][0] == "SitesTable")
    assert registry["Action"] == ["dynamodb:GetItem", "dynamodb:BatchGetItem"]  # read only


def test_pixel_is_a_direct_sqs_integration_with_the_vtl_file(template):
    method = resource(template, "PixelMethod")
    integration = method["Integration"]
    assert integration["Type"] == "AWS" and ":sqs:path/" in integration["Uri"]["Fn::Sub"]
    assert integration["RequestTemplates"] == {"application/json": PIXEL_TEMPLATE.read_text()}
    assert integration["RequestParameters"] == {
        "integration.request.header.Content-Type": "'application/x-www-form-urlencoded'"
    }
    assert (
        integration["PassthroughBehavior"] == "NEVER"
        and integration["ContentHandling"] == "CONVERT_TO_TEXT"
    )
    responses = {r["StatusCode"]: r for r in integration["IntegrationResponses"]}
    assert "SelectionPattern" not in responses["200"]
    assert responses["500"]["SelectionPattern"] == "(4|5)\\d{2}"  # SQS errors are not a silent 200
    for response in responses.values():
        assert response["ContentHandling"] == "CONVERT_TO_BINARY"
        assert (
            response["ResponseParameters"]["method.response.header.Content-Type"] == "'image/gif'"
        )
    assert method["ApiKeyRequired"] is True
    assert resource(template, "Api")["BinaryMediaTypes"] == ["*/*"]


def test_script_is_served_by_api_gateway(template):
    integration = resource(template, "ScriptMethod")["Integration"]
    assert (
        base64.b64decode(
            integration["IntegrationResponses"][0]["ResponseTemplates"]["application/json"]
        )
        == tracker.minified()
    )


def test_stage_throttles_and_logs_without_personal_data(template):
    stage = resource(template, "ApiStage")
    assert stage["StageName"] == "v1"
    assert stage["MethodSettings"][0]["ThrottlingRateLimit"] > 0
    log_format = stage["AccessLogSetting"]["Format"]
    assert "sourceIp" not in log_format and "userAgent" not in log_format


def test_cloudfront_forwards_viewer_headers_never_host_and_caches_only_the_script(template):
    policy = resource(template, "PixelOriginRequestPolicy")["OriginRequestPolicyConfig"]
    headers = policy["HeadersConfig"]["Headers"]
    assert set(headers) == set(FORWARDED_HEADERS)
    assert {
        "User-Agent",
        "Referer",
        "CloudFront-Viewer-Address",
        "CloudFront-Viewer-Latitude",
    } <= set(headers)
    assert "Host" not in headers and policy["QueryStringsConfig"]["QueryStringBehavior"] == "all"
    config = resource(template, "Distribution")["DistributionConfig"]
    assert (
        config["DefaultCacheBehavior"]["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
    )  # CachingDisabled
    script = config["CacheBehaviors"][0]
    assert (
        script["PathPattern"] == "/script.js"
        and script["CachePolicyId"] != config["DefaultCacheBehavior"]["CachePolicyId"]
    )
    origin_headers = config["Origins"][0]["OriginCustomHeaders"]
    assert origin_headers == [{"HeaderName": "x-api-key", "HeaderValue": {"Ref": "OriginSecret"}}]


def test_security_headers(template):
    security = resource(template, "ResponseHeadersPolicy")["ResponseHeadersPolicyConfig"][
        "SecurityHeadersConfig"
    ]
    assert security["FrameOptions"]["FrameOption"] == "DENY"
    assert security["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert set(security) == {
        "ContentSecurityPolicy",
        "StrictTransportSecurity",
        "FrameOptions",
        "ReferrerPolicy",
        "ContentTypeOptions",
    }


def test_alarms_and_dashboard(template):
    alarms = {
        name: r["Properties"]["MetricName"]
        for name, r in template["Resources"].items()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert set(alarms.values()) == {
        "ApproximateNumberOfMessagesVisible",
        "ApproximateAgeOfOldestMessage",
        "5XXError",
        "Errors",
    }
    assert "PipelineDashboard" in template["Resources"]


def test_outputs(template):
    assert set(template["Outputs"]) >= {
        "PixelUrl",
        "ScriptUrl",
        "EventsTable",
        "SaltsTable",
        "QueueUrl",
        "DlqUrl",
    }


def test_compactor_runs_on_a_schedule_with_only_the_rights_it_needs(template):
    function = resource(template, "CompactorFunction")
    assert function["Handler"] == "pipeline.store.compactor.handler"
    assert function["Code"] == {"S3Bucket": CODE.bucket, "S3Key": CODE.compactor_key}
    assert resource(template, "CompactorSchedule")["ScheduleExpression"] == "rate(15 minutes)"
    assert resource(template, "CompactorSchedulePermission")["Principal"] == "events.amazonaws.com"
    rights = {
        (s["Resource"]["Fn::GetAtt"][0], a)
        for s in _statements(template, "CompactorRole")
        for a in s["Action"]
    }
    assert rights == {
        ("EventsTable", "dynamodb:Query"),
        ("EventsTable", "dynamodb:BatchWriteItem"),
        ("EventsTable", "dynamodb:DeleteItem"),
        ("SitesTable", "dynamodb:GetItem"),  # the referrer-spam list's daily refresh
        ("SitesTable", "dynamodb:PutItem"),
        ("CompactorLogGroup", "logs:CreateLogStream"),
        ("CompactorLogGroup", "logs:PutLogEvents"),
    }
