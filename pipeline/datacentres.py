"""`python -m pipeline.datacentres`: the data-centre address ranges.

The code is in `pipeline.enrich.datacentres`; this module keeps the command's name.
"""

import sys

from pipeline.enrich.datacentres import main

if __name__ == "__main__":
    sys.exit(main())
