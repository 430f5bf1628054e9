"""Built-in appliers: the side effects services most often change live.

Each is an object with `apply(changes, snapshot)` and `rollback(changes, snapshot)` that
validates what it gets (a bad value raises, so the reload rolls back), restores its exact
previous state on rollback, and is safe to read from any thread while a reload runs.

`OpenFeatureProvider` is imported on first use (it needs `openfeature-sdk`);
`StructlogLevel` and `LoguruLevel` import their library on first apply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._flags import FeatureFlags
from ._jwt import JwtTtl
from ._loggers import LoguruLevel, StructlogLevel
from ._logging import LogLevel
from ._netlist import NetworkList
from ._ratelimit import RateLimit
from ._sampler import Sampler

if TYPE_CHECKING:
    from ._openfeature import OpenFeatureProvider

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


def __getattr__(name: str) -> Any:
    # Lazy: `import selreload.appliers` must work without openfeature-sdk installed.
    if name == "OpenFeatureProvider":
        from ._openfeature import OpenFeatureProvider

        return OpenFeatureProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
