"""Supply-chain and code checks: pip-audit on every pinned requirement, bandit on our code.

    python -m security.audit

A finding fails the run unless `security/accepted.toml` accepts it with a reason. pip-audit
reports a dependency it could not look up as skipped, and then says "No known
vulnerabilities found" all the same; here that is an unaudited dependency, reported as such
and never counted as clean. With `AUDIT_REQUIRE_SERVICE=1` an unaudited dependency fails the
run too (for CI machines that reach a vulnerability service; this project's own machines
don't).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ACCEPTED_FILE = ROOT / "security" / "accepted.toml"
# Everything pinned: the dev venv (constraints.txt is its full freeze) and both Lambda packages.
REQUIREMENTS = (
    "constraints.txt",
    "infra/lambda-requirements.txt",
    "infra/compactor-requirements.txt",
)
CODE = ("pipeline", "dashboard", "infra", "pages", "bench", "security", "streamlit_app.py")
ENV_REQUIRE_SERVICE = "AUDIT_REQUIRE_SERVICE"


@dataclass(frozen=True)
class Finding:
    tool: str
    rule: str  # bandit test id, or the vulnerability id
    where: str  # file:line, or package==version
    text: str
    aliases: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        return self.where.rsplit(":", 1)[0]

    @property
    def package(self) -> str:
        return self.where.split("==", 1)[0]


@dataclass(frozen=True)
class PipAuditResult:
    findings: list[Finding]
    audited: int
    unaudited: list[str]


def bandit_findings(report: Mapping[str, Any], root: Path = ROOT) -> list[Finding]:
    findings = []
    for result in report.get("results", []):
        path = Path(result["filename"])
        relative = path.resolve().relative_to(root) if path.resolve().is_relative_to(root) else path
        findings.append(
            Finding(
                tool="bandit",
                rule=result["test_id"],
                where=f"{relative.as_posix()}:{result['line_number']}",
                text=f"{result['issue_severity']}: {result['issue_text']}",
            )
        )
    return findings


def pip_audit_result(report: Mapping[str, Any]) -> PipAuditResult:
    findings, unaudited, audited = [], [], 0
    for dependency in report.get("dependencies", []):
        if "skip_reason" in dependency:
            unaudited.append(dependency["name"])
            continue
        audited += 1
        for vuln in dependency.get("vulns", []):
            fixed = ", ".join(vuln.get("fix_versions", [])) or "no fix yet"
            findings.append(
                Finding(
                    tool="pip-audit",
                    rule=vuln["id"],
                    where=f"{dependency['name']}=={dependency['version']}",
                    text=f"fixed in {fixed}",
                    aliases=tuple(vuln.get("aliases", [])),
                )
            )
    return PipAuditResult(findings, audited, unaudited)


def _accepts(entry: Mapping[str, Any], finding: Finding) -> bool:
    if finding.tool == "bandit":
        return entry["test"] == finding.rule and finding.path in entry["paths"]
    ids = {finding.rule, *finding.aliases}
    return entry["id"] in ids and entry["package"].lower() == finding.package.lower()


def split_accepted(
    findings: Iterable[Finding], accepted: Mapping[str, list[dict[str, Any]]]
) -> tuple[list[Finding], list[Finding], list[dict[str, Any]]]:
    """(unaccepted findings, accepted findings, accepted entries that matched nothing)."""
    entries = [(tool, e) for tool in ("bandit", "pip-audit") for e in accepted.get(tool, [])]
    open_, taken, used = [], [], set()
    for finding in findings:
        match = next(
            (
                i
                for i, (tool, e) in enumerate(entries)
                if tool == finding.tool and _accepts(e, finding)
            ),
            None,
        )
        if match is None:
            open_.append(finding)
        else:
            taken.append(finding)
            used.add(match)
    unused = [e for i, (_, e) in enumerate(entries) if i not in used]
    return open_, taken, unused


def load_accepted(path: Path = ACCEPTED_FILE) -> dict[str, list[dict[str, Any]]]:
    accepted = tomllib.loads(path.read_text())
    for tool, keys in (
        ("bandit", {"test", "paths", "reason"}),
        ("pip-audit", {"id", "package", "reason"}),
    ):
        for entry in accepted.get(tool, []):
            missing = keys - set(entry)
            if missing or not str(entry.get("reason", "")).strip():
                raise ValueError(f"{path}: a {tool} entry needs {sorted(keys)}: {entry}")
    return accepted


def _json_of(command: Sequence[str]) -> dict[str, Any]:
    # Both tools exit non-zero when they find something; the JSON says what, so read it first.
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"{command[0]} failed: {done.stderr.strip()[-2000:]}") from None


def run_bandit(paths: Sequence[str] = CODE) -> dict[str, Any]:
    bin_dir = Path(sys.executable).parent
    return _json_of([str(bin_dir / "bandit"), "-r", *paths, "-f", "json", "-q"])


def run_pip_audit(requirements: Sequence[str] = REQUIREMENTS) -> dict[str, Any]:
    bin_dir = Path(sys.executable).parent
    files = [arg for name in requirements for arg in ("-r", name)]
    return _json_of(
        [str(bin_dir / "pip-audit"), "--no-deps", "--disable-pip", *files, "-f", "json",
         "--progress-spinner", "off"]
    )  # fmt: skip


def report_lines(
    open_: list[Finding], taken: list[Finding], unused: list[dict[str, Any]], audit: PipAuditResult
) -> list[str]:
    total = audit.audited + len(audit.unaudited)
    lines = [f"pip-audit: {audit.audited} of {total} pinned packages audited"]
    if audit.unaudited:
        lines.append(
            f"  NOT AUDITED ({len(audit.unaudited)}): no vulnerability service answered for "
            f"{', '.join(sorted(audit.unaudited)[:8])}{' …' if len(audit.unaudited) > 8 else ''}"
        )
    lines += [f"  accepted: {f.tool} {f.rule} {f.where} ({f.text})" for f in taken]
    lines += [f"  stale entry in accepted.toml (matches nothing now): {e}" for e in unused]
    lines += [f"  FINDING: {f.tool} {f.rule} {f.where}: {f.text}" for f in open_]
    return lines


def main() -> int:
    accepted = load_accepted()
    audit = pip_audit_result(run_pip_audit())
    findings = [*audit.findings, *bandit_findings(run_bandit())]
    open_, taken, unused = split_accepted(findings, accepted)
    print("\n".join(report_lines(open_, taken, unused, audit)))
    required = os.environ.get(ENV_REQUIRE_SERVICE) == "1"
    if open_ or (required and audit.unaudited):
        print(f"security audit FAILED: {len(open_)} finding(s) not accepted", file=sys.stderr)
        return 1
    print(f"security audit passed: {len(taken)} accepted finding(s), none open")
    return 0


if __name__ == "__main__":
    sys.exit(main())
