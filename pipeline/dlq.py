"""`python -m pipeline.dlq`: the dead-letter queue.

The code is in `pipeline.ops.dlq`; this module keeps the command's name.
"""

import sys

from pipeline.ops.dlq import main

if __name__ == "__main__":
    sys.exit(main())
