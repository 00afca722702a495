"""`--set Name=value`: names in any case, every value checked with one sentence, before AWS."""

from __future__ import annotations

import re

import pytest

from infra import settings
from infra.__main__ import main
from infra.template import Code, build_template
from pipeline.config import env_settings

CODE = Code(bucket="analytics-artifacts", key="consumer/a.zip", compactor_key="compactor/b.zip")
PARAMETERS = build_template(CODE)["Parameters"]


def allowed_by_the_template(name: str, value: str) -> bool:
    """Whether CloudFormation itself would take `value` for parameter `name`."""
    spec = PARAMETERS[name]
    if "AllowedValues" in spec and value not in spec["AllowedValues"]:
        return False
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
        return False
    if spec["Type"] == "Number":
        return spec.get("MinValue", -1e18) <= float(value) <= spec.get("MaxValue", 1e18)
    return True


def test_settable_names_are_the_template_parameters_but_the_origin_secret():
    assert set(settings.settable()) == set(PARAMETERS) - {"OriginSecret"}
    assert settings.no_echo() == {"OriginSecret"}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["RetentionDays=90"], {"RetentionDays": "90"}),
        (["retentiondays=090"], {"RetentionDays": "90"}),
        (["HOTDAYS=14", "respectdnt=TRUE"], {"HotDays": "14", "RespectDnt": "true"}),
        (["Shards=Big.Example=8, other.example=2"], {"Shards": "big.example=8,other.example=2"}),
        (["Shards="], {"Shards": ""}),
        (["AlarmEmail=Ops@Example.COM"], {"AlarmEmail": "Ops@example.com"}),
        (["ReportSender= reports@example.com "], {"ReportSender": "reports@example.com"}),
        (["AlarmEmail="], {"AlarmEmail": ""}),
        (
            ["DashboardUrl=https://analytics.example.com/dash/"],
            {"DashboardUrl": "https://analytics.example.com/dash/"},
        ),
    ],
)
def test_good_values_are_normalised_and_the_template_takes_them(given, expected):
    found = settings.parse_sets(given)
    assert found == expected
    for name, value in found.items():
        assert allowed_by_the_template(name, value), (name, value)


@pytest.mark.parametrize(
    ("given", "sentence"),
    [
        (["Retention=90"], "There is no setting 'Retention': the settings are HotDays, "),
        (["OriginSecret=abcdefghijklmnopqrstuvwxyz"], "There is no setting 'OriginSecret'"),
        (["RetentionDays"], "--set takes Name=value (e.g. --set RetentionDays=90), not "),
        (["RetentionDays=0"], "RetentionDays must be a whole number of days from 1 to 3650"),
        (["RetentionDays=ninety"], "RetentionDays must be a whole number of days"),
        (["HotDays=400"], "HotDays must be a whole number of days from 1 to 365, not '400'."),
        (["HotDays=-3"], "HotDays must be a whole number"),
        (["RespectDnt=maybe"], "RespectDnt must be true or false, not 'maybe'."),
        (["Shards=big.example"], "Shards must be site=n pairs separated by commas"),
        (["Shards=big.example=0"], "'big.example=0' is not one."),
        (["Shards=big.example=65"], "n from 1 to 64"),
        (["Shards=not a site=2"], "'not a site=2' is not one."),
        (["Shards=a.example=2,a.example=4"], "each site once"),
        (["AlarmEmail=ops"], "AlarmEmail must be an e-mail address or empty: 'ops' is not an"),
        (["ReportSender=a@b@c.example"], "ReportSender must be an e-mail address or empty"),
        (["DashboardUrl=http://analytics.example.com/"], "DashboardUrl must be an https:// "),
        (["DashboardUrl=https://"], "DashboardUrl must be an https:// "),
        (["DashboardUrl=https://a.example/?site=x"], "no query"),
        (["HotDays=7", "hotdays=8"], "HotDays is set twice: give each setting once."),
    ],
)
def test_bad_input_is_one_sentence(given, sentence):
    with pytest.raises(settings.SettingError) as raised:
        settings.parse_sets(given)
    message = str(raised.value)
    assert sentence in message
    assert message.endswith(".") and "\n" not in message and "Traceback" not in message


def test_the_unknown_name_sentence_lists_every_setting():
    with pytest.raises(settings.SettingError) as raised:
        settings.parse_sets(["Nope=1"])
    for name in settings.settable():
        assert name in str(raised.value)


def test_the_shell_settings_defaults_are_values_the_template_and_the_check_take():
    shell = env_settings(
        {
            "PIPELINE_SHARDS": "big.example=8",
            "PIPELINE_RESPECT_DNT": "true",
            "PIPELINE_REPORT_SENDER": "r@example.com",
            "PIPELINE_DASHBOARD_URL": "https://a.example/",
        }
    )
    defaults = build_template(CODE, settings=shell)["Parameters"]
    for name in settings.settable():
        value = defaults[name]["Default"]
        assert settings.check_value(name, value) == value
        assert allowed_by_the_template(name, value)


def test_a_sites_shards_only_go_up():
    settings.check_shards_not_lowered("a.example=4", "a.example=8,b.example=2")
    settings.check_shards_not_lowered("", "a.example=2")
    with pytest.raises(settings.SettingError, match=r"a\.example would go from 4 to 2"):
        settings.check_shards_not_lowered("a.example=4,b.example=2", "a.example=2,b.example=2")
    with pytest.raises(settings.SettingError, match=r"b\.example would go from 2 to 1"):
        settings.check_shards_not_lowered("b.example=2", "")


def test_changes_show_old_and_new_values_and_never_a_secret():
    lines = settings.changes(
        {"RetentionDays": "400", "AlarmEmail": "", "OriginSecret": "****", "HotDays": "7"},
        {"RetentionDays": "90", "AlarmEmail": "ops@example.com", "HotDays": "7", "Shards": ""},
    )
    assert lines == [
        "  RetentionDays: 400 → 90",
        "  AlarmEmail: (empty) → ops@example.com",
        "  Shards: (none) → (empty)",
    ]


def test_the_settings_listing_masks_no_echo_values():
    text = settings.render({"RetentionDays": "400", "OriginSecret": "s3cr3t-value", "Shards": ""})
    assert text.splitlines() == [
        "RetentionDays  400",
        "OriginSecret   ****",
        "Shards         (empty)",
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["deploy", "--set", "Retention=90"],
        ["diff", "--set", "HotDays=0"],
        ["deploy", "--set", "RetentionDays=90", "--set", "AlarmEmail=not-an-address"],
        ["settings", "--set", "RetentionDays=90"],
    ],
)
def test_the_cli_answers_bad_input_in_one_sentence_before_asking_aws(argv, capsys, monkeypatch):
    # An endpoint where nothing listens: any AWS call would fail with a different sentence.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    assert main(argv) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("error: ") and "127.0.0.1" not in line
    assert captured.out == ""
