"""``python -m grubench``: the same command line as ``grubench``."""

from grubench.cli import main

if __name__ == "__main__":
    main()
