"""The protocols the stages meet at: `Source`, `Layer`, `Watcher`, `Applier` (public as `selreload.typing`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

import attrs

from ._change import Change
from ._snapshot import Snapshot

if TYPE_CHECKING:
    from ._result import ReloadResult


def _no_origins() -> Mapping[str, str]:
    return {}


@attrs.frozen(eq=False)
class Layer:
    """What one source read: a plain tree plus a way to say where each value came from.

    Attributes:
        name: how errors name the layer (`config/production.yaml`, `env:APP_`).
        tree: nested dicts, lists and scalars; `None` when an optional layer is absent.
        digest: identifies the bytes read; an unchanged digest means an unchanged tree.
        locate: returns `{dotted path: origin}` (`file:line:col`, `env:APP_X`); called
            lazily, only to place errors and for `explain`, because positions cost a
            slower parse. Paths address list items as `a.b[0]`.
        revision: the store revision the layer was read at (etcd's `mod_revision`);
            `None` for sources without revisions.
    """

    name: str
    tree: Mapping[str, Any] | None
    digest: str
    locate: Callable[[], Mapping[str, str]] = _no_origins
    revision: int | None = attrs.field(default=None, kw_only=True)


# Real aliases, not strings: users import them from `selreload.typing` and may resolve
# annotations at runtime (`typing.get_type_hints`).
NotifyFn: TypeAlias = Callable[[str], None]
"""What a watcher calls when its source may have changed, with the trigger name."""


@runtime_checkable
class Watcher(Protocol):
    """A running watch; `stop()` ends it and joins every thread it started."""

    def stop(self) -> None: ...


@runtime_checkable
class Source(Protocol):
    """One configuration layer. The Reloader asks it to `load()` and to `watch()`; it never
    knows how the source reads or watches (files, env, etcd)."""

    @property
    def name(self) -> str: ...

    def load(self) -> Layer:
        """Read the layer now. Raises `ConfigError` when it cannot be parsed."""
        ...

    def watch(self, notify: NotifyFn) -> Watcher | None:
        """Start calling `notify(trigger)` when the layer may have changed; `None` if the
        source cannot change (or is not watched)."""
        ...


@runtime_checkable
class Reporter(Protocol):
    """Optional for a source: told the result of every reload attempt (etcd ACK/NACK)."""

    def report(self, result: ReloadResult, snapshot: Snapshot[Any]) -> None: ...


@runtime_checkable
class Applier(Protocol):
    """A side effect of a config change that can be undone.

    `apply` gets every change at or under the path it was registered for, in one call, and
    the snapshot about to go live; `rollback` gets the same changes and the snapshot that
    stays live. A plain function `(changes, snapshot) -> None` is an applier too: it is
    rolled back by calling it with every change inverted, so it must be idempotent.
    """

    def apply(self, changes: Sequence[Change], snapshot: Snapshot[Any]) -> None: ...

    def rollback(self, changes: Sequence[Change], snapshot: Snapshot[Any]) -> None: ...


ApplierFunc: TypeAlias = Callable[[Sequence[Change], Snapshot[Any]], None]
"""A plain-function applier: `(changes, snapshot) -> None`, rolled back by a second call
with every change inverted."""
