"""Plain-text column alignment: the low-level piece under every table `_present` builds."""

from __future__ import annotations

from collections.abc import Sequence

from ._values import one_line


def table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart; the last column is not padded. Every cell is
    one printable line (`one_line`): cells hold what other processes wrote (instance names,
    errors, actors in etcd or the control directory), and an escape code in one would
    drive the terminal of whoever reads the table."""
    if not rows:
        return ""
    rows = [[one_line(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join([*(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)), r[-1]]).rstrip() for r in rows
    )
