"""The consumer's deployment package, unzipped into a clean directory and run against moto."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from infra import package
from pipeline import aws, load_events
from pipeline.enrich.spam import read_blocklist

pytestmark = pytest.mark.integration

RUN_HANDLER = """
import json, sys
import pipeline.consume.consumer
assert pipeline.consume.consumer.__file__.startswith(sys.argv[1]), pipeline.consume.consumer.__file__
event = json.loads(sys.stdin.read())
print(json.dumps(pipeline.consume.consumer.handler(event, None)))
print(json.dumps(sorted(m for m in ("pandas", "streamlit", "moto") if m in sys.modules)))
"""


def lambda_environment(clean: Path, settings) -> dict[str, str]:
    """What the function's environment holds on AWS, pointed at moto; nothing from this venv's path."""
    return {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(clean),
        "AWS_ENDPOINT_URL": settings.endpoint_url,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PIPELINE_EVENTS_TABLE": settings.events_table,
        "PIPELINE_SALTS_TABLE": settings.salts_table,
        "PIPELINE_SITES_TABLE": settings.sites_table,
        "PIPELINE_ARCHIVE_BUCKET": settings.archive_bucket,  # as the stack sets it (readers)
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    # Built for this machine so it can run here; the deploy builds the same for arm64 Lambda.
    archive = tmp_path_factory.mktemp("package") / "consumer.zip"
    package.build(archive, platform=None)
    return archive


def test_package_holds_the_consumer_and_its_dependencies_only(built):
    names = zipfile.ZipFile(built).namelist()
    assert "pipeline/consume/consumer.py" in names and "pipeline/local/demo.py" not in names
    assert any(n.startswith("ua_parser/") for n in names) and any(
        n.startswith("crawlerdetect/") for n in names
    )
    assert any(n.startswith("re2/") for n in names)  # the bot patterns' linear-time engine
    assert not any(
        n.startswith(("pandas/", "streamlit/", "moto/", "boto3/", "pyarrow/")) for n in names
    )


def test_the_same_inputs_build_the_same_bytes(built, tmp_path):
    assert (
        package.build(tmp_path / "again.zip", platform=None)
        == __import__("hashlib").sha256(built.read_bytes()).hexdigest()
    )


def test_unzipped_handler_stores_an_sqs_event_in_moto(
    built, server_settings, message_factory, sqs_record, tmp_path
):
    clean = tmp_path / "lambda"
    zipfile.ZipFile(built).extractall(clean)
    event = {"Records": [sqs_record(message_factory(), "good"), sqs_record("not json", "bad")]}
    env = lambda_environment(clean, server_settings)
    result = subprocess.run(
        [sys.executable, "-c", RUN_HANDLER, str(clean)],
        input=json.dumps(event), cwd=clean, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    response, heavy = result.stdout.strip().splitlines()
    assert json.loads(response) == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    assert json.loads(heavy) == []
    now = datetime.now(UTC)
    assert (
        len(
            load_events(
                "example.com",
                now - timedelta(minutes=5),
                now + timedelta(minutes=5),
                settings=server_settings,
            )
        )
        == 1
    )


RUN_COMPACTOR = """
import json, sys
import pipeline.store.compactor
assert pipeline.store.compactor.__file__.startswith(sys.argv[1])
print(json.dumps(pipeline.store.compactor.handler({}, None)))
"""


def test_unzipped_compactor_rolls_up_a_closed_day_in_moto(
    server_settings, message_factory, sqs_record, tmp_path
):
    from pipeline.consume.consumer import Consumer
    from pipeline.store.query import load_rollups

    archive = tmp_path / "compactor.zip"
    package.build(archive, platform=None, function="compactor")
    names = zipfile.ZipFile(archive).namelist()
    assert "pipeline/store/compactor.py" in names and any(n.startswith("pandas/") for n in names)
    # pyarrow writes the archive's Parquet files (pipeline/store/archive.py).
    assert "pipeline/store/archive.py" in names and "pyarrow/parquet/core.py" in names
    assert not any(n.startswith(("streamlit/", "moto/", "duckdb/")) for n in names)
    clean = tmp_path / "lambda"
    zipfile.ZipFile(archive).extractall(clean)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    body = message_factory(received_at_ms=int(yesterday.timestamp() * 1000))
    assert Consumer(server_settings).process([sqs_record(body)]).stored == 1
    spam_list = tmp_path / "spammers.txt"
    spam_list.write_text("semalt.example\ndarodar.example\n")
    ranges = tmp_path / "ip-ranges.json"  # AWS's published shape
    ranges.write_text(
        json.dumps(
            {"prefixes": [{"ip_prefix": "3.5.140.0/22", "service": "EC2"}], "ipv6_prefixes": []}
        )
    )
    env = lambda_environment(clean, server_settings) | {
        "PIPELINE_SPAM_LIST_URL": str(spam_list),
        "PIPELINE_DATACENTRE_SOURCES": str(ranges),
    }
    result = subprocess.run(
        [sys.executable, "-c", RUN_COMPACTOR, str(clean)],
        cwd=clean,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert (report["days"], report["spam_list_refreshed"]) == (1, True)
    assert report["datacentre_ranges_refreshed"] is True
    stored = read_blocklist(aws.client("dynamodb", server_settings), server_settings.sites_table)
    assert stored.domains == {"semalt.example", "darodar.example"}
    (day,) = load_rollups(
        "example.com", yesterday.date(), yesterday.date(), settings=server_settings
    )
    assert day["summary"]["pageviews"] == 1
    # ...and wrote the closed UTC day's Parquet file with the pruned package's pyarrow.
    from pipeline.store import archive as parquet_archive

    body = (
        aws.client("s3", server_settings)
        .get_object(
            Bucket=server_settings.archive_bucket,
            Key=parquet_archive.object_key("example.com", yesterday.date()),
        )["Body"]
        .read()
    )
    assert body[:4] == b"PAR1" and body[-4:] == b"PAR1"


RUN_STATS_API = """
import json, sys
import pipeline.api.app
assert pipeline.api.app.__file__.startswith(sys.argv[1]), pipeline.api.app.__file__
for event in json.loads(sys.stdin.read()):
    print(json.dumps(pipeline.api.app.lambda_handler(event, None)))
"""


def stats_proxy_event(key: str, body: dict) -> dict:
    """API Gateway's REST proxy event for POST /api/v2/query (payload format 1.0)."""
    return {
        "resource": "/api/v2/query",
        "path": "/api/v2/query",
        "httpMethod": "POST",
        "headers": {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "requestContext": {"stage": "v1", "identity": {"sourceIp": "203.0.113.7"}},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def test_unzipped_stats_api_answers_a_query_from_moto(
    server_settings, message_factory, sqs_record, tmp_path
):
    from pipeline import metrics
    from pipeline.api.keys import create_key
    from pipeline.consume.consumer import Consumer

    archive = tmp_path / "api.zip"
    digest = package.build(archive, platform=None, function="api")
    # The compactor runs from the same zip: one package, one upload, for both readers.
    assert package.MODULES["api"] == package.MODULES["compactor"]
    assert package.REQUIREMENTS["api"] == package.REQUIREMENTS["compactor"]
    names = zipfile.ZipFile(archive).namelist()
    assert {"pipeline/api/app.py", "pipeline/api/keys.py", "pipeline/api/v2.py"} <= set(names)
    assert any(n.startswith("pycountry/") for n in names) and digest
    assert not any(n.startswith(("streamlit/", "moto/", "duckdb/", "dashboard/")) for n in names)
    clean = tmp_path / "lambda"
    zipfile.ZipFile(archive).extractall(clean)

    now_ms = int(datetime.now(UTC).timestamp() * 1000) - 60_000
    records = [
        sqs_record(message_factory(query=f"d=example.com&u=https%3A%2F%2Fexample.com{p}",
                                   ip=ip, received_at_ms=now_ms))
        for p, ip in (("/", "203.0.113.7"), ("/b", "203.0.113.7"), ("/", "198.51.100.2"))
    ]  # fmt: skip
    assert Consumer(server_settings).process(records).stored == 3
    key = create_key(server_settings, "example.com")
    query = {"site_id": "example.com", "metrics": ["visitors", "pageviews"], "date_range": "day"}
    events = [stats_proxy_event(key, query), stats_proxy_event("not-a-key", query)]
    result = subprocess.run(
        [sys.executable, "-c", RUN_STATS_API, str(clean)],
        input=json.dumps(events), cwd=clean, env=lambda_environment(clean, server_settings),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    answered, refused = (json.loads(line) for line in result.stdout.strip().splitlines())
    assert answered["statusCode"] == 200, answered
    now = datetime.now(UTC)
    stored = load_events("example.com", now - timedelta(hours=1), now + timedelta(minutes=5),
                         settings=server_settings)  # fmt: skip
    expected = metrics.summary(stored)
    assert json.loads(answered["body"])["results"][0]["metrics"] == [
        expected.visitors, expected.pageviews
    ] == [2, 3]  # fmt: skip
    assert (refused["statusCode"], refused["isBase64Encoded"]) == (401, False)
    assert key not in result.stderr and "203.0.113.7" not in result.stderr


def test_the_readers_package_for_lambda_fits_in_250_mb_unzipped(tmp_path):
    """The real arm64 build (pip downloads the aarch64 wheels): pyarrow, pandas and numpy
    together exceed Lambda's limit unless package.EXCLUDED leaves out what nothing imports."""
    archive = tmp_path / "readers-arm64.zip"
    package.build(archive, function="compactor")
    names = zipfile.ZipFile(archive).namelist()
    assert any(n.startswith("pyarrow/libparquet.so") for n in names)
    assert any(n.startswith("pyarrow/_dataset_parquet.cpython-313-aarch64") for n in names)
    assert any(n.startswith("pyarrow/_s3fs.") for n in names)
    assert not any(package.EXCLUDED.search(n) for n in names)
    assert not any("/tests/" in n or n.startswith("pyarrow/include/") for n in names)
    size = package.unzipped_size(archive)
    print(f"readers' package: {archive.stat().st_size:,} bytes zipped, {size:,} unzipped")
    assert size <= package.UNZIPPED_LIMIT_BYTES == 250 * 1024 * 1024


def test_the_exclusions_drop_only_what_nothing_imports():
    kept = [
        "pyarrow/libarrow_python.so.2600",
        "pyarrow/libarrow_substrait.so.2600",  # every pyarrow extension links it
        "pyarrow/_dataset_parquet.cpython-313-aarch64-linux-gnu.so",
        "pandas/_testing/__init__.py",  # imported by pandas itself
        "pycountry/databases/iso3166-1.json",
        "pipeline/store/archive.py",
    ]
    dropped = [
        "pandas/tests/frame/test_api.py",
        "pyarrow/include/arrow/api.h",
        "pyarrow/libarrow_flight.so.2600",
        "pyarrow/_flight.cpython-313-aarch64-linux-gnu.so",
        "pyarrow/libarrow_python.so",
        "pyarrow/libarrow_python.so.2600.1.0",
        "pyarrow/lib.pxd",
        "pycountry/locales/de/LC_MESSAGES/iso3166-1.mo",
    ]
    assert [n for n in kept if package.EXCLUDED.search(n)] == []
    assert [n for n in dropped if not package.EXCLUDED.search(n)] == []
