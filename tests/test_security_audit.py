"""The CI security audit: bandit and pip-audit findings fail unless accepted with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from security.audit import (
    Finding,
    bandit_findings,
    load_accepted,
    pip_audit_result,
    run_bandit,
    run_pip_audit,
    split_accepted,
)

RISKY = (
    "import subprocess\n\n\ndef run(command):\n    return subprocess.call(command, shell=True)\n"
)


def test_bandit_finds_a_shell_call_and_only_a_reasoned_entry_accepts_it(tmp_path: Path):
    risky = tmp_path / "risky.py"
    risky.write_text(RISKY)
    findings = bandit_findings(run_bandit([str(risky)]))
    assert "B602" in {f.rule for f in findings}  # subprocess with shell=True
    open_, _, _ = split_accepted(findings, {})
    assert {f.rule for f in open_} >= {"B602"}
    accepted = {
        "bandit": [{"test": f.rule, "paths": [f.path], "reason": "test"} for f in findings]
        + [{"test": "B999", "paths": ["gone.py"], "reason": "no longer found"}]
    }
    open_, taken, unused = split_accepted(findings, accepted)
    assert (open_, len(taken), [e["test"] for e in unused]) == ([], len(findings), ["B999"])


def test_our_code_has_no_unaccepted_bandit_finding_and_no_stale_entry():
    open_, _, unused = split_accepted(bandit_findings(run_bandit()), load_accepted())
    assert open_ == []
    assert [e for e in unused if "test" in e] == []


def test_a_dependency_that_could_not_be_looked_up_is_never_reported_clean(tmp_path: Path):
    # Jinja2 2.10 has published vulnerabilities (CVE-2019-10906 among them): it is either
    # reported with them or reported as unaudited, never silently as clean.
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("jinja2==2.10\n")
    result = pip_audit_result(run_pip_audit([str(requirements)]))
    assert result.unaudited == ["jinja2"] or any(f.package == "jinja2" for f in result.findings)
    assert result.audited + len(result.unaudited) == 1


def test_a_vulnerability_is_accepted_by_its_id_or_an_alias_for_its_package_only():
    finding = Finding(
        "pip-audit", "PYSEC-2019-217", "jinja2==2.10", "fixed in 2.10.1", ("CVE-2019-10906",)
    )
    entry = {"id": "CVE-2019-10906", "package": "Jinja2", "reason": "sandbox not used"}
    assert split_accepted([finding], {"pip-audit": [entry]})[0] == []
    other = {**entry, "package": "flask"}
    assert split_accepted([finding], {"pip-audit": [other]})[0] == [finding]


def test_an_accepted_entry_without_a_reason_is_refused(tmp_path: Path):
    path = tmp_path / "accepted.toml"
    path.write_text('[[bandit]]\ntest = "B101"\npaths = ["x.py"]\nreason = " "\n')
    with pytest.raises(ValueError, match="needs"):
        load_accepted(path)
