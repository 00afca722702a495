"""The consumer's deployment package: `pipeline/` plus its pinned dependencies, as a zip.

Dependencies are installed for the Lambda platform (manylinux aarch64, the function's
Python) from wheels only, so nothing is compiled on this machine. With `platform=None` the
package is built for this machine instead, which is how the tests import and run it.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = Path(__file__).parent / "lambda-requirements.txt"
LAMBDA_PLATFORM = "manylinux2014_aarch64"
LAMBDA_PYTHON = "3.13"
# The consumer's code; the dashboard, demo and local tools stay out of the function.
PACKAGE_MODULES = (
    "__init__.py", "aws.py", "config.py", "consumer.py", "contract.py", "enrich.py", "errors.py",
    "geo.py", "referrers.py", "salts.py", "storage.py", "text.py", "urls.py", "useragents.py",
)  # fmt: skip
_FIXED_TIME = (2020, 1, 1, 0, 0, 0)  # same bytes for the same inputs: no spurious updates


def _install(target: Path, platform: str | None) -> None:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile"]
    command += ["--target", str(target), "-r", str(REQUIREMENTS)]
    if platform:
        command += ["--platform", platform, "--python-version", LAMBDA_PYTHON]
        command += ["--implementation", "cp", "--only-binary=:all:"]
    subprocess.run(command, check=True)  # noqa: S603 (our own interpreter and file names)


def _files(site: Path) -> list[tuple[Path, str]]:
    found = [
        (path, path.relative_to(site).as_posix()) for path in site.rglob("*") if path.is_file()
    ]
    found += [(ROOT / "pipeline" / name, f"pipeline/{name}") for name in PACKAGE_MODULES]
    return sorted((p, n) for p, n in found if "__pycache__" not in n and not n.endswith(".pyc"))


def build(output: Path, platform: str | None = LAMBDA_PLATFORM) -> str:
    """Write the zip to `output`; return its SHA-256 (hex), which names the S3 object."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        site = Path(scratch)
        _install(site, platform)
        with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
            for path, name in _files(site):
                info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
    return hashlib.sha256(output.read_bytes()).hexdigest()
