"""Environment variables as a layer: `APP_LOGGING__LEVEL=debug` -> `logging.level`."""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib
from collections.abc import Iterable, Mapping
from typing import Literal

from .. import _args
from .._errors import ConfigError, Issue
from .._typing import Layer, NotifyFn, Watcher
from .._values import printable
from ._file import read_file
from ._nest import MAX_SECRET_BYTES, nested_layer, secret_text
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

    `{prefix}{KEY}_FILE=/run/secrets/db` (the Docker and Kubernetes convention) sets `KEY`
    to the content of that file, its trailing newline stripped; the file is watched, so a
    rotated secret reloads. Setting both `KEY` and `KEY_FILE` is an error.

    Args:
        prefix: only variables starting with it are read (case-sensitive).
        environ: the variables to read (default: `os.environ`, read at every load).
        ignore: variable names under the prefix that are not settings (`APP_ENV`).
        service_links: `"ignore"` (the default) skips Kubernetes service links;
            `"read"` reads them as settings like any other variable.
        file_suffix: the suffix of variables that name a file holding the value; `None`
            reads them as plain values (a field whose own name ends in `_file`).
        watch: how to watch the files `*_FILE` variables name (`"auto"`, `"inotify"`,
            `"poll"`), or `False`.
    """

    def __init__(
        self,
        prefix: str = "APP_",
        environ: Mapping[str, str] | None = None,
        *,
        ignore: Iterable[str] = (),
        service_links: Literal["ignore", "read"] = "ignore",
        file_suffix: str | None = "_FILE",
        watch: str | bool = "auto",
    ):
        _args.one_of("Env", "service_links", service_links, ("ignore", "read"))
        if prefix == "" and environ is None:
            raise ValueError(
                "Env: prefix must not be empty when reading os.environ: every variable (PATH, HOME, ...) "
                "would be a setting"
            )
        self.prefix = _args.text("Env", "prefix", prefix, empty=True)
        # "" reads as None, as it always did: no variable names a file.
        self.file_suffix = _args.text("Env", "file_suffix", file_suffix) if file_suffix not in (None, "") else None
        self.watch_mode = _args.watch_mode("Env", watch)
        self.environ = _args.environ("Env", environ)
        self.ignore = frozenset(_args.each("Env", "ignore", ignore, lambda n, v: _args.text("Env", n, v)))
        self.service_links = service_links
        self._last: Layer | None = None
        self._logged_links: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return f"env:{self.prefix}*"

    def __repr__(self) -> str:
        return f"Env(prefix={self.prefix!r})"

    def load(self) -> Layer:
        items = self._items()
        files, issues = self._read_files(items)
        h = hashlib.sha256()
        for key, value in items:
            h.update(f"{key}\0{value}\0".encode("utf-8", "surrogatepass"))
            if key in files:  # the content, length first: a rotated file is a new layer
                h.update(b"%d\0%b" % (len(files[key]), files[key]))
        digest = h.hexdigest()
        if self._last is not None and self._last.digest == digest and not issues:
            return self._last
        entries = []
        for var, value in items:
            origin = f"env:{printable(var)}"
            key = var[len(self.prefix) :]
            if var in files:
                text = secret_text(files[var])
                if text is None:
                    issues.append(Issue("", f"file {value}: not UTF-8 text", origin))
                    continue
                key, value = key[: -len(self.file_suffix or "")], text
            entries.append((var, key, value, origin))
        layer = nested_layer(self.name, digest, entries, issues, what="the variable name")
        self._last = layer
        return layer

    def _items(self) -> list[tuple[str, str]]:
        """The variables that are settings, sorted by name."""
        env = os.environ if self.environ is None else self.environ
        items = sorted(
            (k, v) for k, v in env.items() if type(k) is str and k.startswith(self.prefix) and k not in self.ignore
        )
        if self.service_links == "ignore" and items:
            links = service_links(env, (k for k, _ in items))
            if links:
                items = [(k, v) for k, v in items if k not in links]
                self._log_links(links)
        return items

    def _file_vars(self, items: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """The `(variable, path)` of the variables that name a file (`APP_DB__PASSWORD_FILE`)."""
        suffix = self.file_suffix
        if suffix is None:
            return []
        return [(k, v) for k, v in items if k.endswith(suffix) and len(k) - len(suffix) > len(self.prefix)]

    def _read_files(self, items: list[tuple[str, str]]) -> tuple[dict[str, bytes], list[Issue]]:
        files: dict[str, bytes] = {}
        issues: list[Issue] = []
        for var, path in self._file_vars(items):
            origin = f"env:{printable(var)}"
            if not path.strip():
                issues.append(Issue("", "empty: expected the path of a file holding the value", origin))
                continue
            try:
                data = read_file(path, where=origin, max_bytes=MAX_SECRET_BYTES, required=False)
            except ConfigError as exc:
                # The path is not the secret: name it, the content never.
                issues += [Issue(i.path, f"file {path}: {i.message}", i.origin) for i in exc.issues]
                continue
            if data is None:
                issues.append(Issue("", f"file {path}: no such file", origin))
                continue
            files[var] = data
        return files, issues

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
        # A process's environment does not change from outside; the files its `*_FILE`
        # variables name do (a rotated secret).
        paths = [pathlib.Path(p) for _, p in self._file_vars(self._items()) if p.strip()]
        if not paths or self.watch_mode is False:
            return None
        from .._watch import watch_paths

        return watch_paths(paths, notify, mode=str(self.watch_mode))
