"""`python -m pipeline.sites`: the site registry.

The code is in `pipeline.enrich.sites`; this module keeps the command's name.
"""

import sys

from pipeline.enrich.sites import main

if __name__ == "__main__":
    sys.exit(main())
