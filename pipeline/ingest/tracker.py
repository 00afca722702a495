"""The tracking script, minified once and served with caching headers.

The source (`pipeline/ingest/static/script.js`) stays readable; calmjs.parse (pure Python, no
Node.js) strips it and shortens local names when the collector starts, so there is no
build step and no generated file to keep in sync.

The script has a budget (`BUDGET`, docs/tracker.md), so the minifier squeezes what it
safely can beyond calmjs' defaults: no semicolon before `}`, `true`/`false` as `!0`/`!1`,
and short names drawn from the letters the script uses most (gzip's Huffman codes are
shortest for them: ~10 bytes on 1,300, the same trick terser uses).
"""

from __future__ import annotations

import gzip
import hashlib
from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from calmjs.parse import asttypes, es5, rules
from calmjs.parse.handlers import obfuscation
from calmjs.parse.lexers.es5 import Lexer
from calmjs.parse.unparsers.es5 import Unparser

SOURCE = Path(__file__).parent / "static" / "script.js"
# An hour fresh, a day served stale while revalidating: a fix reaches browsers within the hour.
CACHE_CONTROL = "public, max-age=3600, stale-while-revalidate=86400"
# Bytes of the minified script gzipped at level 9 (tests/ingest/test_tracker_engagement.py).
BUDGET = 1300


class _Names(obfuscation.Obfuscator):
    """calmjs' renamer, drawing names from `charset` (calmjs hard-codes a-z, A-Z, _)."""

    charset = obfuscation.ID_CHARS

    def finalize(self) -> None:
        self.global_scope.close()
        names = obfuscation.NameGenerator(skip=self.reserved_keywords, charset=self.charset)
        self.global_scope.build_remap_symbols(names, children_only=not self.obfuscate_globals)


def _renaming(charset: str) -> Callable[[], dict[str, Any]]:
    def rule() -> dict[str, Any]:
        names = type("Names", (_Names,), {"charset": charset})(
            obfuscate_globals=False,  # the script is one function: nothing of ours is global
            shadow_funcname=True,
            reserved_keywords=Lexer.keywords_dict.keys(),
        )
        return {
            "token_handler": obfuscation.token_handler_unobfuscate,
            "deferrable_handlers": {obfuscation.Resolve: names.resolve},
            "prewalk_hooks": [names.prewalk_hook],
        }

    return rule


def _short_booleans(node: asttypes.Node) -> asttypes.Node:
    """`true` -> `!0`, `false` -> `!1`, except where a member is read from the literal."""
    accessor = isinstance(node, asttypes.DotAccessor | asttypes.BracketAccessor)
    for key, value in vars(node).items():
        if isinstance(value, asttypes.Boolean) and not (accessor and key == "node"):
            setattr(node, key, _not(value))
        elif isinstance(value, asttypes.Node):
            _short_booleans(value)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, asttypes.Boolean):
                    value[index] = _not(item)
                elif isinstance(item, asttypes.Node):
                    _short_booleans(item)
    return node


def _not(literal: asttypes.Boolean) -> asttypes.UnaryExpr:
    return asttypes.UnaryExpr("!", asttypes.Number("0" if literal.value == "true" else "1"))


def _print(source: str, charset: str) -> str:
    tree = _short_booleans(es5(source))
    printer = Unparser(rules=[rules.minify(drop_semi=True), _renaming(charset)])
    return "".join(chunk.text for chunk in printer(tree))


def minify(source: str) -> str:
    """Minified ES5: a first pass counts the letters of what stays (strings, properties),
    the second names locals with the most frequent first. Deterministic for one source."""
    first = _print(source, obfuscation.ID_CHARS)
    counts = Counter(first)
    charset = "".join(sorted(obfuscation.ID_CHARS, key=lambda char: (-counts[char], char)))
    return _print(source, charset)


@lru_cache(maxsize=1)
def minified() -> bytes:
    return minify(SOURCE.read_text()).encode()


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
