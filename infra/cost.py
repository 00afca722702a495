"""`python -m infra cost`: the monthly bill of the stack that `python -m infra deploy` would deploy.

Every number of the stack's own comes from the generated template (`infra.template.build_template`),
read by the pure functions below: the consumer's BatchSize, MaximumBatchingWindowInSeconds,
MemorySize and Timeout, the compactor's MemorySize and schedule, the Stats API's MemorySize,
the access logs' retention, the alarms (and how many metrics each is billed for), dashboards,
the alarm topic's e-mail subscriptions, the HotDays/RetentionDays parameters' defaults and
bounds, and the APIs' throttling (the most events a month the stack can take). The prices and
the per-event usage model are `pipeline.ops.cost`'s, which takes these numbers as a `Shape`.

`--set Name=value` (deploy's option, checked by `infra.settings`) becomes the parameter's
default here, so the bill is the one of the stack `deploy --set ...` would make. A condition
(`Fn::If`, e.g. the alarm e-mail subscription when AlarmEmail is set) is priced as if it held.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from typing import Any

from infra import settings as stack_settings
from infra.template import Code, build_template
from pipeline.config import env_settings
from pipeline.errors import PipelineError
from pipeline.ops import cost

# Only the template's shape matters here, not where a package would be uploaded.
ESTIMATE_CODE = Code(bucket="cost-estimate", key="consumer.zip", compactor_key="compactor.zip")
# Far above any site this stack is for, below where the arithmetic stops meaning anything.
MOST = 10**12
RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
MINUTES = {"minute": 1, "hour": 60, "day": 1440}


class CostError(PipelineError):
    """The template or the arguments cannot be priced; one sentence."""


def count(most: int = MOST) -> Callable[[str], int]:
    """An argparse `type=`: a whole number from 0 to `most`."""

    def parse(text: str) -> int:
        try:
            value = int(text.replace("_", "").replace(",", ""))
        except ValueError:
            value = -1
        if not 0 <= value <= most:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 0 to {most:,}")
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `cost` command's options (infra/__main__.py's parser holds the other commands')."""
    group = parser.add_argument_group("cost")
    group.add_argument(
        "--events-per-month", type=count(), default=1_000_000, help="for cost (default 1,000,000)"
    )
    group.add_argument(
        "--api-requests-per-month",
        type=count(),
        default=10_000,
        help="Stats API requests, for cost (default 10,000: a dashboard tool polling hourly)",
    )
    group.add_argument(
        "--hot-days",
        type=count(),
        help="days raw events stay in DynamoDB, for cost (default: the HotDays parameter's, "
        "$PIPELINE_HOT_DAYS or 7)",
    )
    group.add_argument(
        "--retention-days",
        type=count(),
        help="days the archive keeps a day, for cost (default: the RetentionDays parameter's, "
        "$PIPELINE_RETENTION_DAYS or 400)",
    )
    group.add_argument(
        "--filtered-views",
        type=count(),
        default=cost.FILTERED_VIEWS,
        help=f"dashboard views with a filter a month, for cost (default {cost.FILTERED_VIEWS})",
    )
    group.add_argument(
        "--sites", type=count(100_000), default=1, help="sites with reports, for cost (default 1)"
    )
    group.add_argument(
        "--report-recipients",
        type=count(10_000),
        default=1,
        help="report and notification recipients per site, for cost (default 1)",
    )
    group.add_argument(
        "--notifications-per-month",
        type=count(31),  # at most one per site a day
        default=cost.NOTIFICATIONS_PER_MONTH,
        help="spike/drop notifications per site a month, for cost "
        f"(default {cost.NOTIFICATIONS_PER_MONTH}; at most 31)",
    )


# --- reading the template (pure functions of its dict) ---


def properties(template: dict[str, Any], name: str) -> dict[str, Any]:
    try:
        return template["Resources"][name]["Properties"]
    except KeyError:
        raise CostError(f"the template has no {name} to price") from None


def resolve(template: dict[str, Any], value: Any) -> Any:
    """A literal, or a `Ref` to a parameter: its default."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        parameter = template.get("Parameters", {}).get(value["Ref"], {})
        if "Default" not in parameter:
            raise CostError(f"{value['Ref']} has no default to price the stack with")
        return parameter["Default"]
    return value


def number(template: dict[str, Any], resource: str, key: str) -> float:
    value = resolve(template, properties(template, resource).get(key))
    try:
        return float(value)
    except (TypeError, ValueError):
        raise CostError(f"{resource}'s {key} is {value!r}, not a number") from None


def schedule_minutes(expression: str) -> float:
    """Minutes between runs of a `rate(...)` schedule expression."""
    found = RATE.fullmatch(expression.strip())
    if not found or int(found[1]) < 1:
        raise CostError(
            f"the compactor's schedule {expression!r} is not a rate(N minutes|hours|days)"
        )
    return int(found[1]) * MINUTES[found[2].removesuffix("s")]


def of_type(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [
        resource.get("Properties", {})
        for resource in template.get("Resources", {}).values()
        if resource.get("Type") == kind
    ]


def alarm_metrics(alarm: dict[str, Any]) -> tuple[int, int]:
    """(standard, high-resolution) metrics an alarm is billed for: one for a single-metric
    alarm, each metric of a metric-math expression, three for an anomaly-detection band."""
    if "Metrics" in alarm:
        queries = alarm["Metrics"]
        stats = [q["MetricStat"] for q in queries if "MetricStat" in q]
        bands = sum("ANOMALY_DETECTION_BAND" in str(q.get("Expression", "")) for q in queries)
        high = sum(1 for stat in stats if int(stat.get("Period", 60)) < 60)
        return len(stats) - high + 2 * bands, high
    if int(alarm.get("Period", 60)) < 60:
        return 0, 1
    return 1, 0


def when_set(value: Any) -> Any:
    """A conditional value (`Fn::If`) as it is when its condition holds: the estimate prices
    what a parameter such as AlarmEmail turns on."""
    if isinstance(value, dict) and "Fn::If" in value:
        return when_set(value["Fn::If"][1])
    return value


def email_subscriptions(template: dict[str, Any]) -> int:
    """E-mail subscriptions to SNS topics (inline on a topic or as resources)."""
    inline = [
        when_set(entry)
        for topic in of_type(template, "AWS::SNS::Topic")
        for entry in when_set(topic.get("Subscription", []))
    ]
    found = inline + of_type(template, "AWS::SNS::Subscription")
    return sum(1 for entry in found if entry.get("Protocol") in ("email", "email-json"))


def shape_of(template: dict[str, Any]) -> cost.Shape:
    """The numbers `pipeline.ops.cost` prices, as the template says them."""
    alarms = of_type(template, "AWS::CloudWatch::Alarm")
    metrics = [alarm_metrics(alarm) for alarm in alarms]
    schedule = properties(template, "CompactorSchedule").get("ScheduleExpression")
    source = "ConsumerEventSource"
    return cost.Shape(
        batch_size=int(number(template, source, "BatchSize")),
        batch_window_seconds=number(template, source, "MaximumBatchingWindowInSeconds"),
        consumer_memory_mb=int(number(template, "ConsumerFunction", "MemorySize")),
        consumer_timeout_seconds=int(number(template, "ConsumerFunction", "Timeout")),
        compactor_memory_mb=int(number(template, "CompactorFunction", "MemorySize")),
        compactor_every_minutes=schedule_minutes(str(resolve(template, schedule))),
        stats_api_memory_mb=int(number(template, "StatsApiFunction", "MemorySize")),
        log_retention_days=int(number(template, "ApiAccessLogs", "RetentionInDays")),
        alarms=len(alarms),
        alarm_metrics=sum(standard for standard, _ in metrics),
        high_resolution_alarm_metrics=sum(high for _, high in metrics),
        composite_alarms=len(of_type(template, "AWS::CloudWatch::CompositeAlarm")),
        dashboards=len(of_type(template, "AWS::CloudWatch::Dashboard")),
        alarm_subscriptions=email_subscriptions(template),
    )  # fmt: skip


def with_settings(template: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """The template with `--set` values (already checked) as its parameters' defaults: the
    stack `python -m infra deploy --set ...` would deploy."""
    parameters = {
        name: {**spec, "Default": values[name]} if name in values else spec
        for name, spec in template.get("Parameters", {}).items()
    }
    return {**template, "Parameters": parameters}


def parameter_days(template: dict[str, Any], name: str, asked: int | None) -> int:
    """`asked`, or the parameter's default, within the parameter's MinValue/MaxValue."""
    parameter = template.get("Parameters", {}).get(name)
    if parameter is None:
        raise CostError(f"the template has no {name} parameter")
    value = int(parameter["Default"]) if asked is None else asked
    low, high = parameter.get("MinValue"), parameter.get("MaxValue")
    if (low is not None and value < int(low)) or (high is not None and value > int(high)):
        bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise CostError(f"{name} must be {bounds} days (the stack's parameter), not {value}")
    return value


def most_requests_per_month(template: dict[str, Any]) -> float | None:
    """What the APIs' stage throttling lets through in a month (every stage's rate together),
    or None without a throttled stage (the data path alone)."""
    rates = [
        float(resolve(template, setting["ThrottlingRateLimit"]))
        for stage in of_type(template, "AWS::ApiGateway::Stage")
        for setting in stage.get("MethodSettings", [])
        if "ThrottlingRateLimit" in setting
    ]
    return sum(rates) * cost.MONTH_SECONDS if rates else None


def check_volume(template: dict[str, Any], events: int, api_requests: int) -> None:
    most = most_requests_per_month(template)
    if most is not None and events + api_requests > most:
        raise CostError(
            f"{events + api_requests:,} requests a month is more than the stack's APIs accept "
            f"(throttled at {most / cost.MONTH_SECONDS:,.0f} a second, {most:,.0f} a month)"
        )


def describe(shape: cost.Shape, hot_days: int, retention_days: int) -> str:
    """What was read from the template, in one line."""
    return (
        f"From the template: batches of {shape.batch_size} "
        f"(window {shape.batch_window_seconds:g} s), "
        f"consumer {shape.consumer_memory_mb} MB / {shape.consumer_timeout_seconds} s, "
        f"compactor {shape.compactor_memory_mb} MB every {shape.compactor_every_minutes:g} min, "
        f"Stats API {shape.stats_api_memory_mb} MB, logs kept {shape.log_retention_days} days, "
        f"{shape.alarms} alarms, {shape.dashboards} dashboard(s), "
        f"{shape.alarm_subscriptions} alarm e-mail subscription(s); "
        f"HotDays {hot_days}, RetentionDays {retention_days}."
    )


def report(args: argparse.Namespace, template: dict[str, Any]) -> str:
    """The whole printout for parsed `args` and a template (no I/O)."""
    shape = shape_of(template)
    problem = cost.shape_problem(shape)
    if problem:
        raise CostError(problem)
    hot_days = parameter_days(template, "HotDays", args.hot_days)
    retention_days = parameter_days(template, "RetentionDays", args.retention_days)
    check_volume(template, args.events_per_month, args.api_requests_per_month)
    usage = {"api_requests": args.api_requests_per_month, "filtered_views": args.filtered_views}
    reach = {
        "sites": args.sites,
        "recipients": args.report_recipients,
        "notifications": args.notifications_per_month,
    }
    lines = cost.monthly_cost(
        args.events_per_month,
        retention_days=retention_days,
        hot_days=hot_days,
        shape=shape,
        **usage,
        **reach,
    )
    rows = cost.comparison(
        hot_days=hot_days, retention_days=retention_days, shape=shape, **usage, **reach
    )
    return "\n\n".join(
        [
            describe(shape, hot_days, retention_days),
            cost.render(lines, args.events_per_month),
            cost.render_comparison(rows, hot_days),
        ]
    )


def command(args: argparse.Namespace) -> int:
    """`python -m infra cost`: print the bill; a bad argument is one sentence and exit 2."""
    try:
        # `--set HotDays=14` prices what `deploy --set HotDays=14` would deploy.
        values = stack_settings.parse_sets(getattr(args, "sets", None) or [])
        for name, option in (("HotDays", args.hot_days), ("RetentionDays", args.retention_days)):
            if name in values and option is not None:
                raise CostError(f"{name} is given twice (an option and --set): give it once")
        template = build_template(ESTIMATE_CODE, edge=True, settings=env_settings())
        print(report(args, with_settings(template, values)))
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
