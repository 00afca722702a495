"""`python -m infra cost` reads the stack's numbers from the template, refuses nonsense, and
prices the alarms, the alarm e-mails, the reports and their reads (issue 17)."""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra import cost as cost_cli
from infra.template import build_template
from pipeline.ops import cost

ROOT = Path(__file__).resolve().parents[2]
BIG = 100_000_000


@pytest.fixture(scope="module")
def built() -> dict[str, Any]:
    return build_template(cost_cli.ESTIMATE_CODE, edge=True)


@pytest.fixture
def template(built: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(built)


def parser() -> argparse.ArgumentParser:
    found = argparse.ArgumentParser(prog="python -m infra")
    cost_cli.add_arguments(found)
    return found


def bill(template: dict[str, Any], events: int = BIG, **reach: int) -> dict[str, cost.Line]:
    lines = cost.monthly_cost(events, shape=cost_cli.shape_of(template), **reach)
    return {line.service: line for line in lines}


def dollars(template: dict[str, Any], service: str, events: int = BIG, **reach: int) -> float:
    return bill(template, events, **reach)[service].dollars


def props(template: dict[str, Any], name: str) -> dict[str, Any]:
    return template["Resources"][name]["Properties"]


def test_the_models_defaults_are_what_the_template_says(template):
    # The health page prices with the defaults: they must be the deployed stack's numbers.
    assert cost_cli.shape_of(template) == cost.Shape()


def test_the_consumers_memory_and_batching_change_the_lambda_line(template):
    shape = cost_cli.shape_of(template)
    fill = cost.batch_fill(BIG, shape)
    invocations = BIG / fill / 1e6 * cost.PRICE["lambda_per_million_invocations"]
    before = dollars(template, "Lambda (arm64)")
    props(template, "ConsumerFunction")["MemorySize"] = 2 * shape.consumer_memory_mb
    # Duration is billed per GB-second: twice the memory, twice that part; invocations alike.
    assert dollars(template, "Lambda (arm64)") - invocations == pytest.approx(
        2 * (before - invocations)
    )
    # A longer batching window fills batches at this volume: fewer invocations, lower bill.
    props(template, "ConsumerEventSource")["MaximumBatchingWindowInSeconds"] = 5
    wider = cost_cli.shape_of(template)
    assert cost.batch_fill(BIG, wider) == pytest.approx(min(5 * fill, shape.batch_size))
    assert dollars(template, "Lambda (arm64)") < before
    # A smaller BatchSize caps the batch where the window would have filled it.
    props(template, "ConsumerEventSource")["BatchSize"] = 10
    assert "batches of ~10," in bill(template)["Lambda (arm64)"].usage
    assert bill(template)["Lambda (arm64)"].usage.startswith(f"{BIG // 10:,} batches")


def test_the_compactor_schedule_memory_and_alarms_come_from_the_template(template):
    runs, alarms = dollars(template, "Compactor runs"), dollars(template, "CloudWatch alarms")
    props(template, "CompactorSchedule")["ScheduleExpression"] = "rate(1 hour)"
    assert cost_cli.shape_of(template).compactor_runs == 30 * 24
    props(template, "CompactorFunction")["MemorySize"] *= 2
    hourly = dollars(template, "Compactor runs")
    invocation = cost.PRICE["lambda_per_million_invocations"] / 1e6
    per_run = (runs / (30 * 24 * 4) - invocation) * 2 + invocation  # twice the GB-seconds
    assert hourly == pytest.approx(30 * 24 * per_run)
    # A metric-math alarm is billed for each metric it reads.
    extra = copy.deepcopy(template["Resources"]["ConsumerErrorsAlarm"])
    stat = {key: extra["Properties"].pop(key) for key in ("Namespace", "MetricName", "Dimensions")}
    stat = {"Metric": stat, "Stat": extra["Properties"].pop("Statistic"), "Period": 60}
    extra["Properties"].pop("Period", None)
    extra["Properties"]["Metrics"] = [
        {"Id": "a", "MetricStat": stat, "ReturnData": False},
        {"Id": "b", "MetricStat": stat, "ReturnData": False},
        {"Id": "c", "MetricStat": stat, "ReturnData": False},
        {"Id": "sum", "Expression": "a + b + c"},
    ]
    template["Resources"]["ExtraAlarm"] = extra
    price = cost.PRICE["cloudwatch_alarm_metric_month"]
    assert dollars(template, "CloudWatch alarms") == pytest.approx(alarms + 3 * price)
    del template["Resources"]["PipelineDashboard"]
    assert dollars(template, "CloudWatch dashboard") == 0


def test_log_retention_and_the_day_parameters_come_from_the_template(template):
    logs_gb = BIG * cost.ACCESS_LOG_BYTES / cost.GB
    ingest = logs_gb * cost.PRICE["cloudwatch_logs_per_gb_ingested"]
    kept = dollars(template, "CloudWatch Logs") - ingest
    props(template, "ApiAccessLogs")["RetentionInDays"] *= 2
    assert dollars(template, "CloudWatch Logs") - ingest == pytest.approx(2 * kept)
    template["Parameters"]["HotDays"]["Default"] = "20"
    template["Parameters"]["RetentionDays"]["Default"] = "90"
    printed = cost_cli.report(parser().parse_args([]), template)
    assert "(21 days)" in printed and "Parquet (90 days)" in printed
    assert "HotDays 20, RetentionDays 90" in printed
    # Given on the command line, they win over the defaults.
    printed = cost_cli.report(parser().parse_args(["--hot-days", "3"]), template)
    assert "(4 days)" in printed and "kept 3 days" in printed


def test_a_template_that_cannot_work_is_refused_with_a_sentence(template):
    props(template, "ConsumerFunction")["Timeout"] = 1
    props(template, "ConsumerEventSource")["BatchSize"] = 10_000
    with pytest.raises(cost_cli.CostError, match=r"longer than the consumer's timeout of 1 s"):
        cost_cli.report(parser().parse_args([]), template)
    props(template, "CompactorSchedule")["ScheduleExpression"] = "cron(0 * * * ? *)"
    with pytest.raises(cost_cli.CostError, match="is not a rate"):
        cost_cli.shape_of(template)


@pytest.mark.parametrize(
    "args, sentence",
    [
        pytest.param(["--events-per-month", "-5"], "'-5' is not a whole number from 0", id="negative"),
        pytest.param(["--events-per-month", "lots"], "'lots' is not a whole number", id="text"),
        pytest.param(["--report-recipients", "-1"], "'-1' is not a whole number", id="recipients"),
        pytest.param(["--notifications-per-month", "32"], "from 0 to 31", id="more-than-daily"),
        pytest.param(["--sites", "10000000"], "from 0 to 100,000", id="absurd-sites"),
    ],
)  # fmt: skip
def test_bad_arguments_are_one_sentence_and_exit_2(capsys, args, sentence):
    with pytest.raises(SystemExit) as exit_:
        parser().parse_args(["--hot-days", "7", *args])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert sentence in err[-1] and "Traceback" not in "\n".join(err)


@pytest.mark.parametrize(
    "args, sentence",
    [
        pytest.param(["--hot-days", "0"], "HotDays must be from 1 to 365 days", id="no-hot-window"),
        pytest.param(["--hot-days", "400"], "HotDays must be from 1 to 365 days", id="hot-window"),
        pytest.param(["--retention-days", "0"], "RetentionDays must be ", id="retention"),
        pytest.param(["--events-per-month", "6000000000"], "more than the stack's APIs accept", id="throttled"),
    ],
)  # fmt: skip
def test_values_the_stack_refuses_are_refused_by_the_command(capsys, args, sentence):
    assert cost_cli.command(parser().parse_args(args)) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: ") and sentence in err
    assert len(err.strip().splitlines()) == 1


def test_zero_events_cost_the_fixed_parts(capsys, template):
    assert cost_cli.command(parser().parse_args(["--events-per-month", "0"])) == 0
    assert "per million events" in capsys.readouterr().out
    none, some = bill(template, 0), bill(template, 1_000_000)
    fixed = [line for line in none.values() if line.fixed]
    assert fixed == [line for line in some.values() if line.fixed]
    assert sum(line.dollars for line in fixed) > 0
    for service in ("CloudFront", "API Gateway (REST)", "DynamoDB writes", "Lambda (arm64)"):
        assert none[service].dollars == 0
    assert all(line.dollars >= 0 for line in none.values())


def test_reports_alerts_and_alarm_mails_scale_with_recipients_and_sites(template):
    one = bill(template, sites=1, recipients=1)
    four = bill(template, sites=1, recipients=4)
    many = bill(template, sites=3, recipients=4)
    none = bill(template, sites=3, recipients=0)
    ses, reads = "SES (reports, alerts)", "DynamoDB report reads"
    assert one[ses].dollars > 0 and four[ses].dollars == pytest.approx(4 * one[ses].dollars)
    assert many[ses].dollars == pytest.approx(3 * four[ses].dollars)
    # A report is read once per site, whoever receives it: reads follow sites, not recipients.
    assert one[reads].dollars > 0 and four[reads].dollars == one[reads].dollars
    assert many[reads].dollars == pytest.approx(3 * one[reads].dollars)
    assert none[ses].dollars == 0 and none[reads].dollars == 0
    # A weekly report reads 14 days, a monthly ~60, the daily check 35 days each day.
    units = cost.report_read_units(1, 1)
    assert units >= cost.WEEKLY_REPORTS_PER_MONTH * cost.rollup_read_units(14) + 30 * 0.5
    # More notifications, more e-mails.
    busy = bill(template, sites=1, recipients=1, notifications=31)
    assert busy[ses].dollars > one[ses].dollars
    # The alarm topic's e-mails follow its subscriptions (the template's AlarmEmail one).
    sns = "SNS (alarm e-mails)"
    assert cost_cli.shape_of(template).alarm_subscriptions == 1
    assert f"{cost.ALARM_CHANGES_PER_MONTH:,} e-mails" in one[sns].usage
    props(template, "AlarmTopic").pop("Subscription")
    assert bill(template)[sns].usage.startswith("0 e-mails") and bill(template)[sns].dollars > 0


def test_the_command_prints_the_new_lines_and_what_it_read(capsys):
    args = parser().parse_args(["--sites", "2", "--report-recipients", "3"])
    assert cost_cli.command(args) == 0
    out = capsys.readouterr().out
    for service in ("CloudWatch alarms", "CloudWatch dashboard", "SNS (alarm e-mails)",
                    "SES (reports, alerts)", "DynamoDB report reads", "Compactor runs"):  # fmt: skip
        assert service in out
    assert "2 site(s) × 3" in out and "From the template: batches of" in out
    assert "before $/M" in out


def test_python_m_infra_cost_uses_these_options():
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "infra", "cost", *args],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    refused = run("--events-per-month", "-5")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "'-5' is not a whole number from 0" in refused.stderr.strip().splitlines()[-1]
    assert refused.stdout == ""
    printed = run("--report-recipients", "5")
    assert printed.returncode == 0, printed.stderr
    assert "1 site(s) × 5" in printed.stdout


def test_set_prices_what_deploy_would_deploy(capsys):
    from infra.__main__ import main

    assert main(["cost", "--set", "HotDays=20", "--set", "retentiondays=90"]) == 0
    out = capsys.readouterr().out
    assert "(21 days)" in out and "Parquet (90 days)" in out
    assert "HotDays 20, RetentionDays 90" in out
    # The same checks as deploy's, and one way to say each number.
    for args, sentence in [
        (["--set", "HotDays=0"], "HotDays must be a whole number of days from 1 to 365"),
        (["--set", "Colour=blue"], "There is no setting 'Colour'"),
        (["--set", "HotDays=20", "--hot-days", "3"], "HotDays is given twice"),
    ]:
        assert main(["cost", *args]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.startswith("error: ") and sentence in err, err
