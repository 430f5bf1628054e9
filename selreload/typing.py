"""Types for people who write sources, watchers, appliers and recorders for selreload.

Apps that only declare config and register the built-in appliers do not need this
module. To plug in something of your own, annotate against these:

- `Source` reads one layer (`load() -> Layer`) and says when it may have changed
  (`watch(notify) -> Watcher | None`); `Reporter` is the optional extra of a source that
  wants every reload's result (etcd reports ACK/NACK).
- `Applier` is the object form of a side effect (`apply` / `rollback`); `ApplierFunc`
  the plain-function form.
- `Recorder` is the contract of an output of every reload attempt (the metrics, the audit
  log and the log line are recorders): `record(result, live)` with the `ReloadResult`
  and the `Live` state after it.
"""

from __future__ import annotations

from ._live import Live
from ._record import Recorder
from ._typing import Applier, ApplierFunc, Layer, NotifyFn, Reporter, Source, Watcher

__all__ = [
    "Applier",
    "ApplierFunc",
    "Layer",
    "Live",
    "NotifyFn",
    "Recorder",
    "Reporter",
    "Source",
    "Watcher",
]
