"""Built-in appliers: the side effects services most often change live.

Each is an object with `apply(changes, snapshot)` and `rollback(changes, snapshot)` that
validates what it gets (a bad value raises, so the reload rolls back), restores its exact
previous state on rollback, and is safe to read from any thread while a reload runs.
"""

from __future__ import annotations

import typing as _typing

from ._flags import FeatureFlags
from ._jwt import JwtTtl
from ._logging import LogLevel

if _typing.TYPE_CHECKING:
    from ._sampler import Sampler

__all__ = ["FeatureFlags", "JwtTtl", "LogLevel", "Sampler"]


def __getattr__(name: str) -> _typing.Any:
    # Sampler loads on first use: it is an OpenTelemetry SDK sampler, and the SDK is an
    # optional dependency (`selreload[otel]`); the other appliers need only the library.
    if name == "Sampler":
        from ._sampler import Sampler

        globals()["Sampler"] = Sampler
        return Sampler
    raise AttributeError(f"module 'selreload.appliers' has no attribute {name!r}")
