"""`python -m pipeline.reports`: look at a site's e-mail report before anyone gets it.

    python -m pipeline.reports preview example.com --week [--out report.html] [--at 2026-11-27]
    python -m pipeline.reports preview example.com --month

Writes the HTML of the report the compactor would send at `--at` (default: now) for the
last complete week or month in the site's time zone, and prints where. It reads the
configured backend (`settings_from_env`: the stack, or `AWS_ENDPOINT_URL` for the local
emulator); nothing is sent. The code is in `pipeline.ops.reports`.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime, time
from pathlib import Path

from pipeline.enrich.sites import list_sites, normalize_domain
from pipeline.errors import InvalidSite, PipelineError
from pipeline.ops import reports
from pipeline.stack import settings_from_env


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.reports", description="Preview a site's e-mail report."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    preview = commands.add_parser("preview", help="write the report's HTML to a file")
    preview.add_argument("domain")
    which = preview.add_mutually_exclusive_group(required=True)
    which.add_argument("--week", action="store_true", help="the last complete week (Mon–Sun)")
    which.add_argument("--month", action="store_true", help="the last complete calendar month")
    preview.add_argument("--out", default="", help="the file (default: report-SITE-PERIOD.html)")
    preview.add_argument(
        "--at", default="", metavar="YYYY-MM-DD", help="as if sent on this day (default: today)"
    )
    return parser.parse_args(argv)


def _moment(text: str) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise PipelineError(f"{text!r} is not a date like 2026-11-27") from None
    return datetime.combine(day, time(12), UTC)


def preview(domain: str, kind: str, out: str = "", at: str = "") -> Path:
    """Write the HTML of `domain`'s report of `kind` (weekly|monthly); the file written."""
    settings = settings_from_env()
    site = normalize_domain(domain)
    found = {s.domain: s for s in list_sites(settings)}
    if site not in found:
        raise InvalidSite(f"{site} is not registered: python -m pipeline.sites add {site}")
    report = reports.build_report(settings, site, found[site].timezone, kind, _moment(at))
    unsubscribe = reports.unsubscribe_link(settings.dashboard_url, "preview-token")
    path = Path(out or f"report-{site}-{reports.period_key(kind, report.first)}.html")
    try:
        path.write_text(reports.render_html(report, unsubscribe), encoding="utf-8")
    except OSError as exc:
        raise PipelineError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        path = preview(args.domain, "weekly" if args.week else "monthly", args.out, args.at)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
