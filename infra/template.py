"""The whole stack as one CloudFormation template, built from Python data.

`build_template(code)` returns a plain dict (serialised as JSON): declarative, diffable with
change sets, rolled back on failure. Values shared with the local emulator (queue retention,
redrive count, visibility timeout, TTL attribute) come from `pipeline.resources`.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import resources
from pipeline.config import Settings
from pipeline.ingest import tracker
from pipeline.ingest.contract import PIXEL_GIF
from pipeline.store import archive
from pipeline.store.compactor import SCHEDULE_MINUTES

INFRA = Path(__file__).parent
PIXEL_TEMPLATE = INFRA / "pixel_request.vtl"
# The event API's request template and body schema (the collector validates with the same file).
EVENT_TEMPLATE = INFRA / "event_request.vtl"
EVENT_SCHEMA = INFRA.parent / "pipeline" / "ingest" / "event_schema.json"
STATS_API_HANDLER = "pipeline.api.app.lambda_handler"
STATS_API_TIMEOUT_SECONDS = 29  # API Gateway's integration timeout
STATS_API_MEMORY_MB = 1024  # pandas; more memory is also more CPU for the 30-day queries
RUNTIME = "python3.13"
ARCHITECTURE = "arm64"
BATCH_SIZE = 100
BATCH_WINDOW_SECONDS = 1  # needed for batches over 10 (AWS_NOTES 13)
MAXIMUM_CONCURRENCY = 5
COMPACTOR_TIMEOUT_SECONDS = (
    300  # not reserved concurrency: that burns receive counts (AWS_NOTES 15)
)
STAGE = "v1"
THROTTLE_RATE = 1000
THROTTLE_BURST = 2000
LOG_RETENTION_DAYS = 14
# The Parquet archive (pipeline/store/archive.py): one file per (site, UTC day) under EVENTS_PREFIX.
EVENTS_PREFIX = archive.PREFIX
ATHENA_RESULTS_PREFIX = "athena-results/"
ATHENA_RESULTS_DAYS = 7  # query results are re-runnable: a week for downloads, then gone
# Athena bills $5 per TB scanned: one query may scan at most this much (a misplaced filter on
# a big site cannot cost more than ~$0.05).
ATHENA_BYTES_SCANNED_CUTOFF = 10 * 1024**3
GLUE_TABLE = "events"
# The first day partition projection knows; Athena skips days that have no file.
PROJECTION_FIRST_DAY = "2020-01-01"
# Glue (Hive) names of the Arrow types the archive's files use (archive.SCHEMA).
HIVE_TYPES = {"timestamp[ms, tz=UTC]": "timestamp", "double": "double", "int64": "bigint", "string": "string"}  # fmt: skip
# AWS managed CloudFront policies.
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
# CloudFront needs every method allowed to pass a POST (its only sets: GET/HEAD,
# GET/HEAD/OPTIONS, or all seven).
ALL_METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"]
# Plausible answers an accepted event 202 "ok"; a refused body 400 with a JSON `errors` object.
EVENT_ACCEPTED_BODY = "ok"
# API Gateway's validator cannot name the field as the collector does: one message for all.
EVENT_REFUSED_BODY = '{"errors":{"request":["is not a valid event body"]}}'
# Plausible's CORS (CORSPlug's defaults, as pipeline/ingest/collector.py answers them).
EVENT_CORS = {"Access-Control-Allow-Origin": "'*'"}
EVENT_PREFLIGHT = {
    **EVENT_CORS,
    "Access-Control-Allow-Methods": "'GET,POST,OPTIONS'",
    "Access-Control-Allow-Headers": "'Authorization,Content-Type,Accept,Origin,User-Agent,DNT,"
    "Cache-Control,X-Mx-ReqToken,Keep-Alive,X-Requested-With,If-Modified-Since,X-CSRF-Token'",
    "Access-Control-Max-Age": "'1728000'",
}
EVENT_HEADERS = {
    "Content-Type": "'text/plain; charset=utf-8'",
    "Cache-Control": "'no-cache, no-store, must-revalidate, max-age=0'",
    "X-Content-Type-Options": "'nosniff'",
    **EVENT_CORS,
}
FORWARDED_HEADERS = [
    "User-Agent",
    "Referer",
    "CloudFront-Viewer-Address",
    "CloudFront-Viewer-Country",
    "CloudFront-Viewer-Country-Region",
    "CloudFront-Viewer-City",
    "CloudFront-Viewer-Latitude",
    "CloudFront-Viewer-Longitude",
    "CloudFront-Viewer-Time-Zone",
    "DNT",
    "Sec-GPC",
]
PIXEL_HEADERS = {
    "Content-Type": "'image/gif'",
    "Cache-Control": "'no-cache, no-store, must-revalidate, max-age=0'",
    "Pragma": "'no-cache'",
    "Expires": "'0'",
    "Access-Control-Allow-Origin": "'*'",
    "X-Content-Type-Options": "'nosniff'",
}


# No IP, no User-Agent, no query string and no Authorization in the access logs: the resource
# path (/api/v1/{proxy+}, not the path asked for), status and timing only.
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "time": "$context.requestTime",
        "path": "$context.resourcePath",
        "status": "$context.status",
        "integrationStatus": "$context.integration.status",
        "latencyMs": "$context.responseLatency",
    }
)


@dataclass(frozen=True)
class Code:
    """Where the functions' deployment packages are (uploaded by `infra.deploy`)."""

    bucket: str
    key: str  # the consumer's
    compactor_key: str
    # The Stats API's; "" runs it from the compactor's package, which holds the same code.
    api_key: str = ""


def ref(name: str) -> dict[str, str]:
    return {"Ref": name}


def arn(name: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [name, "Arn"]}


def sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def assumable_by(service: str) -> dict[str, Any]:
    """A trust policy that lets `service` assume the role."""
    statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    return {"Version": "2012-10-17", "Statement": [statement]}


def _tables_env() -> dict[str, Any]:
    return {
        "PIPELINE_EVENTS_TABLE": ref("EventsTable"),
        "PIPELINE_SALTS_TABLE": ref("SaltsTable"),
        "PIPELINE_SITES_TABLE": ref("SitesTable"),
        # Raw items live HotDays (their TTL); the archive keeps RetentionDays.
        "PIPELINE_HOT_DAYS": ref("HotDays"),
        "PIPELINE_RETENTION_DAYS": ref("RetentionDays"),
    }


def _readers_env() -> dict[str, Any]:
    """The compactor's and the Stats API's: the tables plus the Parquet archive."""
    return {**_tables_env(), "PIPELINE_ARCHIVE_BUCKET": ref("ArchiveBucket")}


def _table(key_schema: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": "Delete",
        "Properties": {
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": key_schema,
            "AttributeDefinitions": [
                {"AttributeName": k["AttributeName"], "AttributeType": "S"} for k in key_schema
            ],
            "TimeToLiveSpecification": {"AttributeName": resources.TTL_ATTRIBUTE, "Enabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        },
    }


def _queues() -> dict[str, Any]:
    return {
        "DeadLetterQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {"MessageRetentionPeriod": resources.DLQ_RETENTION_SECONDS},
        },
        "InboundQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "MessageRetentionPeriod": resources.QUEUE_RETENTION_SECONDS,
                "VisibilityTimeout": resources.VISIBILITY_TIMEOUT_SECONDS,
                "RedrivePolicy": {
                    "deadLetterTargetArn": arn("DeadLetterQueue"),
                    "maxReceiveCount": resources.MAX_RECEIVE_COUNT,
                },
            },
        },
    }


def _consumer(code: Code) -> dict[str, Any]:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:ChangeMessageVisibility",
                ],
                "Resource": arn("InboundQueue"),
            },
            {
                "Effect": "Allow",
                "Action": ["dynamodb:BatchWriteItem", "dynamodb:PutItem"],
                "Resource": arn("EventsTable"),
            },
            {
                "Effect": "Allow",
                "Action": [
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:Scan",
                ],
                "Resource": arn("SaltsTable"),
            },
            {
                # Read only: sites are registered by their owners, never by a hit.
                "Effect": "Allow",
                "Action": ["dynamodb:GetItem", "dynamodb:BatchGetItem"],
                "Resource": arn("SitesTable"),
            },
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": arn("ConsumerLogGroup"),
            },
        ],
    }
    return {
        "ConsumerRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": assumable_by("lambda.amazonaws.com"),
                "Policies": [{"PolicyName": "consume-and-store", "PolicyDocument": policy}],
            },
        },
        "ConsumerLogGroup": {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {
                "LogGroupName": sub("/aws/lambda/${AWS::StackName}-consumer"),
                "RetentionInDays": LOG_RETENTION_DAYS,
            },
        },
        "ConsumerFunction": {
            "Type": "AWS::Lambda::Function",
            "DependsOn": ["ConsumerLogGroup"],
            "Properties": {
                "FunctionName": sub("${AWS::StackName}-consumer"),
                "Runtime": RUNTIME,
                "Architectures": [ARCHITECTURE],
                "Handler": "pipeline.consume.consumer.handler",
                "Code": {"S3Bucket": code.bucket, "S3Key": code.key},
                "Role": arn("ConsumerRole"),
                "Timeout": resources.LAMBDA_TIMEOUT_SECONDS,
                "MemorySize": 512,
                "Environment": {"Variables": _tables_env()},
            },
        },
        "ConsumerEventSource": {
            "Type": "AWS::Lambda::EventSourceMapping",
            "Properties": {
                "EventSourceArn": arn("InboundQueue"),
                "FunctionName": ref("ConsumerFunction"),
                "BatchSize": BATCH_SIZE,
                "MaximumBatchingWindowInSeconds": BATCH_WINDOW_SECONDS,
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
                "ScalingConfig": {"MaximumConcurrency": MAXIMUM_CONCURRENCY},
            },
        },
    }


def _compactor(code: Code) -> dict[str, Any]:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["dynamodb:Query", "dynamodb:BatchWriteItem", "dynamodb:DeleteItem"],
                "Resource": arn("EventsTable"),
            },
            {
                # The daily refresh of the referrer-spam list, stored beside the sites.
                "Effect": "Allow",
                "Action": ["dynamodb:GetItem", "dynamodb:PutItem"],
                "Resource": arn("SitesTable"),
            },
            *_archive_statements(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]),
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": arn("CompactorLogGroup"),
            },
        ],
    }
    return {
        "CompactorRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": assumable_by("lambda.amazonaws.com"),
                "Policies": [{"PolicyName": "roll-up-days", "PolicyDocument": policy}],
            },
        },
        "CompactorLogGroup": {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {
                "LogGroupName": sub("/aws/lambda/${AWS::StackName}-compactor"),
                "RetentionInDays": LOG_RETENTION_DAYS,
            },
        },
        "CompactorFunction": {
            "Type": "AWS::Lambda::Function",
            "DependsOn": ["CompactorLogGroup"],
            "Properties": {
                "FunctionName": sub("${AWS::StackName}-compactor"),
                "Runtime": RUNTIME,
                "Architectures": [ARCHITECTURE],
                "Handler": "pipeline.store.compactor.handler",
                "Code": {"S3Bucket": code.bucket, "S3Key": code.compactor_key},
                "Role": arn("CompactorRole"),
                "Timeout": COMPACTOR_TIMEOUT_SECONDS,
                "MemorySize": 1024,
                # One run at a time: two would only recompute the same days.
                "ReservedConcurrentExecutions": 1,
                "Environment": {"Variables": _readers_env()},
            },
        },
        "CompactorSchedule": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "ScheduleExpression": f"rate({SCHEDULE_MINUTES} minutes)",
                "State": "ENABLED",
                "Targets": [{"Id": "compactor", "Arn": arn("CompactorFunction")}],
            },
        },
        "CompactorSchedulePermission": {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "FunctionName": ref("CompactorFunction"),
                "Action": "lambda:InvokeFunction",
                "Principal": "events.amazonaws.com",
                "SourceArn": arn("CompactorSchedule"),
            },
        },
    }


def _archive_statements(object_actions: list[str]) -> list[dict[str, Any]]:
    """Object rights on the archive's `events/*` only, and listing limited to that prefix."""
    return [
        {
            "Effect": "Allow",
            "Action": object_actions,
            "Resource": sub(f"${{ArchiveBucket.Arn}}/{EVENTS_PREFIX}*"),
        },
        {
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": arn("ArchiveBucket"),
            "Condition": {"StringLike": {"s3:prefix": [f"{EVENTS_PREFIX}*"]}},
        },
    ]


def _archive() -> dict[str, Any]:
    """The Parquet history: private, encrypted, TLS only, expired by lifecycle rules.

    Retained when the stack is deleted (it is the only copy of closed days), and without
    versioning: a day's file is rewritten in place by late events, and old versions would be
    billed storage that nothing reads.
    """
    bucket = arn("ArchiveBucket")
    tls_only = {
        "Sid": "TlsOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket, sub("${ArchiveBucket.Arn}/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    return {
        "ArchiveBucket": {
            "Type": "AWS::S3::Bucket",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "BlockPublicPolicy": True,
                    "IgnorePublicAcls": True,
                    "RestrictPublicBuckets": True,
                },
                "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                    ]
                },
                "LifecycleConfiguration": {
                    "Rules": [
                        {
                            # Counted from a file's last write: a day is kept RetentionDays
                            # after its last late event, as the raw items were.
                            "Id": "events-retention",
                            "Status": "Enabled",
                            "Prefix": EVENTS_PREFIX,
                            "ExpirationInDays": ref("RetentionDays"),
                        },
                        {
                            "Id": "athena-results",
                            "Status": "Enabled",
                            "Prefix": ATHENA_RESULTS_PREFIX,
                            "ExpirationInDays": ATHENA_RESULTS_DAYS,
                        },
                        {
                            "Id": "abort-incomplete-uploads",
                            "Status": "Enabled",
                            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                        },
                    ]
                },
            },
        },
        "ArchiveBucketPolicy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": ref("ArchiveBucket"),
                "PolicyDocument": {"Version": "2012-10-17", "Statement": [tls_only]},
            },
        },
    }


def glue_columns() -> list[dict[str, str]]:
    """The archive's columns as Glue declares them, from the files' own schema (`props` is
    JSON text: json_extract_scalar). `site` is left out: it is the partition key (from the
    path), and Hive forbids a column and a partition key of the same name."""
    return [
        {"Name": field.name, "Type": HIVE_TYPES[str(field.type)]}
        for field in archive.SCHEMA
        if field.name != "site"
    ]


def _analytics() -> dict[str, Any]:
    """A Glue table over `events/` and an Athena workgroup (docs/deploy.md, "Athena").

    Partition projection: no crawler and no partitions to add. `site` is injected (every
    query names its site, `WHERE site = 'example.com'`), `day` is projected as a date from
    PROJECTION_FIRST_DAY to today.
    """
    location = f"s3://${{ArchiveBucket}}/{EVENTS_PREFIX}"
    return {
        "GlueDatabase": {
            "Type": "AWS::Glue::Database",
            "Properties": {
                "CatalogId": ref("AWS::AccountId"),
                # Glue names are lower case with underscores; a stack name has hyphens.
                "DatabaseInput": {
                    "Name": {"Fn::Join": ["_", {"Fn::Split": ["-", ref("AWS::StackName")]}]},
                    "Description": "Privacy-first web analytics: the Parquet event archive",
                },
            },
        },
        "GlueEventsTable": {
            "Type": "AWS::Glue::Table",
            "Properties": {
                "CatalogId": ref("AWS::AccountId"),
                "DatabaseName": ref("GlueDatabase"),
                "TableInput": {
                    "Name": GLUE_TABLE,
                    "TableType": "EXTERNAL_TABLE",
                    "PartitionKeys": [
                        {"Name": "site", "Type": "string"},
                        {"Name": "day", "Type": "date"},
                    ],
                    "Parameters": {
                        "classification": "parquet",
                        "EXTERNAL": "TRUE",
                        "projection.enabled": "true",
                        "projection.site.type": "injected",
                        "projection.day.type": "date",
                        "projection.day.format": "yyyy-MM-dd",
                        "projection.day.range": f"{PROJECTION_FIRST_DAY},NOW",
                        "projection.day.interval": "1",
                        "projection.day.interval.unit": "DAYS",
                        # ${!x} is a literal ${x} in Fn::Sub: Athena fills it in.
                        "storage.location.template": sub(
                            f"{location}site=${{!site}}/day=${{!day}}/"
                        ),
                    },
                    "StorageDescriptor": {
                        "Columns": glue_columns(),
                        "Location": sub(location),
                        "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                        "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                        "SerdeInfo": {
                            "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                        },
                    },
                },
            },
        },
        "AthenaWorkGroup": {
            "Type": "AWS::Athena::WorkGroup",
            "Properties": {
                "Name": sub("${AWS::StackName}-analytics"),
                "Description": "Queries over the event archive; results expire after a week",
                "RecursiveDeleteOption": True,
                "WorkGroupConfiguration": {
                    "EnforceWorkGroupConfiguration": True,
                    "BytesScannedCutoffPerQuery": ATHENA_BYTES_SCANNED_CUTOFF,
                    "EngineVersion": {"SelectedEngineVersion": "Athena engine version 3"},
                    "ResultConfiguration": {
                        "OutputLocation": sub(f"s3://${{ArchiveBucket}}/{ATHENA_RESULTS_PREFIX}"),
                        "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"},
                    },
                },
            },
        },
    }


def parameters(edge: bool, defaults: Settings | None = None) -> dict[str, Any]:
    """The stack's parameters; the day counts default to `defaults`' (the deploying settings,
    so `PIPELINE_HOT_DAYS=14 python -m infra deploy` keeps 14 across deploys)."""
    defaults = defaults or Settings()
    found: dict[str, Any] = {
        "HotDays": {
            "Type": "Number",
            "Default": str(defaults.hot_days),  # parameter values are text, as env values
            "MinValue": 1,
            "MaxValue": 365,
            "Description": "days raw events stay in DynamoDB; closed days are read from Parquet",
        },
        "RetentionDays": {
            "Type": "Number",
            "Default": str(defaults.retention_days),
            "MinValue": 1,
            "Description": "days the Parquet archive keeps a day (S3 lifecycle)",
        },
    }
    if edge:
        found["OriginSecret"] = {
            "Type": "String",
            "NoEcho": True,
            "MinLength": 20,
            "Description": "sent by CloudFront as x-api-key; requests without it are refused",
        }
    return found


def _stats_api_function(code: Code) -> dict[str, Any]:
    """The Stats API's Lambda: reads events and rollups, and may only count requests in the
    registry (UpdateItem on `#rate#` items), nothing else."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["dynamodb:Query", "dynamodb:GetItem"],
                "Resource": arn("EventsTable"),
            },
            {
                # Keys and sites (with their time zones) are read, never written.
                "Effect": "Allow",
                "Action": ["dynamodb:GetItem", "dynamodb:BatchGetItem"],
                "Resource": arn("SitesTable"),
            },
            {
                # The per-key rate counter, and only it (pipeline.api.keys.RATE_ITEM_PREFIX).
                "Effect": "Allow",
                "Action": ["dynamodb:UpdateItem"],
                "Resource": arn("SitesTable"),
                "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["#rate#*"]}},
            },
            # Closed days come from the Parquet archive (pipeline/store/query.py).
            *_archive_statements(["s3:GetObject"]),
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": arn("StatsApiLogGroup"),
            },
        ],
    }
    return {
        "StatsApiRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": assumable_by("lambda.amazonaws.com"),
                "Policies": [{"PolicyName": "read-stats", "PolicyDocument": policy}],
            },
        },
        "StatsApiLogGroup": {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {
                "LogGroupName": sub("/aws/lambda/${AWS::StackName}-stats-api"),
                "RetentionInDays": LOG_RETENTION_DAYS,
            },
        },
        "StatsApiFunction": {
            "Type": "AWS::Lambda::Function",
            "DependsOn": ["StatsApiLogGroup"],
            "Properties": {
                "FunctionName": sub("${AWS::StackName}-stats-api"),
                "Runtime": RUNTIME,
                "Architectures": [ARCHITECTURE],
                "Handler": STATS_API_HANDLER,
                "Code": {"S3Bucket": code.bucket, "S3Key": code.api_key or code.compactor_key},
                "Role": arn("StatsApiRole"),
                "Timeout": STATS_API_TIMEOUT_SECONDS,
                "MemorySize": STATS_API_MEMORY_MB,
                "Environment": {"Variables": _readers_env()},
            },
        },
    }


def _resource(name: str, parent: Any, path_part: str) -> dict[str, Any]:
    return {
        name: {
            "Type": "AWS::ApiGateway::Resource",
            "Properties": {"RestApiId": ref("JsonApi"), "ParentId": parent, "PathPart": path_part},
        }
    }


def _proxy_method(resource: str) -> dict[str, Any]:
    """Every method of `resource` to the Stats API Lambda (it answers 404 to what it lacks)."""
    return {
        "Type": "AWS::ApiGateway::Method",
        "Properties": {
            "RestApiId": ref("JsonApi"),
            "ResourceId": ref(resource),
            "HttpMethod": "ANY",
            "AuthorizationType": "NONE",  # the app checks the Bearer key itself
            "ApiKeyRequired": True,  # CloudFront's origin secret, as for the pixel
            "Integration": {
                "Type": "AWS_PROXY",
                "IntegrationHttpMethod": "POST",
                "Uri": sub(
                    "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"
                    "${StatsApiFunction.Arn}/invocations"
                ),
            },
        },
    }


def _event_method() -> dict[str, Any]:
    """POST /api/event → SQS, its body carried into the message by the template, unparsed.
    The request validator refuses a body that is not an event (the same JSON Schema the
    collector uses) with Plausible's 400 before anything is queued."""
    template = EVENT_TEMPLATE.read_text()
    integration = {
        "Type": "AWS",
        "IntegrationHttpMethod": "POST",
        "Uri": sub(
            "arn:aws:apigateway:${AWS::Region}:sqs:path/${AWS::AccountId}/${InboundQueue.QueueName}"
        ),
        "Credentials": arn("ApiSendRole"),
        # Any other Content-Type is refused (415): the tracker sends text/plain, fetch() JSON.
        "PassthroughBehavior": "NEVER",
        "RequestParameters": {
            "integration.request.header.Content-Type": "'application/x-www-form-urlencoded'"
        },
        "RequestTemplates": {"application/json": template, "text/plain": template},
        "IntegrationResponses": [
            {
                "StatusCode": "202",
                "ResponseTemplates": {"application/json": EVENT_ACCEPTED_BODY},
                "ResponseParameters": _response_parameters(EVENT_HEADERS),
            },
            {
                "StatusCode": "500",
                "SelectionPattern": "(4|5)\\d{2}",
                "ResponseTemplates": {"application/json": ""},
                "ResponseParameters": _response_parameters(EVENT_HEADERS),
            },
        ],
    }
    return {
        "Type": "AWS::ApiGateway::Method",
        "Properties": {
            "RestApiId": ref("JsonApi"),
            "ResourceId": ref("EventResource"),
            "HttpMethod": "POST",
            "AuthorizationType": "NONE",
            "ApiKeyRequired": True,
            "RequestValidatorId": ref("EventValidator"),
            "RequestModels": {
                "application/json": ref("EventModel"),
                "text/plain": ref("EventModel"),
            },
            "Integration": integration,
            "MethodResponses": [
                _method_response("202", EVENT_HEADERS),
                _method_response("500", EVENT_HEADERS),
            ],
        },
    }


def _event_preflight() -> dict[str, Any]:
    return {
        "Type": "AWS::ApiGateway::Method",
        "Properties": {
            "RestApiId": ref("JsonApi"),
            "ResourceId": ref("EventResource"),
            "HttpMethod": "OPTIONS",
            "AuthorizationType": "NONE",
            "ApiKeyRequired": True,
            "Integration": {
                "Type": "MOCK",
                "IntegrationHttpMethod": "OPTIONS",
                "PassthroughBehavior": "NEVER",
                "RequestTemplates": {"application/json": '{"statusCode": 204}'},
                "IntegrationResponses": [
                    {
                        "StatusCode": "204",
                        "ResponseParameters": _response_parameters(EVENT_PREFLIGHT),
                    }
                ],
            },
            "MethodResponses": [_method_response("204", EVENT_PREFLIGHT)],
        },
    }


def _stage(api: str, deployment: str) -> dict[str, Any]:
    """Stage `v1` of a REST API: throttled, with metrics and the shared access-log format."""
    return {
        "Type": "AWS::ApiGateway::Stage",
        "DependsOn": ["ApiGatewayAccount"],
        "Properties": {
            "RestApiId": ref(api),
            "DeploymentId": ref(deployment),
            "StageName": STAGE,
            "MethodSettings": [
                {
                    "ResourcePath": "/*",
                    "HttpMethod": "*",
                    "ThrottlingRateLimit": THROTTLE_RATE,
                    "ThrottlingBurstLimit": THROTTLE_BURST,
                    "MetricsEnabled": True,
                }
            ],
            "AccessLogSetting": {
                "DestinationArn": arn("ApiAccessLogs"),
                "Format": ACCESS_LOG_FORMAT,
            },
        },
    }


def _json_api() -> dict[str, Any]:
    """A second REST API for the JSON endpoints: the events API and the Stats API.

    Not the pixel's API: that one treats every body as binary (`*/*`, so the GIF goes out as
    bytes), which would hand the event template base64 instead of the body, and the Stats API
    Lambda base64 as well.
    """
    root = {"Fn::GetAtt": ["JsonApi", "RootResourceId"]}
    schema = json.loads(EVENT_SCHEMA.read_text())
    refused_headers = {
        f"gatewayresponse.header.{name}": value
        for name, value in {
            "Access-Control-Allow-Origin": "'*'",
            "Content-Type": "'application/json'",
        }.items()
    }
    return {
        "JsonApi": {
            "Type": "AWS::ApiGateway::RestApi",
            "Properties": {
                "Name": sub("${AWS::StackName}-api"),
                "EndpointConfiguration": {"Types": ["REGIONAL"]},
            },
        },
        **_resource("ApiPathResource", root, "api"),
        **_resource("EventResource", ref("ApiPathResource"), "event"),
        **_resource("StatsV1Resource", ref("ApiPathResource"), "v1"),
        **_resource("StatsV1ProxyResource", ref("StatsV1Resource"), "{proxy+}"),
        **_resource("StatsV2Resource", ref("ApiPathResource"), "v2"),
        **_resource("StatsV2QueryResource", ref("StatsV2Resource"), "query"),
        "EventModel": {
            "Type": "AWS::ApiGateway::Model",
            "Properties": {
                "RestApiId": ref("JsonApi"),
                "ContentType": "application/json",
                "Name": "PlausibleEvent",
                "Schema": schema,
            },
        },
        "EventValidator": {
            "Type": "AWS::ApiGateway::RequestValidator",
            "Properties": {
                "RestApiId": ref("JsonApi"),
                "ValidateRequestBody": True,
                "ValidateRequestParameters": False,
            },
        },
        # A body the validator refuses: Plausible's 400, with CORS so the page's fetch sees it.
        "EventRefusedResponse": {
            "Type": "AWS::ApiGateway::GatewayResponse",
            "Properties": {
                "RestApiId": ref("JsonApi"),
                "ResponseType": "BAD_REQUEST_BODY",
                "StatusCode": "400",
                "ResponseParameters": refused_headers,
                "ResponseTemplates": {"application/json": EVENT_REFUSED_BODY},
            },
        },
        "EventMethod": _event_method(),
        "EventPreflightMethod": _event_preflight(),
        "StatsV1Method": _proxy_method("StatsV1ProxyResource"),
        "StatsV2Method": _proxy_method("StatsV2QueryResource"),
        "StatsApiInvokePermission": {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "FunctionName": ref("StatsApiFunction"),
                "Action": "lambda:InvokeFunction",
                "Principal": "apigateway.amazonaws.com",
                "SourceArn": sub(
                    "arn:aws:execute-api:${AWS::Region}:${AWS::AccountId}:${JsonApi}/*/*/api/*"
                ),
            },
        },
        "JsonApiDeployment": {
            "Type": "AWS::ApiGateway::Deployment",
            "DependsOn": [
                "EventMethod",
                "EventPreflightMethod",
                "StatsV1Method",
                "StatsV2Method",
                "EventRefusedResponse",
            ],
            "Properties": {"RestApiId": ref("JsonApi")},
        },
        "JsonApiStage": _stage("JsonApi", "JsonApiDeployment"),
    }


def _response_parameters(headers: dict[str, str]) -> dict[str, str]:
    return {f"method.response.header.{name}": value for name, value in headers.items()}


def _method_response(status: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "StatusCode": status,
        "ResponseParameters": {f"method.response.header.{name}": True for name in headers},
    }


def _api() -> dict[str, Any]:
    gif = base64.b64encode(PIXEL_GIF).decode()
    script = base64.b64encode(tracker.minified()).decode()
    script_headers = {
        "Content-Type": "'application/javascript; charset=utf-8'",
        "Cache-Control": f"'{tracker.CACHE_CONTROL}'",
        "Access-Control-Allow-Origin": "'*'",
        "X-Content-Type-Options": "'nosniff'",
    }
    pixel_integration = {
        "Type": "AWS",
        "IntegrationHttpMethod": "POST",
        "Uri": sub(
            "arn:aws:apigateway:${AWS::Region}:sqs:path/${AWS::AccountId}/${InboundQueue.QueueName}"
        ),
        "Credentials": arn("ApiSendRole"),
        "PassthroughBehavior": "NEVER",
        "ContentHandling": "CONVERT_TO_TEXT",
        "RequestParameters": {
            "integration.request.header.Content-Type": "'application/x-www-form-urlencoded'"
        },
        # A GET has no Content-Type, and API Gateway then picks the application/json template.
        "RequestTemplates": {"application/json": PIXEL_TEMPLATE.read_text()},
        "IntegrationResponses": [
            {
                "StatusCode": "200",
                "ContentHandling": "CONVERT_TO_BINARY",
                "ResponseTemplates": {"application/json": gif},
                "ResponseParameters": _response_parameters(PIXEL_HEADERS),
            },
            # SQS refused the message: say so (and alarm), never a silent 200.
            {
                "StatusCode": "500",
                "SelectionPattern": "(4|5)\\d{2}",
                "ContentHandling": "CONVERT_TO_BINARY",
                "ResponseTemplates": {"application/json": gif},
                "ResponseParameters": _response_parameters(PIXEL_HEADERS),
            },
        ],
    }
    return {
        "Api": {
            "Type": "AWS::ApiGateway::RestApi",
            "Properties": {
                "Name": sub("${AWS::StackName}-pixel"),
                # An <img> sends Accept: image/avif,...; only */* makes API Gateway return binary.
                "BinaryMediaTypes": ["*/*"],
                "EndpointConfiguration": {"Types": ["REGIONAL"]},
            },
        },
        "ApiSendRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": assumable_by("apigateway.amazonaws.com"),
                "Policies": [
                    {
                        "PolicyName": "send-to-inbound-queue",
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": "sqs:SendMessage",
                                    "Resource": arn("InboundQueue"),
                                }
                            ],
                        },
                    }
                ],
            },
        },
        "PixelResource": {
            "Type": "AWS::ApiGateway::Resource",
            "Properties": {
                "RestApiId": ref("Api"),
                "ParentId": {"Fn::GetAtt": ["Api", "RootResourceId"]},
                "PathPart": "pixel",
            },
        },
        "PixelMethod": {
            "Type": "AWS::ApiGateway::Method",
            "Properties": {
                "RestApiId": ref("Api"),
                "ResourceId": ref("PixelResource"),
                "HttpMethod": "GET",
                "AuthorizationType": "NONE",
                # The key is CloudFront's secret origin header: calls that skip CloudFront get 403.
                "ApiKeyRequired": True,
                "Integration": pixel_integration,
                "MethodResponses": [
                    _method_response("200", PIXEL_HEADERS),
                    _method_response("500", PIXEL_HEADERS),
                ],
            },
        },
        "ScriptResource": {
            "Type": "AWS::ApiGateway::Resource",
            "Properties": {
                "RestApiId": ref("Api"),
                "ParentId": {"Fn::GetAtt": ["Api", "RootResourceId"]},
                "PathPart": "script.js",
            },
        },
        "ScriptMethod": {
            "Type": "AWS::ApiGateway::Method",
            "Properties": {
                "RestApiId": ref("Api"),
                "ResourceId": ref("ScriptResource"),
                "HttpMethod": "GET",
                "AuthorizationType": "NONE",
                "ApiKeyRequired": True,
                "Integration": {
                    "Type": "MOCK",
                    "IntegrationHttpMethod": "GET",  # optional for MOCK; moto's parser needs it
                    "PassthroughBehavior": "NEVER",
                    "RequestTemplates": {"application/json": '{"statusCode": 200}'},
                    "IntegrationResponses": [
                        {
                            "StatusCode": "200",
                            "ContentHandling": "CONVERT_TO_BINARY",
                            # Base64 so that no "$" or "#" in the script is read as VTL.
                            "ResponseTemplates": {"application/json": script},
                            "ResponseParameters": _response_parameters(script_headers),
                        }
                    ],
                },
                "MethodResponses": [_method_response("200", script_headers)],
            },
        },
        "ApiDeployment": {
            "Type": "AWS::ApiGateway::Deployment",
            "DependsOn": ["PixelMethod", "ScriptMethod"],
            "Properties": {"RestApiId": ref("Api")},
        },
        # Access logging needs the account's API Gateway → CloudWatch role (one per account
        # and region; kept when the stack goes, as other APIs may rely on it).
        "ApiGatewayLogsRole": {
            "Type": "AWS::IAM::Role",
            "DeletionPolicy": "Retain",
            "Properties": {
                "AssumeRolePolicyDocument": assumable_by("apigateway.amazonaws.com"),
                "ManagedPolicyArns": [
                    "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
                ],
            },
        },
        "ApiGatewayAccount": {
            "Type": "AWS::ApiGateway::Account",
            "DeletionPolicy": "Retain",
            "Properties": {"CloudWatchRoleArn": arn("ApiGatewayLogsRole")},
        },
        "ApiAccessLogs": {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {"RetentionInDays": LOG_RETENTION_DAYS},
        },
        "ApiStage": _stage("Api", "ApiDeployment"),
        "ApiKey": {
            "Type": "AWS::ApiGateway::ApiKey",
            "DependsOn": ["ApiStage"],
            "Properties": {"Enabled": True, "Value": ref("OriginSecret")},
        },
        "UsagePlan": {
            "Type": "AWS::ApiGateway::UsagePlan",
            "DependsOn": ["ApiStage", "JsonApiStage"],
            "Properties": {
                "ApiStages": [
                    {"ApiId": ref("Api"), "Stage": STAGE},
                    {"ApiId": ref("JsonApi"), "Stage": STAGE},
                ],
                "Throttle": {"RateLimit": THROTTLE_RATE, "BurstLimit": THROTTLE_BURST},
            },
        },
        "UsagePlanKey": {
            "Type": "AWS::ApiGateway::UsagePlanKey",
            "Properties": {
                "KeyId": ref("ApiKey"),
                "KeyType": "API_KEY",
                "UsagePlanId": ref("UsagePlan"),
            },
        },
    }


def _cdn() -> dict[str, Any]:
    security = {
        "ContentSecurityPolicy": {
            "ContentSecurityPolicy": "default-src 'none'; frame-ancestors 'none'",
            "Override": True,
        },
        "StrictTransportSecurity": {
            "AccessControlMaxAgeSec": 63072000,
            "IncludeSubdomains": True,
            "Preload": True,
            "Override": True,
        },
        "FrameOptions": {"FrameOption": "DENY", "Override": True},
        "ReferrerPolicy": {"ReferrerPolicy": "no-referrer", "Override": True},
        "ContentTypeOptions": {"Override": True},
    }
    cors = {
        "AccessControlAllowOrigins": {"Items": ["*"]},
        "AccessControlAllowMethods": {"Items": ["GET", "HEAD", "POST", "OPTIONS"]},
        "AccessControlAllowHeaders": {"Items": ["*"]},
        "AccessControlAllowCredentials": False,
        "OriginOverride": True,
    }
    json_origin = {
        "Id": "json-api",
        "DomainName": sub("${JsonApi}.execute-api.${AWS::Region}.amazonaws.com"),
        "OriginPath": f"/{STAGE}",
        "CustomOriginConfig": {
            "OriginProtocolPolicy": "https-only",
            "OriginSSLProtocols": ["TLSv1.2"],
        },
        "OriginCustomHeaders": [{"HeaderName": "x-api-key", "HeaderValue": ref("OriginSecret")}],
    }
    origin = {
        "Id": "api",
        "DomainName": sub("${Api}.execute-api.${AWS::Region}.amazonaws.com"),
        "OriginPath": f"/{STAGE}",
        "CustomOriginConfig": {
            "OriginProtocolPolicy": "https-only",
            "OriginSSLProtocols": ["TLSv1.2"],
        },
        "OriginCustomHeaders": [{"HeaderName": "x-api-key", "HeaderValue": ref("OriginSecret")}],
    }
    return {
        "PixelOriginRequestPolicy": {
            "Type": "AWS::CloudFront::OriginRequestPolicy",
            "Properties": {
                "OriginRequestPolicyConfig": {
                    "Name": sub("${AWS::StackName}-pixel"),
                    # Never Host: API Gateway answers 403 to a foreign Host.
                    "HeadersConfig": {"HeaderBehavior": "whitelist", "Headers": FORWARDED_HEADERS},
                    "QueryStringsConfig": {"QueryStringBehavior": "all"},
                    "CookiesConfig": {"CookieBehavior": "none"},
                }
            },
        },
        # The event API: the pixel's viewer headers plus Content-Type (it picks the template).
        "EventOriginRequestPolicy": {
            "Type": "AWS::CloudFront::OriginRequestPolicy",
            "Properties": {
                "OriginRequestPolicyConfig": {
                    "Name": sub("${AWS::StackName}-event"),
                    "HeadersConfig": {
                        "HeaderBehavior": "whitelist",
                        "Headers": [*FORWARDED_HEADERS, "Content-Type"],
                    },
                    "QueryStringsConfig": {"QueryStringBehavior": "none"},
                    "CookiesConfig": {"CookieBehavior": "none"},
                }
            },
        },
        # The Stats API: CloudFront forwards Authorization only if it is in the cache key, so
        # it is, with TTLs of 0 (the app answers Cache-Control: no-store): nothing is cached,
        # and no answer could ever be shared between keys.
        "StatsApiCachePolicy": {
            "Type": "AWS::CloudFront::CachePolicy",
            "Properties": {
                "CachePolicyConfig": {
                    "Name": sub("${AWS::StackName}-stats-api"),
                    "MinTTL": 0,
                    "DefaultTTL": 0,
                    "MaxTTL": 1,
                    "ParametersInCacheKeyAndForwardedToOrigin": {
                        "EnableAcceptEncodingGzip": False,
                        "HeadersConfig": {
                            "HeaderBehavior": "whitelist",
                            "Headers": ["Authorization"],
                        },
                        "QueryStringsConfig": {"QueryStringBehavior": "all"},
                        "CookiesConfig": {"CookieBehavior": "none"},
                    },
                }
            },
        },
        "StatsApiOriginRequestPolicy": {
            "Type": "AWS::CloudFront::OriginRequestPolicy",
            "Properties": {
                "OriginRequestPolicyConfig": {
                    "Name": sub("${AWS::StackName}-stats-api"),
                    # No viewer address, no User-Agent: the API needs neither.
                    "HeadersConfig": {"HeaderBehavior": "whitelist", "Headers": ["Content-Type"]},
                    "QueryStringsConfig": {"QueryStringBehavior": "all"},
                    "CookiesConfig": {"CookieBehavior": "none"},
                }
            },
        },
        # Security headers without CORS: a key belongs on a server, not in a page.
        "StatsApiHeadersPolicy": {
            "Type": "AWS::CloudFront::ResponseHeadersPolicy",
            "Properties": {
                "ResponseHeadersPolicyConfig": {
                    "Name": sub("${AWS::StackName}-stats-api-headers"),
                    "SecurityHeadersConfig": security,
                }
            },
        },
        "ResponseHeadersPolicy": {
            "Type": "AWS::CloudFront::ResponseHeadersPolicy",
            "Properties": {
                "ResponseHeadersPolicyConfig": {
                    "Name": sub("${AWS::StackName}-headers"),
                    "SecurityHeadersConfig": security,
                    "CorsConfig": cors,
                }
            },
        },
        "Distribution": {
            "Type": "AWS::CloudFront::Distribution",
            "Properties": {
                "DistributionConfig": {
                    "Enabled": True,
                    "HttpVersion": "http2and3",
                    "PriceClass": "PriceClass_100",
                    "Origins": [origin, json_origin],
                    "DefaultCacheBehavior": {
                        "TargetOriginId": "api",
                        "ViewerProtocolPolicy": "redirect-to-https",
                        "AllowedMethods": ["GET", "HEAD"],
                        "CachePolicyId": CACHING_DISABLED,
                        "OriginRequestPolicyId": ref("PixelOriginRequestPolicy"),
                        "ResponseHeadersPolicyId": ref("ResponseHeadersPolicy"),
                        "Compress": False,
                    },
                    "CacheBehaviors": [
                        {
                            "PathPattern": "/script.js",
                            "TargetOriginId": "api",
                            "ViewerProtocolPolicy": "redirect-to-https",
                            "AllowedMethods": ["GET", "HEAD"],
                            "CachePolicyId": CACHING_OPTIMIZED,
                            "ResponseHeadersPolicyId": ref("ResponseHeadersPolicy"),
                            "Compress": True,
                        },
                        {
                            "PathPattern": "/api/event",
                            "TargetOriginId": "json-api",
                            "ViewerProtocolPolicy": "redirect-to-https",
                            "AllowedMethods": ALL_METHODS,
                            "CachePolicyId": CACHING_DISABLED,
                            "OriginRequestPolicyId": ref("EventOriginRequestPolicy"),
                            "ResponseHeadersPolicyId": ref("ResponseHeadersPolicy"),
                            "Compress": False,
                        },
                        *(
                            {
                                "PathPattern": pattern,
                                "TargetOriginId": "json-api",
                                "ViewerProtocolPolicy": "https-only",  # a key never goes in clear
                                "AllowedMethods": ALL_METHODS,
                                "CachePolicyId": ref("StatsApiCachePolicy"),
                                "OriginRequestPolicyId": ref("StatsApiOriginRequestPolicy"),
                                "ResponseHeadersPolicyId": ref("StatsApiHeadersPolicy"),
                                "Compress": True,
                            }
                            for pattern in ("/api/v1/*", "/api/v2/*")
                        ),
                    ],
                }
            },
        },
    }


def _alarm(
    metric: str,
    namespace: str,
    dimensions: list[dict[str, Any]],
    threshold: float,
    statistic: str = "Sum",
) -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "Namespace": namespace,
            "MetricName": metric,
            "Dimensions": dimensions,
            "Statistic": statistic,
            "Period": 300,
            "EvaluationPeriods": 1,
            "Threshold": threshold,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
        },
    }


def _monitoring() -> dict[str, Any]:
    queue = [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["InboundQueue", "QueueName"]}}]
    dlq = [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}]
    api = [
        {"Name": "ApiName", "Value": sub("${AWS::StackName}-pixel")},
        {"Name": "Stage", "Value": STAGE},
    ]
    function = [{"Name": "FunctionName", "Value": ref("ConsumerFunction")}]
    widgets = [
        ("Pixel requests and errors", [["AWS/ApiGateway", "Count", "ApiName", "${AWS::StackName}-pixel", "Stage", STAGE], [".", "5XXError", ".", ".", ".", "."]]),
        ("Queue", [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "${InboundQueue.QueueName}"], [".", "ApproximateAgeOfOldestMessage", ".", "."], [".", "ApproximateNumberOfMessagesVisible", ".", "${DeadLetterQueue.QueueName}"]]),
        ("Consumer", [["AWS/Lambda", "Invocations", "FunctionName", "${ConsumerFunction}"], [".", "Errors", ".", "."], [".", "Duration", ".", "."]]),
        ("Writes", [["AWS/DynamoDB", "ConsumedWriteCapacityUnits", "TableName", "${EventsTable}"], [".", "ThrottledRequests", ".", ".", "Operation", "BatchWriteItem"]]),
    ]  # fmt: skip
    body = {
        "widgets": [
            {
                "type": "metric",
                "width": 12,
                "height": 6,
                "properties": {
                    "title": title,
                    "metrics": metrics,
                    "region": "${AWS::Region}",
                    "stat": "Sum",
                    "period": 60,
                },
            }
            for title, metrics in widgets
        ]
    }
    return {
        "DlqNotEmptyAlarm": _alarm(
            "ApproximateNumberOfMessagesVisible", "AWS/SQS", dlq, 0, "Maximum"
        ),
        "OldestMessageAlarm": _alarm(
            "ApproximateAgeOfOldestMessage", "AWS/SQS", queue, 600, "Maximum"
        ),
        "Api5xxAlarm": _alarm("5XXError", "AWS/ApiGateway", api, 0),
        "ConsumerErrorsAlarm": _alarm("Errors", "AWS/Lambda", function, 0),
        "StatsApiErrorsAlarm": _alarm(
            "Errors", "AWS/Lambda", [{"Name": "FunctionName", "Value": ref("StatsApiFunction")}], 0
        ),
        "JsonApi5xxAlarm": _alarm(
            "5XXError",
            "AWS/ApiGateway",
            [{"Name": "ApiName", "Value": sub("${AWS::StackName}-api")}, api[1]],
            0,
        ),
        "PipelineDashboard": {
            "Type": "AWS::CloudWatch::Dashboard",
            "Properties": {
                "DashboardName": sub("${AWS::StackName}-pipeline"),
                "DashboardBody": sub(json.dumps(body)),
            },
        },
    }


def outputs(edge: bool) -> dict[str, Any]:
    def output(value: Any, description: str) -> dict[str, Any]:
        return {"Value": value, "Description": description}

    urls = {
        "PixelUrl": output(sub("https://${Distribution.DomainName}/pixel"), "the tracking pixel"),
        "ScriptUrl": output(
            sub("https://${Distribution.DomainName}/script.js"), "the tracking script"
        ),
        "EventUrl": output(
            sub("https://${Distribution.DomainName}/api/event"),
            "Plausible's events API (the tracker's endpoint / data-api)",
        ),
        "StatsApiUrl": output(
            sub("https://${Distribution.DomainName}/api/v2/query"),
            "Plausible's Stats API (v2; v1 under /api/v1/stats/)",
        ),
    }
    analytics = {
        "GlueDatabase": output(ref("GlueDatabase"), "Glue database of the archive's table"),
        "GlueTable": output(GLUE_TABLE, "Glue table over events/ (partition projection)"),
        "AthenaWorkGroup": output(ref("AthenaWorkGroup"), "Athena workgroup for SQL queries"),
    }
    return {
        **(urls if edge else {}),
        "EventsTable": output(ref("EventsTable"), "DynamoDB table of events"),
        "SaltsTable": output(ref("SaltsTable"), "DynamoDB table of daily salts"),
        "SitesTable": output(ref("SitesTable"), "DynamoDB table of registered sites"),
        "QueueUrl": output(ref("InboundQueue"), "inbound SQS queue"),
        "DlqUrl": output(ref("DeadLetterQueue"), "dead-letter queue"),
        "QueueName": output({"Fn::GetAtt": ["InboundQueue", "QueueName"]}, "inbound queue name"),
        "DlqName": output(
            {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}, "dead-letter queue name"
        ),
        "ArchiveBucket": output(ref("ArchiveBucket"), "S3 bucket of the Parquet event archive"),
        **(analytics if edge else {}),
    }


def build_template(
    code: Code, edge: bool = True, settings: Settings | None = None
) -> dict[str, Any]:
    """The stack's CloudFormation template for the consumer package at `code`.

    `edge=False` leaves out API Gateway, CloudFront, CloudWatch, Glue and Athena (the parts
    moto cannot deploy or run): the data path and its archive bucket alone, for emulators.
    """
    edge_resources = (
        {**_api(), **_json_api(), **_cdn(), **_monitoring(), **_analytics()} if edge else {}
    )
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Privacy-first web analytics: pixel → SQS → Lambda → DynamoDB → S3",
        "Parameters": parameters(edge, settings),
        "Resources": {
            "EventsTable": _table(resources.EVENTS_KEY_SCHEMA),
            "SaltsTable": _table(resources.SALTS_KEY_SCHEMA),
            "SitesTable": _table(resources.SITES_KEY_SCHEMA),
            **_queues(),
            **_archive(),
            **_consumer(code),
            **_compactor(code),
            **_stats_api_function(code),
            **edge_resources,
        },
        "Outputs": outputs(edge),
    }
