"""`python -m pipeline.sites`: the site registry, its report recipients, share links and
login allowlists.

The registry's code is in `pipeline.enrich.sites`; the `report` command's in
`pipeline.ops.recipients`, `share` and `access` in `pipeline.ops.shares`. This module keeps the
command's name and wires the three together (the consumer's package holds only the first).
"""

import sys

from pipeline.enrich import sites
from pipeline.enrich.sites import Extension
from pipeline.ops import recipients, shares

EXTENSIONS = (
    Extension(("report",), recipients.add_parser, recipients.command),
    Extension(("share", "access"), shares.add_parsers, shares.command),
)


def main(argv: list[str] | None = None) -> int:
    return sites.main(argv, EXTENSIONS)


if __name__ == "__main__":
    sys.exit(main())
