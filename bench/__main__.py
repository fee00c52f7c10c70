"""``python -m bench``: run every benchmark and print its report."""

from __future__ import annotations

import sys


def main() -> int:
    print("no benchmarks yet", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
