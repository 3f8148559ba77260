"""How a command reports a mistake of its user: one line each, exit status 2."""

from __future__ import annotations

import sys


def fail(problems: list[str], prog: str) -> int:
    for problem in problems:
        print(f"{prog}: error: {problem}", file=sys.stderr)
    return 2
