"""``python -m grubench``: the same command line as ``grubench``."""

import sys

from grubench.cli import main

if __name__ == "__main__":
    sys.exit(main())
