"""Size of the tracking script as served: source, minified, minified + gzip -9.

Run: `python -m bench.tracker_size`.
"""

from __future__ import annotations

from pipeline.ingest import tracker


def run() -> dict[str, int]:
    return {
        "source_bytes": len(tracker.SOURCE.read_bytes()),
        "minified_bytes": len(tracker.minified()),
        "minified_gzip_bytes": len(tracker.gzipped()),
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:>20}: {value:,}")
