"""SQL over the archive: DuckDB in a notebook, and the same SQL for Athena.

`query_sql(sql, site, first, last)` downloads the (site, UTC day) Parquet files of the archive
(`pipeline.store.archive`) into a temporary directory and runs `sql` in DuckDB with a view
`events` over them: one row per stored event, the archive's columns (`request_id`, then
`pipeline.COLUMNS`; `ts` a UTC timestamp, `props` JSON text). A file of an older schema reads
with the columns it lacks as NULL; a corrupt or truncated file is skipped with a logged reason;
the days without a readable file are listed in the result's `attrs["missing_days"]`.

`SIX_NUMBERS_SQL` and `breakdown_sql(dimension)` give what `pipeline.stats.metrics.summary`
and `metrics.breakdown` give for a visit dimension (Plausible's definitions, see
`pipeline.stats.metrics`), over every event of the view. They keep to the SQL that DuckDB and
Athena (Trino) both run: CTEs, joins, `lag` and a running `sum` window, `date_trunc`,
`date_diff`, `min_by`, `CAST`, `coalesce`; no DuckDB-only syntax (`::`, `QUALIFY`, `EXCLUDE`,
`epoch`), so the strings paste into Athena's editor with the table name changed
(docs/notebooks.md, "SQL: DuckDB and Athena").

One limit against metrics: a visit that crosses the UTC salt change joins the previous day's
hash (`prev_visitor`) one midnight deep. A visit that stays active through two midnights (over
24 hours without a 30-minute gap) counts as two here; metrics follows the chain.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from pipeline import aws
from pipeline.config import ENV_ARCHIVE_BUCKET, Settings
from pipeline.errors import MissingResource
from pipeline.stack import settings_from_env
from pipeline.store import archive

log = logging.getLogger("pipeline.stats.sql")

VIEW = "events"
# Visit dimensions a breakdown can name: each visit counts once, for its first event's value.
BREAKDOWN_DIMENSIONS = (
    "referrer_source", "referrer", "utm_source", "utm_medium", "utm_campaign", "utm_term",
    "utm_content", "country", "region", "city", "browser", "browser_version", "os",
    "os_version", "device", "screen",
)  # fmt: skip

# The visits, shared by both queries. Times are truncated to the second before any
# difference is taken (Plausible stores seconds; `date_diff` then agrees in both engines,
# which count sub-second remainders differently). A run is one hash's events without a gap
# over 30 minutes (engagement included: it keeps a visit alive); a hash's first run continues
# the last run of the previous day's hash of the same person (`prev_visitor`, the salt
# change) when the gap holds. A visit is a run, or two so joined, with at least one event
# that is not engagement; only those events are counted.
_VISITS = """\
WITH scoped AS (
    SELECT
        visitor,
        prev_visitor,
        name,
        ts,
        date_trunc('second', ts) AS sec,
        coalesce({dimension}, '') AS value,
        CASE WHEN name = 'engagement' THEN 0 ELSE 1 END AS core
    FROM events
),
hashes AS (
    SELECT DISTINCT visitor FROM scoped
),
links AS (
    SELECT s.visitor, max(s.prev_visitor) AS previous
    FROM scoped s
    JOIN hashes h ON h.visitor = s.prev_visitor
    GROUP BY s.visitor
),
stepped AS (
    SELECT s.*, lag(s.sec) OVER (PARTITION BY s.visitor ORDER BY s.ts) AS before
    FROM scoped s
),
numbered AS (
    SELECT
        t.*,
        sum(CASE WHEN t.before IS NULL OR date_diff('second', t.before, t.sec) > 1800
            THEN 1 ELSE 0 END)
            OVER (PARTITION BY t.visitor ORDER BY t.ts
                  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS run
    FROM stepped t
),
runs AS (
    SELECT visitor, run, min(sec) AS first_sec, max(sec) AS last_sec
    FROM numbered
    GROUP BY visitor, run
),
last_runs AS (
    SELECT r.visitor, r.run, r.last_sec
    FROM runs r
    JOIN (SELECT visitor, max(run) AS run FROM runs GROUP BY visitor) m
        ON m.visitor = r.visitor AND m.run = r.run
),
joined AS (
    SELECT
        r.visitor,
        r.run,
        CASE WHEN p.visitor IS NOT NULL AND r.run = 1
                  AND date_diff('second', p.last_sec, r.first_sec) <= 1800
            THEN p.visitor ELSE r.visitor END AS visit_hash,
        CASE WHEN p.visitor IS NOT NULL AND r.run = 1
                  AND date_diff('second', p.last_sec, r.first_sec) <= 1800
            THEN p.run ELSE r.run END AS visit_run
    FROM runs r
    LEFT JOIN links l ON l.visitor = r.visitor
    LEFT JOIN last_runs p ON p.visitor = l.previous
),
visit_events AS (
    SELECT n.visitor, n.name, n.ts, n.sec, n.value, j.visit_hash, j.visit_run
    FROM numbered n
    JOIN joined j ON j.visitor = n.visitor AND j.run = n.run
    WHERE n.core = 1
),
visits AS (
    SELECT
        visit_hash,
        visit_run,
        count(*) AS events,
        CAST(sum(CASE WHEN name = 'pageview' THEN 1 ELSE 0 END) AS BIGINT) AS pageviews,
        date_diff('second', min(sec), max(sec)) AS duration,
        min_by(value, ts) AS value
    FROM visit_events
    GROUP BY visit_hash, visit_run
)"""

_SUMMARY = """
SELECT
    (SELECT count(DISTINCT visitor) FROM scoped WHERE core = 1) AS visitors,
    count(*) AS visits,
    CAST(coalesce(sum(pageviews), 0) AS BIGINT) AS pageviews,
    coalesce(CAST(sum(pageviews) AS DOUBLE) / nullif(count(*), 0), 0) AS views_per_visit,
    coalesce(avg(CASE WHEN events = 1 THEN 1.0 ELSE 0.0 END), 0) AS bounce_rate,
    coalesce(avg(CAST(duration AS DOUBLE)), 0) AS visit_duration
FROM visits
"""

SIX_NUMBERS_SQL = _VISITS.replace("coalesce({dimension}, '')", "''") + _SUMMARY

_BREAKDOWN = """
, per_value AS (
    SELECT
        value,
        count(*) AS visits,
        CAST(sum(pageviews) AS BIGINT) AS pageviews,
        sum(CASE WHEN events = 1 THEN 1 ELSE 0 END) AS bounces,
        sum(duration) AS duration
    FROM visits
    GROUP BY value
),
value_visitors AS (
    SELECT v.value, count(DISTINCT e.visitor) AS visitors
    FROM visit_events e
    JOIN visits v ON v.visit_hash = e.visit_hash AND v.visit_run = e.visit_run
    GROUP BY v.value
)
SELECT
    p.value,
    u.visitors,
    p.visits,
    p.pageviews,
    CAST(p.bounces AS DOUBLE) / p.visits AS bounce_rate,
    CAST(p.duration AS DOUBLE) / p.visits AS visit_duration
FROM per_value p
JOIN value_visitors u ON u.value = p.value
ORDER BY u.visitors DESC, p.pageviews DESC, p.value
"""


def breakdown_sql(dimension: str = "referrer_source") -> str:
    """The SQL of `metrics.breakdown(events, dimension)` for a visit dimension: value,
    visitors, visits, pageviews, bounce_rate, visit_duration, most visitors first."""
    if dimension not in BREAKDOWN_DIMENSIONS:
        raise ValueError(
            f"No SQL breakdown by {dimension!r}: use one of {', '.join(BREAKDOWN_DIMENSIONS)}."
        )
    return _VISITS.replace("{dimension}", dimension) + _BREAKDOWN


BREAKDOWN_SQL = breakdown_sql("referrer_source")  # Plausible's "Sources"


# ---- DuckDB over downloaded days ----


def _days(first: date | str, last: date | str) -> list[date]:
    lo, hi = date.fromisoformat(str(first)), date.fromisoformat(str(last))
    return [lo + timedelta(days=n) for n in range((hi - lo).days + 1)]


def _download(s3: Any, settings: Settings, site: str, day: date, folder: Path) -> Path | None:
    """One day's file in `folder`, or None when that day has none (not archived yet: open,
    still in the hot window, or never backfilled)."""
    target = folder / f"{day.isoformat()}.parquet"
    try:
        # get_object, not download_file: its HeadObject answers a bare 404 for a missing
        # bucket and a missing key alike.
        body = s3.get_object(Bucket=settings.archive_bucket, Key=archive.object_key(site, day))
        with body["Body"] as stream, target.open("wb") as out:
            shutil.copyfileobj(stream, out)
    except ClientError as exc:
        if aws.error_code(exc) == "NoSuchBucket":
            raise MissingResource(
                f"The archive bucket {settings.archive_bucket!r} does not exist: set "
                f"{ENV_ARCHIVE_BUCKET} to the stack's bucket (python -m infra deploy makes it)."
            ) from exc
        if aws.error_code(exc) == "NoSuchKey":
            return None
        raise
    return target


def _readable(path: Path, day: date) -> bool:
    """Whether the file's footer and schema read: a truncated or corrupt file is skipped
    with its reason logged (DuckDB would fail the whole query on it)."""
    try:
        pq.read_schema(path)
        return True
    except (OSError, pa.ArrowException, ValueError) as exc:
        log.warning("archive file of %s skipped: %s", day, str(exc).splitlines()[0])
        return False


def _duckdb_type(kind: pa.DataType) -> str:
    if pa.types.is_timestamp(kind):
        return "TIMESTAMP WITH TIME ZONE"
    if pa.types.is_integer(kind):
        return "BIGINT"
    if pa.types.is_floating(kind):
        return "DOUBLE"
    return "VARCHAR"


def view_sql(present: set[str]) -> str:
    """The `events` view over the relation `files`: every archive column, NULL where the
    files (of an older schema) lack it."""
    selected = [
        name if name in present else f"CAST(NULL AS {_duckdb_type(kind)}) AS {name}"
        for name, kind in zip(archive.SCHEMA.names, archive.SCHEMA.types, strict=True)
    ]
    # Names and types from the archive's schema, never from input.
    return f"CREATE VIEW {VIEW} AS SELECT {', '.join(selected)} FROM files"  # noqa: S608


def run_sql(sql: str, files: list[Path]) -> pd.DataFrame:
    """`sql` in an in-memory DuckDB (UTC) with the view `events` over `files`."""
    import duckdb  # imported on use: only notebooks and tests need it

    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        if files:
            # union_by_name: a file of an older schema gives NULL for the columns it lacks.
            relation = con.read_parquet([str(path) for path in files], union_by_name=True)
            present = set(relation.columns)
        else:
            relation, present = con.sql("SELECT 1 AS none WHERE false"), set()
        relation.create_view("files")
        con.execute(view_sql(present))
        return con.execute(sql).df()


def query_sql(
    sql: str,
    site: str,
    first: date | str,
    last: date | str,
    *,
    settings: Settings | None = None,
    s3: Any = None,
) -> pd.DataFrame:
    """Run `sql` in DuckDB over `site`'s archived UTC days `first`..`last` (inclusive), as
    the view `events`; the result as a DataFrame, with the days that had no readable file in
    `attrs["missing_days"]` (open and hot days are in DynamoDB only: `load_events` reads them).
    """
    settings = settings or settings_from_env()
    s3 = s3 or aws.client("s3", settings)
    missing: list[date] = []
    with tempfile.TemporaryDirectory(prefix="pipeline-sql-") as folder:
        files = []
        with aws.explained(settings, f"Bucket {settings.archive_bucket!r}"):
            for day in _days(first, last):
                path = _download(s3, settings, site, day, Path(folder))
                if path is not None and _readable(path, day):
                    files.append(path)
                else:
                    missing.append(day)
        result = run_sql(sql, files)
    if missing:
        log.info("%s: no archived file for %d of the days", site, len(missing))
    result.attrs["missing_days"] = missing
    return result


def athena_sql(sql: str, table: str, site: str, first: date | str, last: date | str) -> str:
    """`sql` (one of this module's) for Athena: its `events` read from the Glue `table`
    ("database.table"), one site's partitions from `first` to `last` (the partition
    projection needs the site named)."""
    if not re.fullmatch(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)?", table):
        raise ValueError(f"{table!r} is not a Glue table name (database.table).")
    lo, hi = date.fromisoformat(str(first)), date.fromisoformat(str(last))
    quoted = site.replace("'", "''")
    scope = (
        f"FROM {table} WHERE site = '{quoted}' "
        f"AND day BETWEEN DATE '{lo.isoformat()}' AND DATE '{hi.isoformat()}'"
    )
    if sql.count(f"FROM {VIEW}\n") != 1:
        raise ValueError(f"Expected one 'FROM {VIEW}' to replace in the SQL.")
    return sql.replace(f"FROM {VIEW}\n", scope + "\n")
