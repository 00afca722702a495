"""The columnar history: one Parquet file per site and closed UTC day on S3.

Layout: `s3://<archive_bucket>/events/site=<site>/day=<YYYY-MM-DD>/events.parquet`, the same
unit as the DynamoDB partition `{site}#{day}`, so a day is archived from one Query and is read
from exactly one source. A file is written whole (zstd) and overwritten idempotently: the
same events give the same bytes (rows in a fixed order, no timestamps in the file). The
file's key-value metadata carries `pipeline.schema_version`; a file of an older version is
read with the columns it lacks as nulls, which the frame turns into "" and NaN, the same as
items stored before those columns existed.

Rows are in the frame's order, (ts, request_id), in row groups of ROW_GROUP_ROWS: a read
needs no sort, and a range that cuts a day (another time zone, the last hours) skips the row
groups outside it by their ts statistics. A page-sorted layout would let "pageviews of page X"
skip groups, but no dashboard view reads that: a filtered view needs whole visits, so it reads
every row's people first (pipeline/store/narrow.py), then every column of only theirs. The
people's columns lead the file, so that first read is one ranged GET per row group; the
request id, half a file's bytes (random text), comes last and is never read back. Parquet's
dictionary encoding makes a day's file ~23 bytes an event without it; reads keep the
few-valued columns dictionary-encoded into the frame's categoricals.

Pending markers (`pk = "archive-dirty"`, `sk = "{site}#{utc_day}"`) name UTC days whose file is
older than their items (a late event): readers take such a day from DynamoDB until the
compactor rewrites the file and clears the marker (conditionally, like its rollup markers).

pyarrow's datasets read the files through an S3 file system made of the pipeline's boto3
client (`filesystem`): only the footer and the column chunks asked for are fetched (ranged
GETs), the ts range and equality filters pushed down into the scan. boto3 rather than
pyarrow's native S3 client because it is the client (endpoint, credentials, retries) every
other call uses and it works under moto's in-process mock, which the compactor's tests use
(the native client would go to real AWS there); `native_filesystem` is there to compare.
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from botocore.exceptions import ClientError
from pyarrow import fs as pafs

from pipeline import aws
from pipeline.config import ENV_ARCHIVE_BUCKET, Settings
from pipeline.errors import MissingResource
from pipeline.store.storage import clear_mark, marker_item, markers

log = logging.getLogger("pipeline.store.archive")

SCHEMA_VERSION = "3"  # 1: before issue 14's prev_visitor/engagement_ms/scroll_depth; 2: page order
SCHEMA_VERSION_KEY = b"pipeline.schema_version"
PENDING_PK = "archive-dirty"
PREFIX = "events/"
FILE_NAME = "events.parquet"
ROW_GROUP_ROWS = 65_536
SORT_KEYS = ("ts", "request_id")
MAX_PARALLEL_READS = 8

# The frame's columns (`pipeline.load_events`), oldest first. They live here, below
# `pipeline.store.query`, because the file schema is built from them.
COLUMNS = (
    "ts",
    "site",
    "name",
    "hostname",
    "path",
    "url",
    "referrer_source",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "country",
    "region",
    "city",
    "lat",
    "lon",
    "browser",
    "browser_version",
    "os",
    "os_version",
    "device",
    "screen",
    "screen_width",
    "visitor",
    "props",
    # Issue 14. Items stored before it have none of these: "" and NaN.
    "prev_visitor",  # hash under the previous UTC day's salt, first 31 minutes of a day only
    "engagement_ms",  # engagement events only
    "scroll_depth",  # engagement events only, 0..100
)
# Few distinct values, many rows: categoricals cut the frame's memory several times over.
CATEGORICAL = (
    "site",
    "name",
    "hostname",
    "referrer_source",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "country",
    "region",
    "city",
    "browser",
    "browser_version",
    "os",
    "os_version",
    "device",
    "screen",
)
NUMERIC = ("lat", "lon", "screen_width", "engagement_ms", "scroll_depth")
_INTEGER = ("screen_width", "engagement_ms", "scroll_depth")
# Text columns, "" when absent, in pandas' string dtype (what `visitor` is read as), so the
# two hashes compare and join without conversion. `prev_visitor` is "" on all but the hits of
# a day's first 31 minutes: Arrow-backed strings store that as an offset, ~8 bytes a row (an
# object column of "" costs ~50 by pandas' deep count, a categorical would need its categories
# aligned with `visitor`'s mostly distinct hashes, what categoricals are worst at).
TEXT = ("prev_visitor",)
EMPTY_WHEN_ABSENT = frozenset(CATEGORICAL + TEXT)


def _field(name: str) -> pa.Field:
    if name == "ts":
        return pa.field(name, pa.timestamp("ms", tz="UTC"), nullable=False)
    if name in ("lat", "lon"):
        return pa.field(name, pa.float64())
    if name in _INTEGER:
        return pa.field(name, pa.int64())
    return pa.field(name, pa.string())


# The file's column order: what finds a filtered view's people first, side by side, so
# one ranged read of each row group fetches them (readers select columns by name).
PEOPLE_FIRST = ("ts", "visitor", "prev_visitor", "name", "path")
SCHEMA = pa.schema(
    [_field(c) for c in PEOPLE_FIRST]
    + [_field(c) for c in COLUMNS if c not in PEOPLE_FIRST]
    + [pa.field("request_id", pa.string(), nullable=False)],
    metadata={SCHEMA_VERSION_KEY: SCHEMA_VERSION.encode()},
)


# ---- keys and names ----


def object_key(site: str, day: date) -> str:
    return f"{PREFIX}site={site}/day={day.isoformat()}/{FILE_NAME}"


def _site_prefix(site: str) -> str:
    return f"{PREFIX}site={site}/day="


def _day_of_key(key: str, site: str) -> date | None:
    rest = key[len(_site_prefix(site)) :]
    day, _, name = rest.partition("/")
    try:
        return date.fromisoformat(day) if name == FILE_NAME else None
    except ValueError:
        return None


def _missing_bucket(settings: Settings, exc: Exception) -> MissingResource:
    return MissingResource(
        f"The archive bucket {settings.archive_bucket!r} does not exist at "
        f"{settings.endpoint_url or settings.region}: set {ENV_ARCHIVE_BUCKET} to the stack's "
        f"bucket (or deploy it: python -m infra deploy)."
    )


# ---- writing ----


def _props_text(value: Any) -> str:
    # JSON text, "{}" when none: SQL engines read it with their json functions.
    if not value:
        return "{}"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _column_values(name: str, records: list[dict[str, Any]]) -> list[Any]:
    """One column of `records` as the file stores it (a list per column, not a call per cell:
    this runs for every hot item a read returns)."""
    values = [record.get(name) for record in records]
    if name == "props":
        return [_props_text(value) for value in values]
    if name in NUMERIC:
        return [None if value == "" or value != value else value for value in values]  # NaN
    if name in EMPTY_WHEN_ABSENT or name == "request_id":
        # What the frame shows, so an equality filter on "" matches in the scan too.
        return ["" if value is None else value for value in values]
    return values


def records_table(records: list[dict[str, Any]]) -> pa.Table:
    """Stored events (as `storage.event_from_item` returns them, with `request_id`) as the
    archive's table, rows in SORT_KEYS order (the frame's: time, ties by request id)."""
    columns = {name: _column_values(name, records) for name in SCHEMA.names}
    table = pa.table(columns, schema=SCHEMA)
    return table.sort_by([(key, "ascending") for key in SORT_KEYS])


def table_bytes(table: pa.Table) -> bytes:
    """A table as the bytes of one Parquet file (zstd; the same table gives the same bytes)."""
    sink = io.BytesIO()
    pq.write_table(
        table.replace_schema_metadata(SCHEMA.metadata),
        sink,
        compression="zstd",
        row_group_size=ROW_GROUP_ROWS,
        write_statistics=True,
    )
    return sink.getvalue()


def write_day(
    settings: Settings, site: str, day: date, records: list[dict[str, Any]], s3: Any = None
) -> int:
    """Store one (site, UTC day)'s events as its file, replacing what was there; the bytes
    written. An empty day deletes the file (its items expired or were never there)."""
    s3 = s3 or aws.client("s3", settings)
    key = object_key(site, day)
    try:
        if not records:
            s3.delete_object(Bucket=settings.archive_bucket, Key=key)
            return 0
        body = table_bytes(records_table(records))
        s3.put_object(Bucket=settings.archive_bucket, Key=key, Body=body)
    except ClientError as exc:
        if aws.error_code(exc) == "NoSuchBucket":
            raise _missing_bucket(settings, exc) from exc
        raise
    return len(body)


# ---- listing ----


def archived_days(
    settings: Settings, site: str, first: date, last: date, s3: Any = None
) -> set[date]:
    """The days from `first` to `last` (inclusive) that have a file (one paged
    ListObjectsV2 over the site's prefix, starting at `first`)."""
    s3 = s3 or aws.client("s3", settings)
    prefix = _site_prefix(site)
    kwargs: dict[str, Any] = {
        "Bucket": settings.archive_bucket,
        "Prefix": prefix,
        "StartAfter": f"{prefix}{(first - timedelta(days=1)).isoformat()}/~",
    }
    found: set[date] = set()
    try:
        while True:
            page = s3.list_objects_v2(**kwargs)
            for entry in page.get("Contents", []):
                day = _day_of_key(entry["Key"], site)
                if day is not None and day > last:
                    return found
                if day is not None and day >= first:
                    found.add(day)
            if not page.get("IsTruncated"):
                return found
            kwargs["ContinuationToken"] = page["NextContinuationToken"]
    except ClientError as exc:
        if aws.error_code(exc) == "NoSuchBucket":
            raise _missing_bucket(settings, exc) from exc
        raise


# ---- pending markers ----


def mark_pending(dynamodb: Any, table: str, site: str, day: date, marked_at_ms: int) -> None:
    """Note that (site, UTC day)'s file is older than its items."""
    dynamodb.put_item(TableName=table, Item=marker_item(site, day, marked_at_ms, PENDING_PK))


def pending_marks(
    dynamodb: Any, table: str, site: str | None = None
) -> list[tuple[str, date, str]]:
    """(site, UTC day, marked_at) of every pending marker, or of one site's."""
    return markers(dynamodb, table, PENDING_PK, site)


def pending_days(dynamodb: Any, table: str, site: str) -> set[date]:
    """The UTC days of `site` whose file waits to be rewritten."""
    return {day for _, day, _ in pending_marks(dynamodb, table, site)}


def clear_pending(dynamodb: Any, table: str, site: str, day: date, marked_at: str) -> None:
    """Remove a marker unless a late event re-marked the day meanwhile (then the next
    compactor run rewrites the file again)."""
    clear_mark(dynamodb, table, PENDING_PK, site, day, marked_at)


# ---- reading ----


class _RangeReader(io.RawIOBase):
    """A read-only, seekable S3 object: each read is one ranged GetObject."""

    def __init__(self, s3: Any, bucket: str, key: str, size: int) -> None:
        self._s3, self._bucket, self._key, self._size, self._at = s3, bucket, key, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._at

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: self._size}[whence]
        self._at = max(0, base + offset)
        return self._at

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        end = self._size if size is None or size < 0 else min(self._size, self._at + size)
        if end <= self._at:
            return b""
        body = self._s3.get_object(
            Bucket=self._bucket, Key=self._key, Range=f"bytes={self._at}-{end - 1}"
        )["Body"].read()
        self._at += len(body)
        return body

    def readall(self) -> bytes:
        return self.read(-1)


class Boto3Handler(pafs.FileSystemHandler):
    """The archive's files, read-only, through a boto3 S3 client.

    A file system for pyarrow's datasets made of the pipeline's own client: the same
    endpoint, credentials and retries as every other AWS call, and it works wherever boto3
    does (moto's in-process mock included, which pyarrow's native S3 client cannot see).
    pyarrow still reads only the footer and the column chunks it needs (ranged GETs).
    """

    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Boto3Handler) and other._s3 is self._s3

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = object.__hash__

    def get_type_name(self) -> str:
        return "boto3-s3"

    @staticmethod
    def _split(path: str) -> tuple[str, str]:
        bucket, _, key = path.partition("/")
        return bucket, key

    def _size(self, path: str) -> int:
        bucket, key = self._split(path)
        try:
            return int(self._s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
        except ClientError as exc:
            if aws.error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
                raise FileNotFoundError(f"s3://{path} does not exist") from exc
            raise OSError(f"s3://{path}: {exc}") from exc

    def get_file_info(self, paths: list[str]) -> list[Any]:
        infos = []
        for path in paths:
            try:
                infos.append(pafs.FileInfo(path, pafs.FileType.File, size=self._size(path)))
            except FileNotFoundError:
                infos.append(pafs.FileInfo(path, pafs.FileType.NotFound))
        return infos

    def open_input_file(self, path: str) -> Any:
        bucket, key = self._split(path)
        return pa.PythonFile(_RangeReader(self._s3, bucket, key, self._size(path)), mode="r")

    def open_input_stream(self, path: str) -> Any:
        return self.open_input_file(path)

    def normalize_path(self, path: str) -> str:
        return path

    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the archive's reader only reads (archive.write_day writes)")

    get_file_info_selector = create_dir = delete_dir = delete_dir_contents = _read_only
    delete_root_dir_contents = delete_file = move = copy_file = _read_only
    open_output_stream = open_append_stream = _read_only


def filesystem(settings: Settings, s3: Any = None) -> Any:
    """The file system the archive is read through: pyarrow over the pipeline's boto3 client."""
    return pafs.PyFileSystem(Boto3Handler(s3 or aws.client("s3", settings)))


def native_filesystem(settings: Settings) -> Any:
    """pyarrow's own S3 client at the settings' endpoint (the emulator's, moto's HTTP server
    or AWS's; not moto's in-process mock): for comparisons (bench/) and callers who want it."""
    kwargs: dict[str, Any] = {
        "region": settings.region,
        "connect_timeout": 5,
        "request_timeout": 30,
    }
    if settings.endpoint_url:
        parts = urlsplit(settings.endpoint_url)
        kwargs["endpoint_override"] = parts.netloc
        kwargs["scheme"] = parts.scheme or "https"
        if aws.is_loopback_url(settings.endpoint_url) and not os.environ.get("AWS_ACCESS_KEY_ID"):
            # The emulator accepts any key (as pipeline.aws gives its clients).
            kwargs.update(access_key="testing", secret_key="testing")  # noqa: S106
    return pafs.S3FileSystem(**kwargs)


def row_filter(start: datetime, end: datetime, filters: Mapping[str, Any] | None) -> Any:
    """The scan's condition: `start <= ts < end` and each column among its filter's values."""
    ts = ds.field("ts")
    unit = pa.timestamp("ms", tz="UTC")
    condition = (ts >= pa.scalar(start, type=unit)) & (ts < pa.scalar(end, type=unit))
    for column, wanted in (filters or {}).items():
        values = filter_values(wanted)
        # An empty list is "no row": pyarrow cannot type an empty value set.
        condition &= ds.field(column).isin(values) if values else ds.scalar(False)
    return condition


def filter_values(wanted: Any) -> list[Any]:
    """A filter's value, or list of values, as a list."""
    return [wanted] if isinstance(wanted, str | int | float) else list(wanted)


def wanted_columns(columns: Sequence[str] | None) -> list[str]:
    """The frame's columns for a request: all, or `ts` and the asked ones, in COLUMNS' order."""
    if columns is None:
        return list(COLUMNS)
    unknown = set(columns) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown column(s): {', '.join(sorted(unknown))}; see pipeline.COLUMNS")
    return [c for c in COLUMNS if c == "ts" or c in columns]


def read_field(name: str) -> pa.Field:
    """A column as reads hold it: the few-valued text columns (CATEGORICAL and props) stay
    dictionary-encoded from the file to the frame's categoricals, never a string per row."""
    found = SCHEMA.field(name)
    return found.with_type(_DICTIONARY) if name in READ_AS_DICTIONARY else found


_DICTIONARY = pa.dictionary(pa.int32(), pa.string())
READ_AS_DICTIONARY = frozenset((*CATEGORICAL, "props"))
READ_SCHEMA = pa.schema([read_field(name) for name in SCHEMA.names])
_FORMAT = ds.ParquetFileFormat(
    read_options=ds.ParquetReadOptions(dictionary_columns=set(READ_AS_DICTIONARY))
)


def read_schema(columns: Sequence[str]) -> pa.Schema:
    return pa.schema([read_field(name) for name in columns])


def read_day_table(
    settings: Settings,
    fs: Any,
    site: str,
    day: date,
    expression: Any,
    columns: list[str],
) -> pa.Table:
    """One day's rows matching `expression`, only `columns` (missing ones as nulls)."""
    path = f"{settings.archive_bucket}/{object_key(site, day)}"
    dataset = ds.dataset(path, schema=READ_SCHEMA, format=_FORMAT, filesystem=fs)
    # One thread a file (days are read in parallel): rows come in file order, every time, so
    # two reads of a file with one filter line up row for row (`read_rest`).
    return dataset.to_table(columns=columns, filter=expression, use_threads=False)


def read_days(
    settings: Settings,
    site: str,
    days: Iterable[date],
    start: datetime,
    end: datetime,
    columns: Sequence[str] | None = None,
    *,
    filters: Mapping[str, Any] | None = None,
    fs: Any = None,
) -> tuple[pd.DataFrame, list[date]]:
    """The archived events of `site` on `days` with `start <= ts < end`, in
    `query.events_frame`'s shape, and the days whose file could not be read.

    `filters` maps a column to a value or a list of values (equality, pushed into the scan);
    `fs` is the file system (`filesystem(settings)`, or `native_filesystem(settings)`).
    A corrupt, truncated or vanished file is skipped with a logged reason, never raised.
    """
    days = sorted(days)
    tables = read_tables(settings, site, days, start, end, columns, filters=filters, fs=fs)
    unreadable = [day for day, table in zip(days, tables, strict=True) if table is None]
    found = [table for table in tables if table is not None]
    return frame_from_table(concat(found, columns), columns), unreadable


def read_tables(
    settings: Settings,
    site: str,
    days: Sequence[date],
    start: datetime,
    end: datetime,
    columns: Sequence[str] | None = None,
    *,
    filters: Mapping[str, Any] | None = None,
    fs: Any = None,
) -> list[pa.Table | None]:
    """Each day's matching rows as an Arrow table (READ_SCHEMA's types), None for a file
    that could not be read."""
    if not days:
        return []
    fs = fs or filesystem(settings)
    expression = row_filter(start, end, filters)
    scan = wanted_columns(columns)

    def read(day: date) -> pa.Table | None:
        try:
            return read_day_table(settings, fs, site, day, expression, scan)
        except (OSError, pa.ArrowException, ValueError) as exc:
            # Corrupt, truncated or gone: the caller reads the day elsewhere or reports it.
            log.warning("archive file of %s on %s skipped: %s", site, day, str(exc).splitlines()[0])
            return None

    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_READS, len(days))) as pool:
        return list(pool.map(read, days))


def read_rest(
    settings: Settings,
    site: str,
    days: Sequence[date],
    firsts: Sequence[pa.Table],
    masks: Sequence[Any],
    start: datetime,
    end: datetime,
    columns: Sequence[str] | None = None,
    *,
    filters: Mapping[str, Any] | None = None,
    fs: Any = None,
) -> list[pa.Table | None]:
    """The second read of a narrowed view: for each day, the rows `mask` keeps of its first
    read (`firsts`, made with the same range and filters), with the columns that read left
    out. Only those columns are fetched; the two reads line up row for row (one thread a
    file). A day whose rows changed between the reads (a rewritten file) is None."""
    fs = fs or filesystem(settings)
    expression = row_filter(start, end, filters)
    wanted = wanted_columns(columns)

    def read(day: date, first: pa.Table, mask: Any) -> pa.Table | None:
        rest = [c for c in wanted if c not in first.column_names]
        try:
            found = read_day_table(settings, fs, site, day, expression, rest) if rest else None
        except (OSError, pa.ArrowException, ValueError) as exc:
            log.warning("archive file of %s on %s skipped: %s", site, day, str(exc).splitlines()[0])
            return None
        if found is not None and found.num_rows != first.num_rows:
            return None
        kept = first.filter(mask)
        for name in rest:
            kept = kept.append_column(name, found[name].filter(mask))
        return kept

    if not days:
        return []
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_READS, len(days))) as pool:
        return list(pool.map(read, days, firsts, masks))


def records_for_read(
    records: list[dict[str, Any]],
    start: datetime,
    end: datetime,
    columns: Sequence[str] | None = None,
    filters: Mapping[str, Any] | None = None,
) -> pa.Table:
    """Stored items' records (DynamoDB's hot days) as a read of a file gives them: the same
    rows (`start <= ts < end`, the filters), columns and types, in time order."""
    table = records_table(records).filter(row_filter(start, end, filters))
    wanted = wanted_columns(columns)
    return table.select(wanted).cast(read_schema(wanted))


def concat(tables: list[pa.Table], columns: Sequence[str] | None = None) -> pa.Table:
    """Read tables (of days in any order) as one, in time order. Files of schema 3 and DynamoDB
    reads are each in (ts, request_id) order already; the sort is stable, so those ties keep
    it (files of schema 2 were in page order: their ties at one millisecond in file order)."""
    schema = read_schema(wanted_columns(columns))
    if not tables:
        return schema.empty_table()
    table = pa.concat_tables([t.select(schema.names).cast(schema) for t in tables])
    ts = table["ts"].to_numpy()
    if len(ts) > 1 and (ts[1:] < ts[:-1]).any():
        table = table.take(pc.sort_indices(table["ts"]))
    return table


def frame_from_tables(tables: list[pa.Table], columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read tables (`read_tables`'s, any days) as one frame."""
    return frame_from_table(concat(tables, columns), columns)


def _props_objects(column: pa.ChunkedArray) -> np.ndarray:
    """The props column's JSON texts as dicts, each distinct text parsed once (rows with the
    same text share one dict: treat the frame's props as read-only)."""
    texts = column.cast(_DICTIONARY).to_pandas()  # chunks' dictionaries unified
    parsed = [parse_props(text) for text in texts.cat.categories] + [{}]
    found = np.empty(len(parsed), dtype=object)
    found[:] = parsed
    return found[texts.cat.codes.to_numpy()]  # code -1 (null): the trailing {}


def _categorical(column: pa.ChunkedArray) -> pd.Series:
    """A dictionary column as a categorical: "" for nulls, categories sorted (as pandas'
    astype("category") orders them, which groupbys see)."""
    if column.null_count:
        column = pc.fill_null(column.cast(pa.string()), "").cast(_DICTIONARY)
    # Chunks' dictionaries unified; only the values of the rows kept (a file's dictionary
    # holds every value of the day), as pandas' astype("category") makes them.
    found = column.to_pandas().cat.remove_unused_categories()
    ordered = found.cat.categories.sort_values()
    return found if found.cat.categories.equals(ordered) else found.cat.reorder_categories(ordered)


def frame_from_table(table: pa.Table, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A read table (`concat`'s, in time order) as the documented frame: COLUMNS (or the
    asked subset) in order, UTC `ts`, categoricals, "" and NaN for absent values."""
    wanted = wanted_columns(columns)
    frame = {}
    for name in wanted:
        column = table[name] if name in table.column_names else pa.nulls(len(table))
        if name == "ts":
            ms = pc.cast(column, pa.int64()).to_numpy()
            frame[name] = pd.to_datetime(ms, unit="ms", utc=True)
        elif name in CATEGORICAL:
            frame[name] = _categorical(column.cast(_DICTIONARY))
        elif name == "props":
            frame[name] = _props_objects(column)
        elif name in NUMERIC:
            # Always float64 (NaN when absent): a column's dtype must not depend on which
            # rows a range or filter happens to keep, nor on which source a day came from.
            frame[name] = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
        else:
            text = pc.fill_null(column.cast(pa.string()), "") if name in TEXT else column
            frame[name] = text.cast(pa.string()).to_pandas()
    return pd.DataFrame(frame, columns=wanted)


def parse_props(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value not in ("", "{}"):
        parsed = json.loads(value)
        return parsed if isinstance(parsed, dict) else {}
    return {}
