"""Errors raised by selreload.

SelreloadError
 +-- ConfigError        invalid config: every `Issue` with its path and origin
 +-- PolicyError        a policy file that cannot be honoured (loosens a secret, typo'd glob)
 +-- ApplyError         an applier failed while the initial config was applied at start()
 +-- ApplierTimeoutError  an applier did not return within its deadline (also a TimeoutError)
 +-- StateError         an operation the Reloader's lifecycle state does not allow
 +-- UnknownVersionError  rollback() to a version `history` does not hold (also a KeyError)
 +-- WatchError         a directory could not be watched; also an `OSError` (errno kept)
 +-- AuditWriteError    an audit record did not reach the disk (also an OSError)
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from ._values import one_line


class SelreloadError(Exception):
    """Base class of every error selreload raises on purpose."""


@attrs.frozen
class Issue:
    """One problem found in a candidate config.

    Attributes:
        path: dotted path of the value (`logging.level`, `providers[1].name`), `""` for the
            document itself.
        message: what is wrong, never containing a secret value.
        origin: where to look: `file:line:col`, `env:APP_X`, `etcd:key@rev`, `default`, or
            `None` when unknown.
    """

    path: str = attrs.field(converter=one_line)
    message: str = attrs.field(converter=one_line)
    origin: str | None = attrs.field(default=None, converter=attrs.converters.optional(one_line))

    def __str__(self) -> str:
        head = f"{self.origin}: " if self.origin else ""
        where = f"{self.path}: " if self.path else ""
        return f"{head}{where}{self.message}"


class ConfigError(SelreloadError):
    """A config that failed to parse or validate; `issues` lists every problem found."""

    def __init__(self, issues: Iterable[Issue]) -> None:
        self.issues: tuple[Issue, ...] = tuple(issues)
        super().__init__("\n".join(str(i) for i in self.issues))

    def __str__(self) -> str:
        return "\n".join(str(i) for i in self.issues)


class PolicyError(SelreloadError):
    """A policy override that cannot be honoured."""


class ApplyError(SelreloadError):
    """An applier failed while start() applied the initial config."""


class ApplierTimeoutError(SelreloadError, TimeoutError):
    """An applier (or its rollback) did not return within the Reloader's `applier_timeout`."""


class StateError(SelreloadError):
    """The Reloader is not in a state that allows the operation."""


class UnknownVersionError(SelreloadError, KeyError):
    """`rollback()` to a version that `history` does not hold."""

    def __str__(self) -> str:
        # KeyError's str() is the repr of its argument; this one is a sentence.
        return str(self.args[0]) if self.args else ""


class WatchError(SelreloadError, OSError):
    """A directory could not be watched (no inotify watches left, permission denied).

    Also an `OSError` carrying the errno, so `except OSError` around a watch keeps working.
    """


class AuditWriteError(SelreloadError, OSError):
    """An audit record could not be written or fsynced (disk full, file too large, I/O
    error). `errno` is the cause's; the chain is left consistent: the head did not advance
    and the next append starts on a fresh line.

    Attributes:
        record: the record that was not written.
    """

    def __init__(self, errno: int | None, strerror: str, filename: str, record: dict[str, object]) -> None:
        super().__init__(errno, strerror, filename)
        self.record = record

    def __str__(self) -> str:
        return f"{self.filename}: cannot write the audit record: {self.strerror}"
