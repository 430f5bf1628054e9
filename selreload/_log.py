"""One log line per reload attempt that people can read, secrets masked."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ._change import Change
from ._present import change_line
from ._result import Outcome, ReloadResult

log = logging.getLogger("selreload.reload")

_LEVELS = {
    Outcome.APPLIED: logging.INFO,
    Outcome.UNCHANGED: logging.DEBUG,
    Outcome.REJECTED: logging.WARNING,
    Outcome.INVALID: logging.ERROR,
    Outcome.ROLLED_BACK: logging.ERROR,
    Outcome.DEGRADED: logging.CRITICAL,
}


def log_result(result: ReloadResult, *, name: str, recovered: bool = False) -> None:
    """INFO for an applied reload (each change old -> new), WARNING per rejected
    restart-only change, ERROR for INVALID/ROLLED_BACK, CRITICAL for DEGRADED.

    `recovered`: the attempt before this one failed. An UNCHANGED one is then logged at
    INFO (the sources are valid again, say after a broken file was restored), not DEBUG.
    Each record carries `selreload_result` and `selreload_recovered` for handlers.
    """
    level = logging.INFO if recovered and result.outcome is Outcome.UNCHANGED else _LEVELS[result.outcome]
    # Formatting every change costs 8-15 ms at 10,000 changes: only when someone listens.
    if not log.isEnabledFor(min(level, logging.WARNING) if result.rejected else level):
        return
    extra = {"selreload_result": result, "selreload_recovered": recovered}
    head = f"config {name!r} reload ({result.trigger}"
    head += f", by {result.actor})" if result.actor else ")"
    if result.outcome is Outcome.APPLIED:
        if log.isEnabledFor(level):
            changes = "; ".join(change_line(c) for c in _first(result.applied)) or "initial config"
            log.log(level, "%s applied v%d: %s%s", head, result.version, changes, _more(result.applied), extra=extra)
    elif result.outcome is Outcome.UNCHANGED:
        pending = ", ".join(c.path for c in _first(result.rejected)) + _more(result.rejected, sep=",")
        tail = f" (restart pending: {pending})" if pending else ""
        if recovered:
            tail += ": the sources are valid again and match the live config"
        log.log(level, "%s unchanged at v%d%s", head, result.version, tail, extra=extra)
        # Already warned when they were rejected: a repeated file event is not news.
        return
    elif result.outcome is Outcome.REJECTED:
        log.log(level, "%s rejected: only restart-only changes, v%d stays live", head, result.version, extra=extra)
    else:
        errors = "; ".join(str(e) for e in result.errors)
        # What was tried and then rolled back: "undone: x 1 -> 2" read as if 1 -> 2 had happened.
        tried = "; ".join(change_line(c) for c in _first(result.attempted)) + _more(result.attempted)
        undone = f" (tried, then rolled back: {tried})" if result.attempted else ""
        log.log(
            level,
            "%s %s, v%d stays live: %s%s",
            head,
            result.outcome.value,
            result.version,
            errors,
            undone,
            extra=extra,
        )
    for c in _first(result.rejected):
        log.warning("config %r: %s needs a restart (restart pending): %s", name, c.path, change_line(c))
    if len(result.rejected) > _LINE_CHANGES:
        log.warning("config %r: %d more restart-only changes pending", name, len(result.rejected) - _LINE_CHANGES)


_LINE_CHANGES = 20
"""Changes named per log line; a reload of thousands of leaves logs a bounded line."""


def _first(changes: Sequence[Change]) -> Sequence[Change]:
    return changes[:_LINE_CHANGES]


def _more(changes: Sequence[Change], *, sep: str = ";") -> str:
    extra = len(changes) - _LINE_CHANGES
    return f"{sep} +{extra} more" if extra > 0 else ""
