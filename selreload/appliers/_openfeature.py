"""`OpenFeatureProvider`: the live flags of a config, through the OpenFeature SDK.

Imported only when `selreload.appliers.OpenFeatureProvider` is first used: it needs
`openfeature-sdk` (`pip install 'selreload[openfeature]'`).
"""

from __future__ import annotations

import math
import threading
import types
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata

from .._change import UNSET, Change
from .._result import Outcome, ReloadResult
from .._snapshot import Snapshot
from ._common import Undo, flag_of, paths_of, updated

T = TypeVar("T")

_MAX_DEPTH = 32


def _freeze(value: Any, path: str, depth: int = 0) -> Any:
    """A flag value as immutable data, or `ValueError`: bool, int, finite float, str, and
    lists and string-keyed mappings of those (OpenFeature's `FlagValueType`)."""
    if depth > _MAX_DEPTH:
        raise ValueError(f"{path}: a flag value nests deeper than {_MAX_DEPTH} levels")
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path}: a flag value must be a finite number, got {value!r}")
        return value
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{path}: object flag keys are strings, got {k!r}")
            out[k] = _freeze(v, f"{path}.{k}", depth + 1)
        return types.MappingProxyType(out)
    if isinstance(value, list | tuple):
        return tuple(_freeze(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value))
    raise ValueError(
        f"{path}: a flag is a bool, int, float, string, list or mapping, got {type(value).__name__} {value!r}"
    )


def _thaw(value: Any) -> Any:
    """A fresh `dict`/`list` copy of a frozen object flag: callers may mutate what they get."""
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


class OpenFeatureProvider(AbstractProvider):
    """An OpenFeature provider serving the flags of the live config.

    It is three things at once: the provider (`api.set_provider_and_wait(provider)`), the
    applier of the flags' field (`reloader.on("feature_flags", provider)`: a mapping field
    whose keys are the flags, or a plain field whose path is the flag's key), and a
    recorder of reload attempts for its events (`Reloader(..., recorders=[provider])`).

    Flags are typed by their values: bool, string, int, float, and object (a list or a
    mapping). A flag from the config resolves with reason `STATIC` and the config version
    in `flag_metadata["config_version"]`; an unknown key resolves to the default with
    `FLAG_NOT_FOUND`, another type with `TYPE_MISMATCH` (reason `ERROR` both). An int flag
    serves a float request (`ratio: 1` in YAML).

    Events, once an attempt is over (never from inside the transaction, so a reload that
    rolls back announces no change): `PROVIDER_CONFIGURATION_CHANGED` with `flags_changed`
    when a reload changed flags; `PROVIDER_STALE` when a reload was invalid or rolled back
    (the flags served are the last good ones, the sources hold something else);
    `PROVIDER_ERROR` when a rollback failed (DEGRADED); `PROVIDER_READY` at the next
    successful attempt after one of those.

    Like `FeatureFlags`, every apply swaps in one immutable mapping: evaluations never
    lock and never see half of a reload; rollback puts the exact previous mapping back.

    Args:
        flags: the flags until the config is applied.
        name: the provider's metadata name, and how metrics and spans name the applier.
    """

    def __init__(self, flags: Mapping[str, Any] | None = None, *, name: str = "selreload") -> None:
        super().__init__()
        self.name = name
        self._lock = threading.Lock()
        self._undo: Undo[Mapping[str, Any]] = Undo()
        self._flags: Mapping[str, Any] = types.MappingProxyType({k: _freeze(v, k) for k, v in (flags or {}).items()})
        self._version: int | None = None
        self._changed: list[str] = []  # keys applied since the last commit
        self._unwell = False

    def __repr__(self) -> str:
        return f"<OpenFeatureProvider {self.name!r} {len(self._flags)} flags>"

    def flags(self) -> Mapping[str, Any]:
        """Every flag, as an immutable mapping that later reloads do not change."""
        return self._flags

    # --- OpenFeature ----------------------------------------------------------------------

    def get_metadata(self) -> Metadata:
        return Metadata(name=self.name)

    def _resolve(self, key: str, default: T, kind: type | tuple[type, ...]) -> FlagResolutionDetails[T]:
        flags, version = self._flags, self._version  # one read each: no torn view
        if key not in flags:
            return FlagResolutionDetails(
                value=default,
                reason=Reason.ERROR,
                error_code=ErrorCode.FLAG_NOT_FOUND,
                error_message=f"no flag {key!r} in the config",
            )
        value = flags[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # `ratio: 1` in YAML is a float flag too
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
            return FlagResolutionDetails(
                value=default,
                reason=Reason.ERROR,
                error_code=ErrorCode.TYPE_MISMATCH,
                error_message=f"flag {key!r} is a {type(_thaw(value)).__name__}",
            )
        metadata = {} if version is None else {"config_version": version}
        return FlagResolutionDetails(value=_thaw(value), reason=Reason.STATIC, flag_metadata=metadata)

    def resolve_boolean_details(
        self, flag_key: str, default_value: bool, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, default_value, bool)

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, str)

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._resolve(flag_key, default_value, int)

    def resolve_float_details(
        self, flag_key: str, default_value: float, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[float]:
        return self._resolve(flag_key, default_value, float)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return self._resolve(flag_key, default_value, (Mapping, tuple))

    # --- selreload ------------------------------------------------------------------------

    def apply(self, changes: Sequence[Change], snapshot: Snapshot[Any]) -> None:
        """Set or remove each flag; raises `ValueError` (changing nothing) on a value that
        is not a flag value."""
        updates: dict[str, Any] = {}
        for change in changes:
            flag = flag_of(change, snapshot.config)
            updates[flag] = UNSET if change.new is UNSET else _freeze(change.new, change.path)
        with self._lock:
            previous = self._flags
            self._undo.push(paths_of(changes), previous)
            self._flags = updated(previous, updates)
            self._version = snapshot.version
            self._changed.extend(updates)

    def rollback(self, changes: Sequence[Change], snapshot: Snapshot[Any]) -> None:
        """Swap back the exact flags that were live before `apply`."""
        with self._lock:
            previous = self._undo.pop(paths_of(changes))
            if previous is None:
                flags = dict(self._flags)
                for change in changes:
                    flag = flag_of(change, snapshot.config)
                    if change.old is UNSET:
                        flags.pop(flag, None)
                    else:
                        flags[flag] = _freeze(change.old, change.path)
                previous = types.MappingProxyType(flags)
            self._flags = previous
            self._version = snapshot.version
            self._changed.clear()

    def record(self, result: ReloadResult, live: Any) -> None:
        """The `selreload.typing.Recorder` of `recorders=`: emits the events of one attempt."""
        with self._lock:
            changed, self._changed = sorted(set(self._changed)), []
            self._version = result.version
            was_unwell = self._unwell
            if result.outcome in (Outcome.INVALID, Outcome.ROLLED_BACK, Outcome.DEGRADED):
                self._unwell = True
            elif result.outcome in (Outcome.APPLIED, Outcome.UNCHANGED, Outcome.REJECTED):
                self._unwell = False
        metadata: dict[str, bool | str | int | float] = {"config_version": result.version}
        if result.outcome is Outcome.DEGRADED:
            self.emit_provider_error(
                ProviderEventDetails(message="a rollback failed: flags may be inconsistent", metadata=metadata)
            )
        elif result.outcome in (Outcome.INVALID, Outcome.ROLLED_BACK):
            self.emit_provider_stale(
                ProviderEventDetails(
                    message=f"reload {result.outcome.value}: serving the last good flags", metadata=metadata
                )
            )
        else:
            if was_unwell:
                self.emit_provider_ready(ProviderEventDetails(message="reload succeeded", metadata=metadata))
            if changed:
                self.emit_provider_configuration_changed(
                    ProviderEventDetails(flags_changed=changed, message="config reloaded", metadata=metadata)
                )
