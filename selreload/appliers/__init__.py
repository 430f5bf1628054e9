"""Built-in appliers: the side effects services most often change live.

Each is an object with `apply(changes, snapshot)` and `rollback(changes, snapshot)` that
validates what it gets (a bad value raises, so the reload rolls back), restores its exact
previous state on rollback, and is safe to read from any thread while a reload runs.

`OpenFeatureProvider` is imported on first use (it needs `openfeature-sdk`);
`StructlogLevel` and `LoguruLevel` import their library on first apply.
"""

from __future__ import annotations

import typing as _typing

from ._flags import FeatureFlags
from ._jwt import JwtTtl
from ._loggers import LoguruLevel, StructlogLevel
from ._logging import LogLevel
from ._netlist import NetworkList
from ._ratelimit import RateLimit

if _typing.TYPE_CHECKING:
    from ._openfeature import OpenFeatureProvider
    from ._sampler import Sampler

__all__ = [
    "FeatureFlags",
    "JwtTtl",
    "LogLevel",
    "LoguruLevel",
    "NetworkList",
    "OpenFeatureProvider",
    "RateLimit",
    "Sampler",
    "StructlogLevel",
]


def __getattr__(name: str) -> _typing.Any:
    # Sampler and OpenFeatureProvider load on first use: one is an OpenTelemetry SDK sampler
    # (the SDK is the `otel` extra), the other needs openfeature-sdk (`openfeature`); the
    # other appliers need only the library.
    if name == "Sampler":
        from ._sampler import Sampler

        globals()["Sampler"] = Sampler
        return Sampler
    if name == "OpenFeatureProvider":
        from ._openfeature import OpenFeatureProvider

        globals()["OpenFeatureProvider"] = OpenFeatureProvider
        return OpenFeatureProvider
    raise AttributeError(f"module 'selreload.appliers' has no attribute {name!r}")
