"""grubench: measured answers to the folklore of training gated recurrent networks."""

from __future__ import annotations


def __getattr__(name: str):
    # read from the installed package's metadata (pyproject's version) on first use only, so
    # that importing grubench costs no metadata lookup
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("grubench")
        except PackageNotFoundError:  # a source tree on sys.path, not installed
            return "0+unknown"
    raise AttributeError(f"module 'grubench' has no attribute {name!r}")
