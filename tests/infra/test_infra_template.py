"""The CloudFormation template: cfn-lint (real resource schemas) and the settings that matter."""

from __future__ import annotations

import base64
import copy
import json
from datetime import date

import pytest
from cfnlint.api import ManualArgs, lint

from infra.template import (
    CACHING_DISABLED,
    EVENT_SCHEMA,
    EVENT_TEMPLATE,
    FORWARDED_HEADERS,
    PIXEL_TEMPLATE,
    Code,
    build_template,
)
from pipeline import config, resources
from pipeline.config import Settings
from pipeline.ingest import tracker
from pipeline.store import archive

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


def _alarms(template: dict) -> dict[str, dict]:
    return {
        name: r["Properties"]
        for name, r in template["Resources"].items()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }


def test_alarms_and_dashboard(template):
    metrics = {
        p.get("MetricName") or next(m["Expression"] for m in p["Metrics"] if "Expression" in m)
        for p in _alarms(template).values()
    }
    assert metrics >= {
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
        if "Fn::GetAtt" in s["Resource"]
    }
    assert rights == {
        ("ArchiveBucket", "s3:ListBucket"),  # events/ only (test_archive_rights_are_...)
        ("EventsTable", "dynamodb:Query"),
        ("EventsTable", "dynamodb:BatchWriteItem"),
        ("EventsTable", "dynamodb:DeleteItem"),
        # The referrer-spam list's daily refresh, and the reports' `#report#` items.
        *(
            ("SitesTable", f"dynamodb:{action}")
            for action in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Scan", "BatchGetItem")
        ),
        ("CompactorLogGroup", "logs:CreateLogStream"),
        ("CompactorLogGroup", "logs:PutLogEvents"),
    }


# ---- issue 15: Plausible's events API and Stats API -----------------------------------------


def test_event_api_is_a_direct_sqs_method_with_the_event_template_for_both_types(template):
    method = resource(template, "EventMethod")
    assert (method["HttpMethod"], method["ResourceId"]) == ("POST", {"Ref": "EventResource"})
    assert resource(template, "EventResource")["PathPart"] == "event"
    assert resource(template, "ApiPathResource")["PathPart"] == "api"
    integration = method["Integration"]
    assert integration["Type"] == "AWS" and ":sqs:path/" in integration["Uri"]["Fn::Sub"]
    assert integration["Credentials"] == {"Fn::GetAtt": ["ApiSendRole", "Arn"]}
    template_text = EVENT_TEMPLATE.read_text()
    assert integration["RequestTemplates"] == {
        "application/json": template_text,
        "text/plain": template_text,  # what the tracker sends (no CORS preflight)
    }
    assert integration["PassthroughBehavior"] == "NEVER"  # any other type: 415, nothing queued
    responses = {r["StatusCode"]: r for r in integration["IntegrationResponses"]}
    assert responses["202"]["ResponseTemplates"] == {"application/json": "ok"}
    assert "SelectionPattern" not in responses["202"]
    assert responses["500"]["SelectionPattern"] == "(4|5)\\d{2}"
    cors = responses["202"]["ResponseParameters"]
    assert cors["method.response.header.Access-Control-Allow-Origin"] == "'*'"
    assert method["ApiKeyRequired"] is True  # only through CloudFront


def test_event_bodies_are_validated_with_the_collectors_schema(template):
    method = resource(template, "EventMethod")
    assert method["RequestValidatorId"] == {"Ref": "EventValidator"}
    assert resource(template, "EventValidator")["ValidateRequestBody"] is True
    assert method["RequestModels"] == {
        "application/json": {"Ref": "EventModel"},
        "text/plain": {"Ref": "EventModel"},
    }
    model = resource(template, "EventModel")
    assert model["Schema"] == json.loads(EVENT_SCHEMA.read_text())
    assert model["Schema"]["$schema"] == "http://json-schema.org/draft-04/schema#"
    refused = resource(template, "EventRefusedResponse")
    assert (refused["ResponseType"], refused["StatusCode"]) == ("BAD_REQUEST_BODY", "400")
    body = json.loads(refused["ResponseTemplates"]["application/json"])
    assert set(body) == {"errors"} and all(isinstance(v, list) for v in body["errors"].values())
    headers = refused["ResponseParameters"]
    assert headers["gatewayresponse.header.Access-Control-Allow-Origin"] == "'*'"


def test_event_preflight_answers_as_plausibles_cors(template):
    preflight = resource(template, "EventPreflightMethod")
    assert preflight["HttpMethod"] == "OPTIONS" and preflight["Integration"]["Type"] == "MOCK"
    (response,) = preflight["Integration"]["IntegrationResponses"]
    headers = response["ResponseParameters"]
    assert response["StatusCode"] == "204"
    assert "POST" in headers["method.response.header.Access-Control-Allow-Methods"]
    assert "Content-Type" in headers["method.response.header.Access-Control-Allow-Headers"]


def test_the_json_endpoints_have_their_own_api_that_treats_bodies_as_text(template):
    # The pixel's API sends every body as binary (*/*): the event template would see base64.
    assert "BinaryMediaTypes" not in resource(template, "JsonApi")
    stage = resource(template, "JsonApiStage")
    assert stage["StageName"] == "v1" and stage["MethodSettings"][0]["ThrottlingRateLimit"] > 0
    assert "sourceIp" not in stage["AccessLogSetting"]["Format"]
    assert "authorization" not in stage["AccessLogSetting"]["Format"].lower()
    stages = resource(template, "UsagePlan")["ApiStages"]
    assert {"ApiId": {"Ref": "JsonApi"}, "Stage": "v1"} in stages
    deployment = template["Resources"]["JsonApiDeployment"]["DependsOn"]
    assert {"EventMethod", "EventPreflightMethod", "StatsV1Method", "StatsV2Method"} <= set(
        deployment
    )


def test_stats_api_routes_go_to_a_small_lambda(template):
    assert resource(template, "StatsV1ProxyResource")["PathPart"] == "{proxy+}"
    assert resource(template, "StatsV2QueryResource")["PathPart"] == "query"
    for name in ("StatsV1Method", "StatsV2Method"):
        method = resource(template, name)
        assert method["Integration"]["Type"] == "AWS_PROXY"
        assert "${StatsApiFunction.Arn}" in method["Integration"]["Uri"]["Fn::Sub"]
        assert method["ApiKeyRequired"] is True
    function = resource(template, "StatsApiFunction")
    assert function["Handler"] == "pipeline.api.app.lambda_handler"
    assert (function["Runtime"], function["Architectures"]) == ("python3.13", ["arm64"])
    # The readers' package: the compactor's zip holds the API too (infra/package.py).
    assert function["Code"] == {"S3Bucket": CODE.bucket, "S3Key": CODE.compactor_key}
    assert (
        build_template(Code("b", "k", "c", api_key="api/x.zip"))["Resources"]["StatsApiFunction"][
            "Properties"
        ]["Code"]["S3Key"]
        == "api/x.zip"
    )
    assert function["Timeout"] <= 29  # API Gateway's integration limit
    assert resource(template, "StatsApiLogGroup")["RetentionInDays"] == 14
    permission = resource(template, "StatsApiInvokePermission")
    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert permission["SourceArn"]["Fn::Sub"].endswith("${JsonApi}/*/*/api/*")


def test_stats_api_role_reads_and_only_counts_requests(template):
    statements = _statements(template, "StatsApiRole")
    rights = {
        (s["Resource"]["Fn::GetAtt"][0], a, json.dumps(s.get("Condition", {})))
        for s in statements
        for a in s["Action"]
        if "Fn::GetAtt" in s["Resource"]
    }
    events_only = json.dumps({"StringLike": {"s3:prefix": ["events/*"]}})
    rate_only = json.dumps({"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["#rate#*"]}})
    assert rights == {
        ("ArchiveBucket", "s3:ListBucket", events_only),
        ("EventsTable", "dynamodb:Query", "{}"),
        ("EventsTable", "dynamodb:GetItem", "{}"),
        ("SitesTable", "dynamodb:GetItem", "{}"),
        ("SitesTable", "dynamodb:BatchGetItem", "{}"),
        ("SitesTable", "dynamodb:UpdateItem", rate_only),
        ("StatsApiLogGroup", "logs:CreateLogStream", "{}"),
        ("StatsApiLogGroup", "logs:PutLogEvents", "{}"),
    }
    from pipeline.api.keys import RATE_ITEM_PREFIX

    assert rate_only.count(RATE_ITEM_PREFIX + "*") == 1


def test_cloudfront_routes_the_json_paths_and_never_caches_them(template):
    config = resource(template, "Distribution")["DistributionConfig"]
    origins = {o["Id"]: o for o in config["Origins"]}
    assert origins["json-api"]["DomainName"]["Fn::Sub"].startswith("${JsonApi}.")
    assert origins["json-api"]["OriginCustomHeaders"] == origins["api"]["OriginCustomHeaders"]
    behaviours = {b["PathPattern"]: b for b in config["CacheBehaviors"]}
    event = behaviours["/api/event"]
    assert event["TargetOriginId"] == "json-api" and "POST" in event["AllowedMethods"]
    assert event["CachePolicyId"] == CACHING_DISABLED
    forwarded = resource(template, "EventOriginRequestPolicy")["OriginRequestPolicyConfig"]
    assert set(forwarded["HeadersConfig"]["Headers"]) == {*FORWARDED_HEADERS, "Content-Type"}
    cors = resource(template, "ResponseHeadersPolicy")["ResponseHeadersPolicyConfig"]["CorsConfig"]
    assert {"POST", "OPTIONS"} <= set(cors["AccessControlAllowMethods"]["Items"])
    cache = resource(template, "StatsApiCachePolicy")["CachePolicyConfig"]
    assert (cache["MinTTL"], cache["DefaultTTL"]) == (0, 0) and cache["MaxTTL"] <= 1
    keyed = cache["ParametersInCacheKeyAndForwardedToOrigin"]
    assert keyed["HeadersConfig"]["Headers"] == ["Authorization"]  # forwarded, never shared
    for pattern in ("/api/v1/*", "/api/v2/*"):
        stats = behaviours[pattern]
        assert stats["TargetOriginId"] == "json-api" and "POST" in stats["AllowedMethods"]
        assert stats["CachePolicyId"] == {"Ref": "StatsApiCachePolicy"}
        assert stats["ViewerProtocolPolicy"] == "https-only"
        headers = resource(template, "StatsApiOriginRequestPolicy")["OriginRequestPolicyConfig"]
        assert "CloudFront-Viewer-Address" not in headers["HeadersConfig"]["Headers"]
        policy = resource(template, "StatsApiHeadersPolicy")["ResponseHeadersPolicyConfig"]
        assert "CorsConfig" not in policy and "SecurityHeadersConfig" in policy


def test_the_new_endpoints_are_in_the_outputs_and_alarmed(template):
    assert {"EventUrl", "StatsApiUrl"} <= set(template["Outputs"])
    assert template["Outputs"]["EventUrl"]["Value"]["Fn::Sub"].endswith("/api/event")
    alarms = template["Resources"]
    assert alarms["StatsApiErrorsAlarm"]["Properties"]["Dimensions"] == [
        {"Name": "FunctionName", "Value": {"Ref": "StatsApiFunction"}}
    ]
    assert alarms["JsonApi5xxAlarm"]["Properties"]["MetricName"] == "5XXError"


def test_the_data_path_only_stack_has_the_function_but_no_gateway():
    resources_ = build_template(CODE, edge=False)["Resources"]
    assert "StatsApiFunction" in resources_ and "JsonApi" not in resources_


# ---- issue 16: the Parquet archive, Glue and Athena ------------------------------------------


def _object_rights(template: dict, role: str) -> set[tuple[str, str]]:
    """(resource pattern, action) of a role's statements on objects (Fn::Sub resources)."""
    return {
        (s["Resource"]["Fn::Sub"], a)
        for s in _statements(template, role)
        if "Fn::Sub" in s["Resource"]
        for a in s["Action"]
        if a.startswith("s3:")
    }


def test_the_archive_bucket_is_private_encrypted_tls_only_and_expires_by_prefix(template):
    bucket = resource(template, "ArchiveBucket")
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    (encryption,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    rules = {r["Id"]: r for r in bucket["LifecycleConfiguration"]["Rules"]}
    assert (rules["events-retention"]["Prefix"], rules["events-retention"]["ExpirationInDays"]) == (
        archive.PREFIX,
        {"Ref": "RetentionDays"},
    )
    assert (rules["athena-results"]["Prefix"], rules["athena-results"]["ExpirationInDays"]) == (
        "athena-results/",
        7,
    )
    assert all(r["Status"] == "Enabled" for r in rules.values())
    # The only copy of closed days: a deleted stack or a replaced bucket keeps it.
    raw = template["Resources"]["ArchiveBucket"]
    assert raw["DeletionPolicy"] == raw["UpdateReplacePolicy"] == "Retain"
    (statement,) = resource(template, "ArchiveBucketPolicy")["PolicyDocument"]["Statement"]
    assert (statement["Effect"], statement["Principal"], statement["Action"]) == (
        "Deny",
        "*",
        "s3:*",
    )
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statement["Resource"] == [
        {"Fn::GetAtt": ["ArchiveBucket", "Arn"]},
        {"Fn::Sub": "${ArchiveBucket.Arn}/*"},
    ]


def test_the_retention_and_hot_window_are_stack_parameters_with_the_settings_defaults(template):
    from pipeline.config import Settings

    parameters = template["Parameters"]
    assert int(parameters["HotDays"]["Default"]) == Settings().hot_days == 7
    assert int(parameters["RetentionDays"]["Default"]) == Settings().retention_days
    assert parameters["HotDays"]["Type"] == parameters["RetentionDays"]["Type"] == "Number"
    data_path = build_template(CODE, edge=False)["Parameters"]
    assert "OriginSecret" not in data_path  # no CloudFront, no origin secret
    assert set(data_path) == set(parameters) - {"OriginSecret"}
    chosen = build_template(CODE, settings=Settings(hot_days=14, retention_days=800))
    assert chosen["Parameters"]["HotDays"]["Default"] == "14"
    assert chosen["Parameters"]["RetentionDays"]["Default"] == "800"
    consumer = resource(template, "ConsumerFunction")["Environment"]["Variables"]
    assert consumer["PIPELINE_HOT_DAYS"] == {"Ref": "HotDays"}
    assert "PIPELINE_ARCHIVE_BUCKET" not in consumer  # it never touches S3
    for name in ("CompactorFunction", "StatsApiFunction"):
        env = resource(template, name)["Environment"]["Variables"]
        assert env["PIPELINE_ARCHIVE_BUCKET"] == {"Ref": "ArchiveBucket"}
        assert (env["PIPELINE_HOT_DAYS"], env["PIPELINE_RETENTION_DAYS"]) == (
            {"Ref": "HotDays"},
            {"Ref": "RetentionDays"},
        )


def test_archive_rights_are_limited_to_the_events_prefix(template):
    objects = "${ArchiveBucket.Arn}/" + archive.PREFIX + "*"
    assert _object_rights(template, "CompactorRole") == {
        (objects, "s3:GetObject"),
        (objects, "s3:PutObject"),
        (objects, "s3:DeleteObject"),
    }
    assert _object_rights(template, "StatsApiRole") == {(objects, "s3:GetObject")}
    assert _object_rights(template, "ConsumerRole") == set()
    for role in ("CompactorRole", "StatsApiRole"):
        (listing,) = [s for s in _statements(template, role) if "s3:ListBucket" in s["Action"]]
        assert listing["Condition"] == {"StringLike": {"s3:prefix": [archive.PREFIX + "*"]}}
    # athena-results/ and anything else in the bucket stay out of reach of both functions.
    text = json.dumps([_statements(template, r) for r in ("CompactorRole", "StatsApiRole")])
    assert "athena-results" not in text and '"s3:*"' not in text


def test_glue_table_projects_site_and_day_over_the_archives_files(template):
    table = resource(template, "GlueEventsTable")["TableInput"]
    assert resource(template, "GlueEventsTable")["DatabaseName"] == {"Ref": "GlueDatabase"}
    assert table["PartitionKeys"] == [
        {"Name": "site", "Type": "string"},
        {"Name": "day", "Type": "date"},
    ]
    params = table["Parameters"]
    assert params["projection.enabled"] == "true"
    assert params["projection.site.type"] == "injected"
    assert (params["projection.day.type"], params["projection.day.format"]) == (
        "date",
        "yyyy-MM-dd",
    )
    assert params["projection.day.range"].endswith(",NOW")
    # The template fills in the bucket; Athena fills in ${site} and ${day}. The result is the
    # folder of archive.object_key's file.
    location = params["storage.location.template"]["Fn::Sub"]
    filled = location.replace("${ArchiveBucket}", "bucket").replace("${!site}", "example.com")
    key = archive.object_key("example.com", date(2026, 3, 1))
    assert filled.replace("${!day}", "2026-03-01") == f"s3://bucket/{key.rsplit('/', 1)[0]}/"
    storage = table["StorageDescriptor"]
    assert storage["Location"] == {"Fn::Sub": "s3://${ArchiveBucket}/" + archive.PREFIX}
    assert storage["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    assert "Parquet" in storage["InputFormat"]


def test_glue_columns_are_the_files_columns_with_their_types(template, tmp_path):
    import pyarrow.parquet as pq

    columns = resource(template, "GlueEventsTable")["TableInput"]["StorageDescriptor"]["Columns"]
    written = tmp_path / "day.parquet"
    written.write_bytes(archive.table_bytes(archive.records_table([])))
    schema = pq.read_schema(written)  # what Athena reads: the file's own schema
    hive = {"timestamp[ms, tz=UTC]": "timestamp", "double": "double", "int64": "bigint", "string": "string"}  # fmt: skip
    # Every data column but `site` (the partition key, from the path), in the file's order.
    assert [(c["Name"], c["Type"]) for c in columns] == [
        (f.name, hive[str(f.type)]) for f in schema if f.name != "site"
    ]
    assert {"request_id", "ts", "visitor", "props"} <= {c["Name"] for c in columns}
    assert {c["Name"]: c["Type"] for c in columns}["props"] == "string"  # JSON text


def test_athena_workgroup_writes_encrypted_results_under_their_own_prefix(template):
    group = resource(template, "AthenaWorkGroup")
    config = group["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["ResultConfiguration"]["OutputLocation"] == {
        "Fn::Sub": "s3://${ArchiveBucket}/athena-results/"
    }
    assert config["ResultConfiguration"]["EncryptionConfiguration"] == {
        "EncryptionOption": "SSE_S3"
    }
    assert 0 < config["BytesScannedCutoffPerQuery"] <= 100 * 1024**3  # a runaway query is capped
    assert group["RecursiveDeleteOption"] is True
    assert "Trino" in json.dumps(config) or "engine version 3" in json.dumps(config)


def test_the_archive_is_in_the_outputs_and_the_data_path_stack(template):
    assert {"ArchiveBucket", "GlueDatabase", "GlueTable", "AthenaWorkGroup"} <= set(
        template["Outputs"]
    )
    data_path = build_template(CODE, edge=False)
    assert {"ArchiveBucket", "ArchiveBucketPolicy"} <= set(data_path["Resources"])
    assert "GlueEventsTable" not in data_path["Resources"]  # moto cannot deploy Glue or Athena
    assert "ArchiveBucket" in data_path["Outputs"] and "GlueTable" not in data_path["Outputs"]


def test_cfn_lint_catches_a_glue_table_without_its_storage(template):
    broken = copy.deepcopy(template)
    del broken["Resources"]["GlueEventsTable"]["Properties"]["DatabaseName"]
    assert any("DatabaseName" in error for error in lint_errors(broken))


# ---- issue 17: settings as stack parameters, alarms that reach someone -----------------------

# The spec's table (docs/deploy.md, "Settings"), written out here on purpose rather than read
# from infra/template.py: parameter → (the variable pipeline.config reads, who needs it).
SPEC_FUNCTIONS = {"consumer": "ConsumerFunction", "compactor": "CompactorFunction", "api": "StatsApiFunction"}  # fmt: skip
SPEC_PARAMETERS = {
    "RetentionDays": (config.ENV_RETENTION_DAYS, {"consumer", "compactor", "api"}),
    "HotDays": (config.ENV_HOT_DAYS, {"consumer", "compactor", "api"}),
    "RespectDnt": (config.ENV_RESPECT_DNT, {"consumer"}),
    "Shards": (config.ENV_SHARDS, {"consumer", "compactor", "api"}),
    "ReportSender": (config.ENV_REPORT_SENDER, {"compactor"}),
    "DashboardUrl": (config.ENV_DASHBOARD_URL, {"compactor"}),
}


@pytest.mark.parametrize("edge", [True, False], ids=["full", "data-path"])
def test_every_setting_reaches_every_function_that_needs_it_and_no_other(edge):
    template = build_template(CODE, edge=edge)
    assert set(SPEC_PARAMETERS) | {"AlarmEmail"} <= set(template["Parameters"])
    for parameter, (variable, users) in SPEC_PARAMETERS.items():
        for short, function in SPEC_FUNCTIONS.items():
            env = resource(template, function)["Environment"]["Variables"]
            if short in users:
                assert env.get(variable) == {"Ref": parameter}, (function, parameter)
            else:
                assert variable not in env, (function, parameter)


def test_the_functions_environment_read_back_is_the_settings_the_parameters_hold():
    """The text a parameter passes is what pipeline.config parses into the setting."""
    values = {
        "RetentionDays": "90",
        "HotDays": "14",
        "RespectDnt": "true",
        "Shards": "big.example=8,other.example=2",
        "ReportSender": "reports@example.com",
        "DashboardUrl": "https://analytics.example.com/",
    }
    template = build_template(CODE)
    env = {
        name: values[ref["Ref"]] if isinstance(ref, dict) and ref.get("Ref") in values else "x"
        for name, ref in resource(template, "CompactorFunction")["Environment"]["Variables"].items()
    } | {config.ENV_RESPECT_DNT: values["RespectDnt"]}
    found = config.env_settings(env)
    assert (found.retention_days, found.hot_days, found.respect_dnt) == (90, 14, True)
    assert found.shards == (("big.example", 8), ("other.example", 2))
    assert (found.report_sender, found.dashboard_url) == (
        "reports@example.com",
        "https://analytics.example.com/",
    )


def test_parameters_have_defaults_and_constraints_with_a_sentence(template):
    parameters = template["Parameters"]
    assert parameters["RespectDnt"]["AllowedValues"] == ["true", "false"]
    assert parameters["RespectDnt"]["Default"] == "false"
    for name in ("Shards", "AlarmEmail", "ReportSender", "DashboardUrl"):
        assert parameters[name]["Default"] == ""
        assert parameters[name]["AllowedPattern"]
    for name in ("HotDays", "RetentionDays", "RespectDnt", "Shards", "AlarmEmail", "ReportSender", "DashboardUrl"):  # fmt: skip
        assert parameters[name]["ConstraintDescription"], name
        assert parameters[name]["Description"], name
    assert parameters["HotDays"]["MaxValue"] == 365 and parameters["RetentionDays"]["MinValue"] == 1
    shell = build_template(
        CODE,
        settings=Settings(
            respect_dnt=True, shards=(("big.example", 8),), report_sender="r@example.com"
        ),
    )["Parameters"]
    assert (shell["RespectDnt"]["Default"], shell["Shards"]["Default"]) == ("true", "big.example=8")
    assert shell["ReportSender"]["Default"] == "r@example.com"
    assert lint_errors(build_template(CODE, settings=Settings(shards=(("big.example", 8),)))) == []


@pytest.mark.parametrize("edge", [True, False], ids=["full", "data-path"])
def test_the_alarm_topic_and_its_email_subscription_only_when_an_address_is_set(edge):
    template = build_template(CODE, edge=edge)
    topic = resource(template, "AlarmTopic")
    condition = template["Conditions"]["HasAlarmEmail"]
    assert condition == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    when, subscribed, otherwise = topic["Subscription"]["Fn::If"]
    assert when == "HasAlarmEmail" and otherwise == {"Ref": "AWS::NoValue"}
    assert subscribed == [{"Endpoint": {"Ref": "AlarmEmail"}, "Protocol": "email"}]
    assert template["Outputs"]["AlarmTopicArn"]["Value"] == {"Ref": "AlarmTopic"}


def test_every_alarm_notifies_the_topic_when_it_fires_and_when_it_clears(template):
    alarms = _alarms(template)
    assert len(alarms) >= 8
    names = [p["AlarmName"]["Fn::Sub"] for p in alarms.values()]
    assert len(set(names)) == len(names)
    for logical, properties in alarms.items():
        assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}], logical
        assert properties["OKActions"] == [{"Ref": "AlarmTopic"}], logical
        assert properties.get("ActionsEnabled", True) is True
        assert properties["AlarmName"]["Fn::Sub"].startswith("${AWS::StackName}-"), logical
        # What happened, then what to do: at least two sentences of plain words.
        description = properties["AlarmDescription"]
        assert description.count(". ") + description.count(": ") >= 2, logical
        assert len(description) <= 1024  # CloudWatch's limit


def test_the_compactor_alarms_on_errors_and_on_no_successful_run_in_an_hour(template):
    alarms = _alarms(template)
    errors = alarms["CompactorErrorsAlarm"]
    assert (errors["MetricName"], errors["Dimensions"]) == (
        "Errors",
        [{"Name": "FunctionName", "Value": {"Ref": "CompactorFunction"}}],
    )
    stalled = alarms["CompactorStalledAlarm"]
    queries = {m["Id"]: m for m in stalled["Metrics"]}
    (returned,) = [m for m in stalled["Metrics"] if m.get("ReturnData")]
    assert returned["Expression"] == "invocations - FILL(errors, 0)"
    for key, metric in (("invocations", "Invocations"), ("errors", "Errors")):
        stat = queries[key]["MetricStat"]
        assert stat["Metric"]["MetricName"] == metric and stat["Stat"] == "Sum"
        assert stat["Metric"]["Dimensions"][0]["Value"] == {"Ref": "CompactorFunction"}
        assert stat["Period"] * stalled["EvaluationPeriods"] == 3600
    assert (stalled["ComparisonOperator"], stalled["Threshold"]) == ("LessThanThreshold", 1)
    assert stalled["TreatMissingData"] == "breaching"  # no run at all is the worst case
    # An hour holds four scheduled runs: one failure does not make it stall.
    schedule = resource(template, "CompactorSchedule")["ScheduleExpression"]
    assert 3600 / (int(schedule.split("(")[1].split()[0]) * 60) >= 4


def test_consumer_lag_is_the_oldest_inbound_message_over_ten_minutes_for_several_periods(template):
    lag = _alarms(template)["ConsumerLagAlarm"]
    assert (lag["Namespace"], lag["MetricName"], lag["Statistic"]) == (
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        "Maximum",
    )
    assert lag["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["InboundQueue", "QueueName"]}
    assert lag["Threshold"] == 600 and lag["EvaluationPeriods"] >= 3
    assert "OldestMessageAlarm" not in template["Resources"]  # it became ConsumerLagAlarm


def test_alarms_are_in_the_full_stack_only_as_moto_cannot_create_them():
    assert _alarms(build_template(CODE, edge=False)) == {}
    assert "AlarmTopic" in build_template(CODE, edge=False)["Resources"]


def test_the_compactor_may_send_email_from_the_accounts_identities(template):
    (ses,) = [s for s in _statements(template, "CompactorRole") if "ses:SendEmail" in s["Action"]]
    assert sorted(ses["Action"]) == ["ses:SendEmail", "ses:SendRawEmail"]
    assert ses["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/*"
    }
    for role in ("ConsumerRole", "StatsApiRole"):
        assert "ses:" not in json.dumps(_statements(template, role))
