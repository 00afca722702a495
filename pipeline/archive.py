"""`python -m pipeline.archive`: the columnar history (Parquet on S3).

    python -m pipeline.archive backfill SITE --since 2026-10-01 [--until 2026-10-31]
    python -m pipeline.archive list SITE [--since DATE] [--until DATE]

`backfill` writes the file of every UTC day of SITE in the range from its DynamoDB items (merged
with the file already there, so items that left the hot window are kept), e.g. for days stored
before the archive existed; it stops at yesterday (UTC), and a day whose site-local day is still
open is also left marked for the compactor. `list` prints the days that have a file. The code is
in `pipeline.store.compactor` and `pipeline.store.archive`; connection settings come from the
environment as everywhere (`PIPELINE_ARCHIVE_BUCKET` names the bucket).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime, timedelta

from pipeline.errors import PipelineError
from pipeline.stack import settings_from_env
from pipeline.store import archive
from pipeline.store.compactor import backfill


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.archive", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    fill = commands.add_parser("backfill", help="write the files of existing days")
    fill.add_argument("site")
    fill.add_argument("--since", type=_day, required=True, help="first UTC day (YYYY-MM-DD)")
    fill.add_argument("--until", type=_day, help="last UTC day (default and at most: yesterday)")
    listing = commands.add_parser("list", help="the days that have a file")
    listing.add_argument("site")
    listing.add_argument("--since", type=_day, default=date(2000, 1, 1))
    listing.add_argument("--until", type=_day)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = settings_from_env()
    today = datetime.now(UTC).date()
    try:
        if args.command == "backfill":
            if args.until and args.until < args.since:
                print("error: --until is before --since", file=sys.stderr)
                return 2
            written = backfill(settings, args.site, args.since, args.until)
            for entry in written:
                note = (
                    "  (site's day still open: the compactor rewrites it)" if entry.pending else ""
                )
                print(f"{entry.day}  {entry.events} events  {entry.bytes} bytes{note}")
            total = sum(entry.bytes for entry in written)
            print(
                f"wrote {len(written)} file(s), {total} bytes, to "
                f"s3://{settings.archive_bucket}/{archive.PREFIX}site={args.site}/"
            )
        else:
            last = args.until or today + timedelta(days=1)
            for day in sorted(archive.archived_days(settings, args.site, args.since, last)):
                print(day)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
