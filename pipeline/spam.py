"""`python -m pipeline.spam`: the referrer-spam list.

The code is in `pipeline.enrich.spam`; this module keeps the command's name.
"""

import sys

from pipeline.enrich.spam import main

if __name__ == "__main__":
    sys.exit(main())
