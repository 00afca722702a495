"""The functions' deployment packages: `pipeline/` plus pinned dependencies, as zips.

Two packages: the consumer's (no pandas: it starts fast and small), and the readers' one for
the compactor and the Stats API (pandas, the metric code, `pipeline/api`). The readers share one
zip, so `function="api"` and `function="compactor"` build the same bytes (one S3 object).

The readers' package carries pyarrow (the Parquet archive), which with pandas and numpy comes
to ~283 MB unzipped for arm64, over Lambda's 250 MB limit: `EXCLUDED` leaves out what no
function imports (test suites, C++ headers and Cython sources, Arrow Flight, the copies of
libraries the wheels hold under three names, pycountry's translations), ~190 MB remain.
`unzipped_size` measures it; tests/infra/test_lambda_package.py holds it under the limit.

Dependencies are installed for the Lambda platform (manylinux aarch64, the function's
Python) from wheels only, so nothing is compiled on this machine. With `platform=None` the
package is built for this machine instead, which is how the tests import and run it.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = {
    "consumer": Path(__file__).parent / "lambda-requirements.txt",
    "compactor": Path(__file__).parent / "api-requirements.txt",
    "api": Path(__file__).parent / "api-requirements.txt",
}
# Lambda's Python 3.13 runs on Amazon Linux 2023 (glibc 2.34): manylinux_2_28 wheels fit.
LAMBDA_PLATFORM = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
LAMBDA_PYTHON = "3.13"
# Each function's code, as paths under pipeline/ (a folder: every module in it); the dashboard,
# demo and local tools stay out of both.
CONSUMER_MODULES = (
    "__init__.py", "aws.py", "config.py", "errors.py", "stack.py", "resources.py",
    "ingest/__init__.py", "ingest/contract.py", "enrich", "consume/__init__.py",
    "consume/consumer.py", "store/__init__.py", "store/storage.py",
)  # fmt: skip
READER_MODULES = (
    *CONSUMER_MODULES, "store/compactor.py", "store/query.py", "store/rollups.py",
    "store/archive.py", "store/narrow.py", "stats/__init__.py", "stats/metrics.py", "api",
    # The compactor's e-mail reports and traffic notifications (pipeline/ops/reports.py).
    "stats/anomalies.py", "stats/countries.py", "ops/__init__.py", "ops/emails.py",
    "ops/recipients.py", "ops/reports.py",
)  # fmt: skip
MODULES = {"consumer": CONSUMER_MODULES, "compactor": READER_MODULES, "api": READER_MODULES}
_FIXED_TIME = (2020, 1, 1, 0, 0, 0)  # same bytes for the same inputs: no spurious updates
# Lambda's limit on a function's unzipped code (250 MB, counted in MiB as AWS's quota page does).
UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024
# Paths (in the zip) that no function imports. Each rule is checked by running the unzipped
# compactor and Stats API against moto (tests/infra/test_lambda_package.py).
EXCLUDED = re.compile(
    r"(^|/)tests/"  # test suites (pandas' alone is 18 MB)
    r"|^pyarrow/(include|src)/|\.(pxd|pyx|pxi|h|cc)$"  # headers and Cython sources
    r"|^pyarrow/(_flight\.|flight\.py|libarrow_flight\.|libarrow_python_flight\.)"  # Flight RPC
    # Wheels cannot hold symlinks: libarrow_python ships as .so, .so.N and .so.N.x.y; the
    # extensions load .so.N (their DT_NEEDED), the others are for compiling against.
    r"|^pyarrow/libarrow_python\w*\.so(\.\d+\.\d+\.\d+)?$"
    r"|^pycountry/locales/"  # translations of country names: the API answers in English
)


def _install(target: Path, platform: tuple[str, ...] | None, requirements: Path) -> None:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile"]
    command += ["--target", str(target), "-r", str(requirements)]
    if platform:
        command += [arg for tag in platform for arg in ("--platform", tag)]
        command += ["--python-version", LAMBDA_PYTHON]
        command += ["--implementation", "cp", "--only-binary=:all:"]
    subprocess.run(command, check=True)  # noqa: S603 (our own interpreter and file names)


def _files(site: Path, modules: tuple[str, ...]) -> list[tuple[Path, str]]:
    found = [
        (path, path.relative_to(site).as_posix()) for path in site.rglob("*") if path.is_file()
    ]
    package = ROOT / "pipeline"
    for name in modules:
        paths = (
            sorted((package / name).glob("*.py")) if (package / name).is_dir() else [package / name]
        )
        found += [(p, f"pipeline/{p.relative_to(package).as_posix()}") for p in paths]
    return sorted(
        (p, n)
        for p, n in found
        if "__pycache__" not in n and not n.endswith(".pyc") and not EXCLUDED.search(n)
    )


def unzipped_size(archive: Path) -> int:
    """Bytes the zip takes once unzipped: what Lambda's 250 MB limit counts."""
    with zipfile.ZipFile(archive) as opened:
        return sum(info.file_size for info in opened.infolist())


def build(
    output: Path, platform: tuple[str, ...] | None = LAMBDA_PLATFORM, function: str = "consumer"
) -> str:
    """Write `function`'s zip to `output`; return its SHA-256 (hex), which names the S3 object."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        site = Path(scratch)
        _install(site, platform, REQUIREMENTS[function])
        with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
            for path, name in _files(site, MODULES[function]):
                info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
    return hashlib.sha256(output.read_bytes()).hexdigest()
