"""`python -m infra alarms`: the stack's alarms, their state and why, and who they e-mail.

The stack's alarms are the CloudWatch alarms named `<stack>-...` whose actions go to the
stack's topic (AlarmTopic): a sibling stack `<stack>-dev` has its own topic, so its alarms are
not listed. An e-mail subscription stays "pending confirmation" until its owner clicks the
link in AWS's "Subscription Confirmation" e-mail; until then nothing reaches them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from infra.deploy import DeployError, Target, explain
from pipeline import aws

PENDING = "PendingConfirmation"  # SNS's SubscriptionArn for an unconfirmed subscription


@dataclass(frozen=True)
class Alarm:
    name: str
    state: str  # OK, ALARM or INSUFFICIENT_DATA
    reason: str
    description: str


@dataclass(frozen=True)
class Subscription:
    protocol: str
    endpoint: str
    pending: bool


@dataclass(frozen=True)
class Report:
    stack: str
    topic: str
    alarms: tuple[Alarm, ...]
    subscriptions: tuple[Subscription, ...]


def topic_arn(target: Target) -> str:
    """The stack's AlarmTopic ARN, from its resource list (moto leaves outputs empty after a
    change set, and its describe_stack_resource trips over the resources it cannot create)."""
    cfn = aws.client("cloudformation", target.settings)
    try:
        listed = cfn.describe_stack_resources(StackName=target.stack)["StackResources"]
    except ClientError as exc:
        if "does not exist" in exc.response.get("Error", {}).get("Message", ""):
            raise DeployError(
                f"Stack {target.stack!r} does not exist: deploy it with `python -m infra deploy`."
            ) from exc
        raise
    found = [
        r.get("PhysicalResourceId", "")
        for r in listed
        if r.get("LogicalResourceId") == "AlarmTopic"
    ]
    if not found or not found[0]:
        raise DeployError(
            f"Stack {target.stack!r} has no alarm topic yet: update it with "
            "`python -m infra deploy`."
        )
    return str(found[0])


def stack_alarms(described: list[dict[str, Any]], stack: str, topic: str) -> list[Alarm]:
    """The alarms of `stack` among `described` (describe_alarms' MetricAlarms), by name."""
    return sorted(
        (
            Alarm(
                name=a["AlarmName"],
                state=a.get("StateValue", "INSUFFICIENT_DATA"),
                reason=a.get("StateReason", ""),
                description=a.get("AlarmDescription", ""),
            )
            for a in described
            if a["AlarmName"].startswith(f"{stack}-")
            and topic in [*a.get("AlarmActions", []), *a.get("OKActions", [])]
        ),
        key=lambda alarm: alarm.name,
    )


def _pending(sns: Any, subscription: dict[str, Any]) -> bool:
    arn = subscription.get("SubscriptionArn", "")
    if arn == PENDING:
        return True
    try:
        attributes = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    except ClientError:
        return False  # deleted between the two calls: nothing to confirm
    return str(attributes.get("PendingConfirmation", "false")).lower() == "true"


def read(target: Target) -> Report:
    """The stack's alarms and its topic's subscriptions, from CloudWatch and SNS."""
    try:
        topic = topic_arn(target)
        cloudwatch = aws.client("cloudwatch", target.settings)
        described: list[dict[str, Any]] = []
        pages = cloudwatch.get_paginator("describe_alarms").paginate(
            AlarmNamePrefix=f"{target.stack}-", AlarmTypes=["MetricAlarm"]
        )
        for page in pages:
            described.extend(page.get("MetricAlarms", []))
        sns = aws.client("sns", target.settings)
        subscriptions = [
            Subscription(s.get("Protocol", ""), s.get("Endpoint", ""), _pending(sns, s))
            for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic)
            for s in page.get("Subscriptions", [])
        ]
    except (ClientError, BotoCoreError) as exc:
        raise explain(exc, target) from exc
    return Report(
        stack=target.stack,
        topic=topic,
        alarms=tuple(stack_alarms(described, target.stack, topic)),
        subscriptions=tuple(subscriptions),
    )


def render(report: Report) -> str:
    """The listing: one line per alarm (state, name, reason), then who is e-mailed."""
    lines = [f"Alarms of stack {report.stack!r} (topic {report.topic}):"]
    if not report.alarms:
        lines.append(
            "  none: a --data-path-only stack has no alarms (moto cannot create them); "
            "deploy the full stack for them"
        )
    width = max((len(a.name) for a in report.alarms), default=0)
    for alarm in report.alarms:
        reason = f" — {alarm.reason}" if alarm.reason else ""
        lines.append(f"  {alarm.state:<17} {alarm.name:<{width}}{reason}")
    lines.append("Notified (alarm and OK):")
    if not report.subscriptions:
        lines.append(
            "  nobody: python -m infra deploy --set AlarmEmail=you@example.com, then click the "
            'link in the "Subscription Confirmation" e-mail'
        )
    for subscription in report.subscriptions:
        status = (
            "pending confirmation: nothing is delivered until the link in AWS's \"Subscription "
            'Confirmation" e-mail is clicked'
            if subscription.pending
            else "confirmed"
        )
        lines.append(f"  {subscription.protocol} {subscription.endpoint} — {status}")
    return "\n".join(lines)
