"""`python -m selreload` and the `selreload` console script."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the `selreload` command line and return its exit code (see `_cli.main`)."""
    from ._cli import main as cli_main

    return cli_main(argv, out=out, err=err)


if __name__ == "__main__":
    sys.exit(main())
