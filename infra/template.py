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

from pipeline import config, resources
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
# Alarms: five-minute periods; the consumer lags when its oldest message is 10 minutes old for
# three periods running; the compactor stalls when no run succeeded in an hour.
ALARM_PERIOD_SECONDS = 300
CONSUMER_LAG_SECONDS = 600
CONSUMER_LAG_PERIODS = 3
COMPACTOR_STALLED_SECONDS = 3600
MAX_RETENTION_DAYS = 3650  # ten years; the S3 lifecycle itself has no limit
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


# The stack's settings (python -m infra deploy --set Name=value; docs/deploy.md, "Settings"):
# parameter → (environment variable, the functions that read it). AlarmEmail has no variable:
# it is the alarm topic's e-mail subscription.
PARAMETER_ENV: dict[str, tuple[str, tuple[str, ...]]] = {
    "RetentionDays": (config.ENV_RETENTION_DAYS, ("consumer", "compactor", "stats_api")),
    "HotDays": (config.ENV_HOT_DAYS, ("consumer", "compactor", "stats_api")),
    "RespectDnt": (config.ENV_RESPECT_DNT, ("consumer",)),
    # Every reader reads shards 0..n-1, so the compactor and the Stats API need it too.
    "Shards": (config.ENV_SHARDS, ("consumer", "compactor", "stats_api")),
    "ReportSender": (config.ENV_REPORT_SENDER, ("compactor",)),  # reports are sent by it
    "DashboardUrl": (config.ENV_DASHBOARD_URL, ("compactor",)),  # the links in reports
}
# Text, at most this many sites' shard counts (a parameter value is at most 4 KB).
MAX_SHARDS = 64  # 64 partitions take ~64,000 writes a second; every read queries them all
# Loose shapes for CloudFormation to refuse by itself; `python -m infra deploy --set` checks
# each value properly (infra/settings.py) before anything is sent.
SHARDS_PATTERN = r"^$|^[a-z0-9.-]+=[0-9]+(,[a-z0-9.-]+=[0-9]+)*$"
EMAIL_PATTERN = r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$"
HTTPS_PATTERN = r"^$|^https://[^\s/]+(/\S*)?$"


def _settings_env(function: str) -> dict[str, Any]:
    """The stack parameters `function` reads, as its environment (text, as Lambda's is)."""
    return {env: ref(name) for name, (env, users) in PARAMETER_ENV.items() if function in users}


def _tables_env() -> dict[str, Any]:
    return {
        "PIPELINE_EVENTS_TABLE": ref("EventsTable"),
        "PIPELINE_SALTS_TABLE": ref("SaltsTable"),
        "PIPELINE_SITES_TABLE": ref("SitesTable"),
    }


def _function_env(function: str) -> dict[str, Any]:
    """A function's environment: the tables, the archive for its readers, its settings."""
    archive_ = {"PIPELINE_ARCHIVE_BUCKET": ref("ArchiveBucket")} if function != "consumer" else {}
    return {**_tables_env(), **archive_, **_settings_env(function)}


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
                "Environment": {"Variables": _function_env("consumer")},
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
                # The daily refresh of the referrer-spam list, stored beside the sites, and the
                # reports' recipients and what was sent (`#report#` items, pipeline/ops/reports.py).
                "Effect": "Allow",
                "Action": [
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:Scan",
                    "dynamodb:BatchGetItem",
                ],
                "Resource": arn("SitesTable"),
            },
            {
                # E-mail reports and traffic notifications, from the account's verified
                # identities only (ReportSender must be one: docs/deploy.md).
                "Effect": "Allow",
                "Action": ["ses:SendEmail", "ses:SendRawEmail"],
                "Resource": sub(
                    "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/*"
                ),
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
                "Environment": {"Variables": _function_env("compactor")},
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
    """The stack's parameters (its settings). Defaults are `defaults`' (the deploying shell's
    PIPELINE_ values, or Settings()'s): a new stack starts with them; an update keeps what is
    deployed unless `python -m infra deploy --set Name=value` says otherwise."""
    defaults = defaults or Settings()
    found: dict[str, Any] = {
        "HotDays": {
            "Type": "Number",
            "Default": str(defaults.hot_days),  # parameter values are text, as env values
            "MinValue": 1,
            "MaxValue": 365,
            "ConstraintDescription": "a whole number of days from 1 to 365",
            "Description": "days raw events stay in DynamoDB; closed days are read from Parquet",
        },
        "RetentionDays": {
            "Type": "Number",
            "Default": str(defaults.retention_days),
            "MinValue": 1,
            "MaxValue": MAX_RETENTION_DAYS,
            "ConstraintDescription": f"a whole number of days from 1 to {MAX_RETENTION_DAYS}",
            "Description": "days the Parquet archive keeps a day (S3 lifecycle)",
        },
        "RespectDnt": {
            "Type": "String",
            "Default": "true" if defaults.respect_dnt else "false",
            "AllowedValues": ["true", "false"],
            "ConstraintDescription": "true or false",
            "Description": "true: drop hits whose browser sends DNT: 1 or Sec-GPC: 1",
        },
        "Shards": {
            "Type": "String",
            "Default": ",".join(f"{site}={n}" for site, n in defaults.shards),
            "AllowedPattern": SHARDS_PATTERN,
            "ConstraintDescription": "site=n pairs separated by commas, e.g. big.example=8",
            "Description": "write partitions per day for busy sites (only ever raise one)",
        },
        "AlarmEmail": {
            "Type": "String",
            "Default": "",
            "AllowedPattern": EMAIL_PATTERN,
            "ConstraintDescription": "an e-mail address like name@example.com, or empty",
            "Description": "who the alarms e-mail (confirm the subscription first); empty: nobody",
        },
        "ReportSender": {
            "Type": "String",
            "Default": defaults.report_sender,
            "AllowedPattern": EMAIL_PATTERN,
            "ConstraintDescription": "an e-mail address like name@example.com, or empty",
            "Description": "SES-verified sender of reports and notifications; empty: none sent",
        },
        "DashboardUrl": {
            "Type": "String",
            "Default": defaults.dashboard_url,
            "AllowedPattern": HTTPS_PATTERN,
            "ConstraintDescription": "an https:// URL, or empty",
            "Description": "where the dashboard is served: the base of the links in e-mails",
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


def conditions() -> dict[str, Any]:
    return {"HasAlarmEmail": {"Fn::Not": [{"Fn::Equals": [ref("AlarmEmail"), ""]}]}}


def _alarm_topic() -> dict[str, Any]:
    """Where every alarm goes (alarm and OK), and the e-mail subscription when AlarmEmail is set.

    The subscription is the topic's own `Subscription` property, not an AWS::SNS::Subscription:
    both are real CloudFormation, and moto deploys only this one, so the tests deploy the
    topic and its subscription for real. Not KMS-encrypted: CloudWatch cannot publish to a
    topic under the AWS-managed SNS key, and an alarm carries no personal data.
    """
    email = {"Endpoint": ref("AlarmEmail"), "Protocol": "email"}
    return {
        "AlarmTopic": {
            "Type": "AWS::SNS::Topic",
            "Properties": {
                "DisplayName": sub("${AWS::StackName} alarms"),
                "Subscription": {"Fn::If": ["HasAlarmEmail", [email], ref("AWS::NoValue")]},
            },
        }
    }


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
                "Environment": {"Variables": _function_env("stats_api")},
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
    name: str,
    description: str,
    metric: dict[str, Any],
    threshold: float,
    comparison: str = "GreaterThanThreshold",
    periods: int = 1,
    missing: str = "notBreaching",
) -> dict[str, Any]:
    """An alarm named `${AWS::StackName}-name` that e-mails the topic when it fires and when it
    clears. `metric` is either Namespace/MetricName/Dimensions/Statistic/Period or Metrics."""
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": sub(f"${{AWS::StackName}}-{name}"),
            "AlarmDescription": description,
            "ActionsEnabled": True,
            "AlarmActions": [ref("AlarmTopic")],
            "OKActions": [ref("AlarmTopic")],
            **metric,
            "EvaluationPeriods": periods,
            "Threshold": threshold,
            "ComparisonOperator": comparison,
            "TreatMissingData": missing,
        },
    }


def _metric(
    namespace: str,
    name: str,
    dimensions: list[dict[str, Any]],
    statistic: str = "Sum",
    period: int = ALARM_PERIOD_SECONDS,
) -> dict[str, Any]:
    return {
        "Namespace": namespace,
        "MetricName": name,
        "Dimensions": dimensions,
        "Statistic": statistic,
        "Period": period,
    }


def _successful_runs(function: str, period: int) -> dict[str, Any]:
    """Metric math: `function`'s invocations minus its errors (timeouts count as errors)."""

    def stat(key: str, name: str) -> dict[str, Any]:
        metric = {
            "Namespace": "AWS/Lambda",
            "MetricName": name,
            "Dimensions": [{"Name": "FunctionName", "Value": ref(function)}],
        }
        query = {"Metric": metric, "Period": period, "Stat": "Sum"}
        return {"Id": key, "MetricStat": query, "ReturnData": False}

    return {
        "Metrics": [
            stat("invocations", "Invocations"),
            stat("errors", "Errors"),
            {
                "Id": "successes",
                "Label": "successful runs",
                # No Errors datapoint is no error; no Invocations at all is missing data,
                # which this alarm treats as breaching.
                "Expression": "invocations - FILL(errors, 0)",
                "ReturnData": True,
            },
        ]
    }


def alarms(edge: bool) -> dict[str, Any]:
    """Every alarm, each with what happened and what to do in its description (docs/operations.md,
    "Alarms"). moto's CloudFormation cannot create AWS::CloudWatch::Alarm (it skips the type),
    so the alarms are in the full stack only; the data path carries their topic."""
    queue = [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["InboundQueue", "QueueName"]}}]
    dlq = [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}]

    def function(name: str) -> list[dict[str, Any]]:
        return [{"Name": "FunctionName", "Value": ref(name)}]

    def api(name: str) -> list[dict[str, Any]]:
        return [{"Name": "ApiName", "Value": sub(name)}, {"Name": "Stage", "Value": STAGE}]

    lag_minutes = CONSUMER_LAG_SECONDS // 60
    lag_for = CONSUMER_LAG_PERIODS * ALARM_PERIOD_SECONDS // 60
    data_path = {
        "DlqNotEmptyAlarm": _alarm(
            "dlq-not-empty",
            "Events failed to store three times and wait in the dead-letter queue (kept 14 days: "
            "nothing is lost yet). See why with `python -m pipeline.dlq inspect`, fix the cause, "
            "then `python -m pipeline.dlq redrive`.",
            _metric("AWS/SQS", "ApproximateNumberOfMessagesVisible", dlq, "Maximum"),
            0,
        ),
        "ConsumerLagAlarm": _alarm(
            "consumer-lag",
            f"Events have waited more than {lag_minutes} minutes in the inbound queue for "
            f"{lag_for} minutes: the consumer is failing or cannot keep up, and the dashboard is "
            "behind. Look at the consumer-errors alarm and the consumer's log; if it is only "
            "slow, raise Shards for the busy site or the event source's MaximumConcurrency.",
            _metric("AWS/SQS", "ApproximateAgeOfOldestMessage", queue, "Maximum"),
            CONSUMER_LAG_SECONDS,
            periods=CONSUMER_LAG_PERIODS,
        ),
        "ConsumerErrorsAlarm": _alarm(
            "consumer-errors",
            "The consumer Lambda failed (an exception or a timeout): its batch is retried and, "
            "after three failures, moved to the dead-letter queue. Read the consumer's log "
            "(/aws/lambda/<stack>-consumer) for the error.",
            _metric("AWS/Lambda", "Errors", function("ConsumerFunction")),
            0,
        ),
        "CompactorErrorsAlarm": _alarm(
            "compactor-errors",
            "A compactor run failed (an exception or a timeout): rollups, the Parquet archive "
            "and e-mail reports wait for the next run in 15 minutes. Read the compactor's log "
            "(/aws/lambda/<stack>-compactor); one failure that clears by itself needs nothing.",
            _metric(
                "AWS/Lambda",
                "Errors",
                function("CompactorFunction"),
                period=SCHEDULE_MINUTES * 60,
            ),
            0,
        ),
        "CompactorStalledAlarm": _alarm(
            "compactor-stalled",
            "No compactor run succeeded in the last hour (it is scheduled every 15 minutes): "
            "the dashboard's closed days, the archive and reports are going stale. Check that "
            "the schedule rule is enabled and read the compactor's log; redeploy if the "
            "function or its schedule is gone.",
            _successful_runs("CompactorFunction", COMPACTOR_STALLED_SECONDS),
            1,
            comparison="LessThanThreshold",
            missing="breaching",  # no invocation at all is the worst case
        ),
        "StatsApiErrorsAlarm": _alarm(
            "stats-api-errors",
            "The Stats API Lambda failed (an exception or a timeout): callers got a 5xx. Read "
            "its log (/aws/lambda/<stack>-stats-api).",
            _metric("AWS/Lambda", "Errors", function("StatsApiFunction")),
            0,
        ),
    }
    gateway = {
        "Api5xxAlarm": _alarm(
            "pixel-5xx",
            "The pixel's API Gateway answered 5xx: hits were lost (the pixel is never retried). "
            "Check the inbound queue exists and the gateway's role may send to it; the stage's "
            "access log shows when it started.",
            _metric("AWS/ApiGateway", "5XXError", api("${AWS::StackName}-pixel")),
            0,
        ),
        "JsonApi5xxAlarm": _alarm(
            "json-api-5xx",
            "The JSON API (events API and Stats API) answered 5xx: events were lost or Stats "
            "API calls failed. Look at the stats-api-errors alarm and the stage's access log.",
            _metric("AWS/ApiGateway", "5XXError", api("${AWS::StackName}-api")),
            0,
        ),
    }
    return {**data_path, **gateway} if edge else {}


def _monitoring() -> dict[str, Any]:
    widgets = [
        ("Pixel requests and errors", [["AWS/ApiGateway", "Count", "ApiName", "${AWS::StackName}-pixel", "Stage", STAGE], [".", "5XXError", ".", ".", ".", "."]]),
        ("Queue", [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "${InboundQueue.QueueName}"], [".", "ApproximateAgeOfOldestMessage", ".", "."], [".", "ApproximateNumberOfMessagesVisible", ".", "${DeadLetterQueue.QueueName}"]]),
        ("Consumer", [["AWS/Lambda", "Invocations", "FunctionName", "${ConsumerFunction}"], [".", "Errors", ".", "."], [".", "Duration", ".", "."]]),
        ("Compactor", [["AWS/Lambda", "Invocations", "FunctionName", "${CompactorFunction}"], [".", "Errors", ".", "."], [".", "Duration", ".", "."]]),
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
        **alarms(edge=True),
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
        "AlarmTopicArn": output(ref("AlarmTopic"), "SNS topic every alarm notifies"),
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
        "Conditions": conditions(),
        "Resources": {
            "EventsTable": _table(resources.EVENTS_KEY_SCHEMA),
            "SaltsTable": _table(resources.SALTS_KEY_SCHEMA),
            "SitesTable": _table(resources.SITES_KEY_SCHEMA),
            **_queues(),
            **_archive(),
            **_consumer(code),
            **_compactor(code),
            **_stats_api_function(code),
            **_alarm_topic(),
            **edge_resources,
        },
        "Outputs": outputs(edge),
    }
