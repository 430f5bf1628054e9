"""A secrets directory as a layer: a file per key (`/run/secrets/db__password`), as Docker and Kubernetes mount it."""

from __future__ import annotations

import hashlib
import os
import pathlib
from typing import Final

from .. import _args
from .._errors import ConfigError, Issue
from .._typing import Layer, NotifyFn, Watcher
from .._values import printable
from ._file import read_file
from ._nest import MAX_SECRET_BYTES, nested_layer, secret_text

MAX_FILES: Final = 10_000
"""Most files a secrets directory may hold: a directory past it is refused, not read."""

_K8S_DATA: Final = "..data"
_ATTEMPTS: Final = 3  # reads of one Kubernetes version before giving up (each swap retires one)


class _Retired(Exception):
    """The Kubernetes version directory being read was removed meanwhile: read the new one."""


class SecretsDir:
    """Every file in a directory is one setting: its name the key, its content the value.

    `database__password` sets `database.password` (`__` nests, names are lowercased, like
    `Env`). Values are text parsed by the field's type (`"8080"` for an int), with one
    trailing newline stripped. Names starting with `.` (Kubernetes' `..data` and version
    directories, editor files) and subdirectories are not settings. The origin of a value
    is its file: `secrets:/run/secrets/database__password`. The source never logs a value.

    A Kubernetes Secret volume (`name -> ..data/name`, `..data -> ..2026_05_01_...`) is read
    through one resolution of `..data`, so every value comes from the same version even
    when the kubelet swaps `..data` during the read; the swap is the watched event that
    rotates a `secret(hot=True)` field live (a restart-only secret reports restart pending).

    Args:
        path: the directory (`/run/secrets`).
        prefix: only files whose name starts with it are read, without it as the key
            (case-sensitive).
        required: a missing directory is an error; otherwise an absent layer.
        watch: `"auto"`, `"inotify"` or `"poll"`; `False` to not watch the directory.
        quiet: seconds after a reload during which further events fold into one more
            (default 0: events during a reload fold into one more, run when it ends).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        prefix: str = "",
        required: bool = False,
        watch: str | bool = "auto",
        quiet: float = 0.0,
    ) -> None:
        self._display = _args.path("SecretsDir", "path", path)
        self.path = pathlib.Path(path).absolute()
        self.prefix = _args.text("SecretsDir", "prefix", prefix, empty=True)
        self.required = _args.flag("SecretsDir", "required", required)
        self.watch_mode = _args.watch_mode("SecretsDir", watch)
        self.quiet = _args.seconds("SecretsDir", "quiet", quiet)
        self._last: Layer | None = None

    @property
    def name(self) -> str:
        return f"secrets:{self._display}"

    def __repr__(self) -> str:
        return f"SecretsDir({self._display!r}, prefix={self.prefix!r}, required={self.required})"

    def _error(self, message: str) -> ConfigError:
        return ConfigError([Issue("", message, self.name)])

    def load(self) -> Layer:
        if not self.path.exists():
            if self.required:
                raise self._error("required secrets directory is missing")
            self._last = None
            return Layer(self.name, None, "absent")
        if not self.path.is_dir():
            raise self._error("is not a directory, expected a secrets directory")
        for _ in range(_ATTEMPTS):
            try:
                files = self._read_all()
                break
            except _Retired:
                continue
        else:
            raise self._error("the Kubernetes ..data version kept changing while it was read: try again")
        h = hashlib.sha256()
        for name, data in files:
            h.update(f"{name}\0{len(data)}\0".encode("utf-8", "surrogateescape") + data)
        digest = h.hexdigest()
        if self._last is not None and self._last.digest == digest:
            return self._last
        entries: list[tuple[str, str, str, str]] = []
        issues: list[Issue] = []
        for name, data in files:
            origin = f"secrets:{os.path.join(self._display, str(printable(name)))}"
            text = secret_text(data)
            if text is None:
                issues.append(Issue("", "not UTF-8 text", origin))
                continue
            entries.append((name, name[len(self.prefix) :], text, origin))
        layer = nested_layer(self.name, digest, entries, issues, what="the file name")
        self._last = layer
        return layer

    def _read_all(self) -> list[tuple[str, bytes]]:
        """`(file name, bytes)` of every setting, sorted, all from one version."""
        base = str(self.path)
        data_link = os.path.join(base, _K8S_DATA)
        version = os.path.realpath(data_link) if os.path.isdir(data_link) else None
        # A Kubernetes volume: the version directory holds the same names, without the
        # symlinks that a swap re-points one by one under a reader.
        where = version or base
        try:
            with os.scandir(where) as it:
                names = sorted(e.name for e in it if not e.name.startswith(".") and e.name.startswith(self.prefix))
        except FileNotFoundError:
            if version is not None:
                raise _Retired from None
            raise self._error("the secrets directory went away while it was read") from None
        except OSError as exc:
            raise self._error(f"cannot list: {exc.strerror or exc}") from None
        if len(names) > MAX_FILES:
            raise self._error(f"too many files: {len(names):,}, over the limit of {MAX_FILES:,}")
        out: list[tuple[str, bytes]] = []
        issues: list[Issue] = []
        for name in names:
            full = os.path.join(where, name)
            if os.path.isdir(full):
                continue  # a directory is not a setting
            origin = f"secrets:{os.path.join(self._display, str(printable(name)))}"
            try:
                data = read_file(full, where=origin, max_bytes=MAX_SECRET_BYTES, required=False)
            except ConfigError as exc:
                issues += exc.issues
                continue
            if data is None:  # removed since the listing
                if version is not None:
                    raise _Retired
                continue
            out.append((name, data))
        if issues:
            raise ConfigError(issues)
        return out

    def watch(self, notify: NotifyFn) -> Watcher | None:
        if self.watch_mode is False:
            return None
        from .._watch import watch_path

        return watch_path(self.path, notify, mode=str(self.watch_mode), quiet=self.quiet, directory=True)
