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
from pipeline.ingest import tracker
from pipeline.ingest.contract import PIXEL_GIF
from pipeline.store.compactor import SCHEDULE_MINUTES

INFRA = Path(__file__).parent
PIXEL_TEMPLATE = INFRA / "pixel_request.vtl"
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
# AWS managed CloudFront policies.
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
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


@dataclass(frozen=True)
class Code:
    """Where the functions' deployment packages are (uploaded by `infra.deploy`)."""

    bucket: str
    key: str  # the consumer's
    compactor_key: str


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
                "Environment": {
                    "Variables": {
                        "PIPELINE_EVENTS_TABLE": ref("EventsTable"),
                        "PIPELINE_SALTS_TABLE": ref("SaltsTable"),
                        "PIPELINE_SITES_TABLE": ref("SitesTable"),
                    }
                },
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
                "Environment": {
                    "Variables": {
                        "PIPELINE_EVENTS_TABLE": ref("EventsTable"),
                        "PIPELINE_SALTS_TABLE": ref("SaltsTable"),
                        "PIPELINE_SITES_TABLE": ref("SitesTable"),
                    }
                },
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
        "ApiStage": {
            "Type": "AWS::ApiGateway::Stage",
            "DependsOn": ["ApiGatewayAccount"],
            "Properties": {
                "RestApiId": ref("Api"),
                "DeploymentId": ref("ApiDeployment"),
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
                # No IP and no User-Agent in the access log either.
                "AccessLogSetting": {
                    "DestinationArn": arn("ApiAccessLogs"),
                    "Format": json.dumps(
                        {
                            "requestId": "$context.requestId",
                            "time": "$context.requestTime",
                            "path": "$context.resourcePath",
                            "status": "$context.status",
                            "integrationStatus": "$context.integration.status",
                            "latencyMs": "$context.responseLatency",
                        }
                    ),
                },
            },
        },
        "ApiKey": {
            "Type": "AWS::ApiGateway::ApiKey",
            "DependsOn": ["ApiStage"],
            "Properties": {"Enabled": True, "Value": ref("OriginSecret")},
        },
        "UsagePlan": {
            "Type": "AWS::ApiGateway::UsagePlan",
            "DependsOn": ["ApiStage"],
            "Properties": {
                "ApiStages": [{"ApiId": ref("Api"), "Stage": STAGE}],
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
        "AccessControlAllowMethods": {"Items": ["GET", "HEAD"]},
        "AccessControlAllowHeaders": {"Items": ["*"]},
        "AccessControlAllowCredentials": False,
        "OriginOverride": True,
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
                    "Origins": [origin],
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
                        }
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
    }


def build_template(code: Code, edge: bool = True) -> dict[str, Any]:
    """The stack's CloudFormation template for the consumer package at `code`.

    `edge=False` leaves out API Gateway, CloudFront and CloudWatch (the parts moto cannot
    deploy or run): the data path alone, for emulators.
    """
    edge_resources = {**_api(), **_cdn(), **_monitoring()} if edge else {}
    parameters = {
        "OriginSecret": {
            "Type": "String",
            "NoEcho": True,
            "MinLength": 20,
            "Description": "sent by CloudFront as x-api-key; requests without it are refused",
        }
    }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Privacy-first web analytics: pixel → SQS → Lambda → DynamoDB",
        "Parameters": parameters if edge else {},
        "Resources": {
            "EventsTable": _table(resources.EVENTS_KEY_SCHEMA),
            "SaltsTable": _table(resources.SALTS_KEY_SCHEMA),
            "SitesTable": _table(resources.SITES_KEY_SCHEMA),
            **_queues(),
            **_consumer(code),
            **_compactor(code),
            **edge_resources,
        },
        "Outputs": outputs(edge),
    }
