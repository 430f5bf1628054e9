"""Built-in appliers: the side effects services most often change live.

Each is an object with `apply(changes, snapshot)` and `rollback(changes, snapshot)` that
validates what it gets (a bad value raises, so the reload rolls back), restores its exact
previous state on rollback, and is safe to read from any thread while a reload runs.
"""

from __future__ import annotations

from ._flags import FeatureFlags
from ._jwt import JwtTtl
from ._logging import LogLevel
from ._sampler import Sampler

__all__ = ["FeatureFlags", "JwtTtl", "LogLevel", "Sampler"]
