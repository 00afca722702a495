"""Plausible's official npm tracker, fetched from the npm registry at test time.

The package is never copied into the repository: `npm pack` downloads the pinned version's
tarball (npm checks it against the registry's integrity hash), and it is unpacked into a cache
directory, so a second run on the same machine needs no network. Its one file, `plausible.js`,
is an ES module without imports: a page loads it through an import map under its package name,
`import { init, track } from '@plausible-analytics/tracker'`, exactly the import its README
shows (a bundler would resolve that bare name the same way, to the same file).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

PACKAGE = "@plausible-analytics/tracker"
VERSION = "0.4.6"  # the current release when issue 15 was built (npm view ... version)
ENTRY = "plausible.js"
NPM_TIMEOUT = 180  # seconds: a cold npm cache on a slow registry connection


class NpmUnavailable(RuntimeError):
    """npm is missing or could not fetch the package: the message says what to do."""


def npm_pack(package: str, version: str, destination: Path) -> Path:
    """`npm pack package@version` into `destination`; the tarball's path."""
    npm = shutil.which("npm")
    if npm is None:
        raise NpmUnavailable(
            f"npm is not installed: the test fetches {package}@{version} with `npm pack` "
            "(Debian: apt-get install npm)"
        )
    destination.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            [npm, "pack", f"{package}@{version}", "--json", "--pack-destination", str(destination)],
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise NpmUnavailable(f"`npm pack {package}@{version}` took over {NPM_TIMEOUT} s") from exc
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise NpmUnavailable(f"`npm pack {package}@{version}` failed:\n{tail}")
    filename = json.loads(done.stdout)[0]["filename"]
    return destination / Path(filename).name


def unpack(tarball: Path, destination: Path) -> Path:
    """The tarball's `package/` folder, unpacked with tarfile's safe "data" filter (no links
    out, no absolute paths, no device files)."""
    with tarfile.open(tarball) as archive:
        archive.extractall(destination, filter="data")
    return destination / "package"


def tracker_package(cache: Path, version: str = VERSION) -> Path:
    """The unpacked tracker package of `version` (its folder holds `plausible.js`, the README,
    package.json), fetched once into `cache`."""
    folder = cache / f"tracker-{version}"
    package = folder / "package"
    if not (package / ENTRY).is_file():
        shutil.rmtree(folder, ignore_errors=True)
        package = unpack(npm_pack(PACKAGE, version, folder), folder)
    meta = json.loads((package / "package.json").read_text())
    if (meta.get("name"), meta.get("version")) != (PACKAGE, version):
        raise NpmUnavailable(f"{package} holds {meta.get('name')}@{meta.get('version')}")
    return package
