"""Environment variables as a layer: `APP_LOGGING__LEVEL=debug` -> `logging.level`."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from typing import Any

from .._errors import ConfigError, Issue
from .._paths import join
from .._typing import Layer, NotifyFn, Watcher
from .._values import EnvText


class Env:
    """Variables named `{prefix}{KEY}` as a layer; `__` nests, keys are lowercased.

    Values stay text (`EnvText`) until the structurer parses them by the field's type: a
    bool takes `true/false/1/0`, an int `8080`, a duration `15m`, a list or mapping JSON.
    Nothing is guessed: `APP_PORT=eighty` is an error naming `env:APP_PORT`. A variable
    that matches no field is an unknown key, with its variable as the origin.

    Args:
        prefix: only variables starting with it are read (case-sensitive).
        environ: the variables to read (default: `os.environ`, read at every load).
        ignore: variable names under the prefix that are not settings (`APP_ENV`).
    """

    def __init__(self, prefix: str = "APP_", environ: Mapping[str, str] | None = None, *, ignore: Iterable[str] = ()):
        self.prefix = prefix
        self.environ = environ
        self.ignore = frozenset(ignore)
        self._last: Layer | None = None

    @property
    def name(self) -> str:
        return f"env:{self.prefix}*"

    def __repr__(self) -> str:
        return f"Env(prefix={self.prefix!r})"

    def load(self) -> Layer:
        env = os.environ if self.environ is None else self.environ
        items = sorted((k, v) for k, v in env.items() if k.startswith(self.prefix) and k not in self.ignore)
        h = hashlib.sha256()
        for key, value in items:
            h.update(f"{key}\0{value}\0".encode("utf-8", "surrogateescape"))
        digest = h.hexdigest()
        if self._last is not None and self._last.digest == digest:
            return self._last
        tree: dict[str, Any] = {}
        where: dict[str, str] = {}
        setter: dict[str, str] = {}  # path -> the variable that set it (to name conflicts)
        issues: list[Issue] = []
        for var, value in items:
            origin = f"env:{var}"
            parts = [p.lower() for p in var[len(self.prefix) :].split("__")]
            if not all(parts):
                issues.append(Issue("", "cannot name a setting: empty part between '__' separators", origin))
                continue
            node = tree
            path = ""
            for depth, part in enumerate(parts):
                path = join(path, part)
                last = depth == len(parts) - 1
                held = node.get(part)
                if held is not None and (last or not isinstance(held, dict)):
                    issues.append(Issue(path, f"set by both {setter[path]} and {var}: use one", origin))
                    break
                where.setdefault(path, origin)
                setter.setdefault(path, var)
                if last:
                    node[part] = EnvText(value)
                else:
                    node = node.setdefault(part, {})
        if issues:
            raise ConfigError(issues)
        layer = Layer(self.name, tree or None, digest, lambda: where)
        self._last = layer
        return layer

    def watch(self, notify: NotifyFn) -> Watcher | None:
        # A process's environment does not change from outside: nothing to watch.
        return None
