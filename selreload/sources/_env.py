"""Environment variables as a layer: `APP_LOGGING__LEVEL=debug` -> `logging.level`."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from .._errors import ConfigError, Issue
from .._paths import join
from .._typing import Layer, NotifyFn, Watcher
from .._values import EnvText, printable, text_problem
from ._service_links import service_links

log = logging.getLogger("selreload.env")


class Env:
    """Variables named `{prefix}{KEY}` as a layer; `__` nests, keys are lowercased.

    Values stay text (`EnvText`) until the structurer parses them by the field's type: a
    bool takes `true/false/1/0`, an int `8080`, a duration `15m`, a list or mapping JSON.
    Nothing is guessed: `APP_PORT=eighty` is an error naming `env:APP_PORT`. A variable
    that matches no field is an unknown key, with its variable as the origin.

    Kubernetes service-link variables (`MYAPP_PORT=tcp://10.96.0.12:8080`,
    `MYAPP_SERVICE_HOST=10.96.0.12`, ...) are not settings: recognised by name, value and
    their service's `_SERVICE_HOST`, they are skipped (logged once at INFO), even where
    one is named like a field (`port`).

    Args:
        prefix: only variables starting with it are read (case-sensitive).
        environ: the variables to read (default: `os.environ`, read at every load).
        ignore: variable names under the prefix that are not settings (`APP_ENV`).
        service_links: `"ignore"` (the default) skips Kubernetes service links;
            `"read"` reads them as settings like any other variable.
    """

    def __init__(
        self,
        prefix: str = "APP_",
        environ: Mapping[str, str] | None = None,
        *,
        ignore: Iterable[str] = (),
        service_links: Literal["ignore", "read"] = "ignore",
    ):
        if service_links not in ("ignore", "read"):
            raise ValueError(f"service_links must be 'ignore' or 'read', got {service_links!r}")
        self.prefix = prefix
        self.environ = environ
        self.ignore = frozenset(ignore)
        self.service_links = service_links
        self._last: Layer | None = None
        self._logged_links: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return f"env:{self.prefix}*"

    def __repr__(self) -> str:
        return f"Env(prefix={self.prefix!r})"

    def load(self) -> Layer:
        env = os.environ if self.environ is None else self.environ
        items = sorted((k, v) for k, v in env.items() if k.startswith(self.prefix) and k not in self.ignore)
        if self.service_links == "ignore" and items:
            links = service_links(env, (k for k, _ in items))
            if links:
                items = [(k, v) for k, v in items if k not in links]
                self._log_links(links)
        h = hashlib.sha256()
        for key, value in items:
            h.update(f"{key}\0{value}\0".encode("utf-8", "surrogatepass"))
        digest = h.hexdigest()
        if self._last is not None and self._last.digest == digest:
            return self._last
        tree: dict[str, Any] = {}
        where: dict[str, str] = {}
        setter: dict[str, str] = {}  # path -> the variable that set it (to name conflicts)
        issues: list[Issue] = []
        for var, value in items:
            origin = f"env:{printable(var)}"
            if text_problem(var) is not None:
                issues.append(Issue("", "cannot name a setting: the variable name is not valid text", origin))
                continue
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

    def _log_links(self, links: frozenset[str]) -> None:
        # Once per distinct set: the same pod environment is read at every reload.
        if links != self._logged_links:
            self._logged_links = links
            log.info(
                "%s: ignoring %d Kubernetes service-link variable(s), not settings: %s"
                " (Env(service_links='read') reads them)",
                self.name,
                len(links),
                ", ".join(sorted(links)),
            )

    def watch(self, notify: NotifyFn) -> Watcher | None:
        # A process's environment does not change from outside: nothing to watch.
        return None
