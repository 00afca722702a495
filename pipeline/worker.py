"""`python -m pipeline.worker`: the local queue worker.

The code is in `pipeline.consume.worker`; this module keeps the command's name.
"""

import sys

from pipeline.consume.worker import main

if __name__ == "__main__":
    sys.exit(main())
