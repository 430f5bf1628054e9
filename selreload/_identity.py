"""Who a Reloader is among the processes of one service: `hostname:pid` unless named."""

from __future__ import annotations

import os
import socket

from . import _args

_HOST: list[str] = []


def hostname() -> str:
    if not _HOST:
        _HOST.append(socket.gethostname())
    return _HOST[0]


_NAME: list[str] = []  # `hostname:pid` of this process, forgotten in a forked child


def default_instance() -> str:
    """`hostname:pid`: a process forked after it was first asked (gunicorn --preload)
    names itself, not its parent."""
    if not _NAME:
        _NAME.append(f"{hostname()}:{os.getpid()}")
    return _NAME[0]


os.register_at_fork(after_in_child=_NAME.clear)


class Identity:
    """A Reloader's `instance`: the name given, or `default_instance()` of the moment."""

    __slots__ = ("given",)

    def __init__(self, given: str | None) -> None:
        # In audit records, logs, metric labels, etcd keys and control-directory file names.
        self.given = _args.text("Reloader", "instance", given).strip() if given is not None else None
        if self.given == "":
            raise ValueError(f"Reloader: instance must not be blank, got {given!r}")

    def __call__(self) -> str:
        return self.given if self.given is not None else default_instance()

    def __repr__(self) -> str:
        return f"<instance {self()!r}>"
