"""`python -m infra alarms`: which alarms are the stack's, and a pending subscription said so."""

from __future__ import annotations

from infra.alarms import Alarm, Report, Subscription, render, stack_alarms

TOPIC = "arn:aws:sns:us-east-1:123456789012:analytics-AlarmTopic-ABC"


def described(name: str, actions: list[str], state: str = "OK") -> dict:
    return {"AlarmName": name, "AlarmActions": actions, "OKActions": [], "StateValue": state}


def test_only_the_stacks_alarms_on_its_topic_are_listed_by_name():
    found = stack_alarms(
        [
            described("analytics-dlq-not-empty", [TOPIC], "ALARM"),
            described("analytics-consumer-lag", [TOPIC]),
            described("analytics-dev-consumer-lag", ["arn:aws:sns:us-east-1:1:analytics-dev-T"]),
            described("analytics-hand-made", []),
            described("other-dlq-not-empty", [TOPIC]),
        ],
        "analytics",
        TOPIC,
    )
    assert [(a.name, a.state) for a in found] == [
        ("analytics-consumer-lag", "OK"),
        ("analytics-dlq-not-empty", "ALARM"),
    ]


def test_a_pending_subscription_says_nothing_arrives_until_the_link_is_clicked():
    text = render(
        Report(
            stack="analytics",
            topic=TOPIC,
            alarms=(Alarm("analytics-compactor-stalled", "ALARM", "no datapoints", "…"),),
            subscriptions=(
                Subscription("email", "ops@example.com", pending=True),
                Subscription("email", "oncall@example.com", pending=False),
            ),
        )
    )
    lines = text.splitlines()
    assert lines[1].split() == ["ALARM", "analytics-compactor-stalled", "—", "no", "datapoints"]
    assert any(
        line.startswith("  email ops@example.com — pending confirmation")
        and '"Subscription Confirmation"' in line
        for line in lines
    )
    assert "  email oncall@example.com — confirmed" in lines


def test_nobody_notified_says_how_to_set_an_address():
    text = render(Report("analytics", TOPIC, (), ()))
    assert "--set AlarmEmail=you@example.com" in text
