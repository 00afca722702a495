"""The tracking script, minified once and served with caching headers.

The source (`pipeline/ingest/static/script.js`) stays readable; calmjs.parse (pure Python, no
Node.js) strips it and shortens local names when the collector starts, so there is no
build step and no generated file to keep in sync.
"""

from __future__ import annotations

import gzip
import hashlib
from functools import lru_cache
from pathlib import Path

from calmjs.parse import es5
from calmjs.parse.unparsers.es5 import minify_print

SOURCE = Path(__file__).parent / "static" / "script.js"
# An hour fresh, a day served stale while revalidating: a fix reaches browsers within the hour.
CACHE_CONTROL = "public, max-age=3600, stale-while-revalidate=86400"


@lru_cache(maxsize=1)
def minified() -> bytes:
    return minify_print(es5(SOURCE.read_text()), obfuscate=True, obfuscate_globals=False).encode()


@lru_cache(maxsize=1)
def gzipped() -> bytes:
    return gzip.compress(minified(), compresslevel=9, mtime=0)


def etag() -> str:
    return '"' + hashlib.sha256(minified()).hexdigest()[:16] + '"'


def headers() -> dict[str, str]:
    return {
        "Content-Type": "application/javascript; charset=utf-8",
        "Cache-Control": CACHE_CONTROL,
        "ETag": etag(),
        "Vary": "Accept-Encoding",
        "Access-Control-Allow-Origin": "*",
        # Sites with Cross-Origin-Embedder-Policy may only load cross-origin scripts that opt in.
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff",
    }
