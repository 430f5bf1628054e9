"""File sources: reading files safely (size, kind, encoding) and YAML with positions.

Every file source reads the same way: open without blocking, `fstat` before reading
(a directory, FIFO or oversized file is refused without reading it), read at most
`max_bytes + 1`, digest the bytes, and parse only when the digest changed. The tree
comes from a fast parse (YAML: rapidyaml, checked to agree with ruamel, or ruamel's safe C
loader); positions (`file:line:col`) from a slower one, only on demand.
"""

from __future__ import annotations

import abc
import hashlib
import logging
import os
import pathlib
import stat
from collections.abc import Callable, Mapping
from typing import Any, Final

from .. import _args
from .._errors import ConfigError, Issue
from .._guard import MAX_BYTES, MAX_NODES
from .._ryml import Sections
from .._typing import Layer, NotifyFn, Watcher

# Module-level names on purpose: YamlFile looks them up here, where tests can replace them.
from .._yaml import document_layer, parse_yaml, yaml_positions

log = logging.getLogger("selreload.source")

_OPEN_FLAGS: Final = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def read_file(
    path: str | os.PathLike[str],
    *,
    where: str,
    max_bytes: int,
    required: bool = True,
    check: Callable[[int], None] | None = None,
) -> bytes | None:
    """The bytes of a regular file, read safely; `None` when an optional file is missing.

    Opens without blocking, `fstat`s before reading (a directory, FIFO or oversized file is
    refused unread; `check(st_mode)` may refuse it too), and reads at most `max_bytes + 1`.
    Four system calls for a small file (open, fstat, read, close): each one releases the
    GIL, and beside busy threads getting it back costs up to a switch interval.

    Raises:
        ConfigError: missing (when required), unreadable, not a regular file, or too large;
            the issue's origin is `where`.
    """

    def error(message: str) -> ConfigError:
        return ConfigError([Issue("", message, where)])

    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        if required:
            raise error("required config file is missing") from None
        return None
    except PermissionError:
        raise error("permission denied: the file is not readable by this process") from None
    except IsADirectoryError:
        raise error("is a directory, expected a config file") from None
    except OSError as exc:
        raise error(f"cannot open: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise error("is a directory, expected a config file")
        if not stat.S_ISREG(st.st_mode):
            raise error("is not a regular file (a FIFO, socket or device), expected a config file")
        if st.st_size > max_bytes:
            raise error(_too_big(st.st_size, max_bytes))
        if check is not None:
            check(st.st_mode)
        chunks: list[bytes] = []
        left = max_bytes + 1  # one byte more tells a file that grew since fstat
        while left > 0:
            want = min(left, max(st.st_size + 1, 4096), 1 << 20)
            chunk = os.read(fd, want)
            chunks.append(chunk)
            left -= len(chunk)
            if len(chunk) < want:
                break  # a short read of a regular file is its end: no read just to see b""
        data = b"".join(chunks)
        if len(data) > max_bytes:
            raise error(_too_big(len(data), max_bytes, at_least=True))
        return data
    except PermissionError:
        raise error("permission denied: the file is not readable by this process") from None
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _too_big(size: int, max_bytes: int, *, at_least: bool = False) -> str:
    more = "more than " if at_least else ""
    return f"file too large: {more}{size:,} bytes, over the limit of {max_bytes:,} (max_bytes)"


class FileSource(abc.ABC):
    """What every file layer shares; subclasses say how to parse and how to locate.

    Args:
        path: the file. Relative paths are resolved when the source is created; errors
            name it as given.
        required: a missing required file is an error; a missing optional one is an
            absent layer.
        max_bytes: larger files are refused before they are read.
        max_nodes: documents holding more values than this (every use of a YAML anchor
            counted) are refused before they are structured (default 100,000).
        watch: `"auto"`, `"inotify"` or `"poll"` (`True` means `"auto"`); `False` to not
            watch the file.
        quiet: seconds after a reload during which further events fold into one more
            reload (the first event always reloads at once). The default 0: events during
            a reload fold into one more, run as soon as it ends (a storm of saves settles
            within two reloads); raise it to reload less often under a storm.
        strict_modes: a world-writable file, or a world-writable directory without the
            sticky bit (anyone could replace the file), is an error instead of a warning
            (like ssh's `StrictModes`).
    """

    format: str = "file"
    deep_text_check: bool = True
    """Scan the text for far-too-deep nesting before the parser sees it (see `document_layer`)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        required: bool = True,
        max_bytes: int = MAX_BYTES,
        max_nodes: int = MAX_NODES,
        watch: str | bool = "auto",
        quiet: float = 0.0,
        strict_modes: bool = False,
    ) -> None:
        where = type(self).__name__
        self._display = _args.path(where, "path", path)
        self.path = pathlib.Path(path).absolute()
        self.quiet = _args.seconds(where, "quiet", quiet)
        self.required = _args.flag(where, "required", required)
        self.max_bytes = _args.positive_count(where, "max_bytes", max_bytes)
        self.watch_mode = _args.watch_mode(where, watch)
        self.max_nodes = _args.positive_count(where, "max_nodes", max_nodes)
        self.strict_modes = _args.flag(where, "strict_modes", strict_modes)
        self._unsafe_modes: str | None = None  # what was last warned about
        self._last: Layer | None = None
        # The last bytes that failed and why: the same bytes fail the same way.
        self._failed: tuple[str, ConfigError] | None = None

    @property
    def name(self) -> str:
        return self._display

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._display!r}, required={self.required})"

    def _error(self, message: str, where: str | None = None) -> ConfigError:
        return ConfigError([Issue("", message, where or self._display)])

    def _read(self) -> bytes | None:
        if os.name == "nt":  # no POSIX modes to read
            return read_file(self.path, where=self._display, max_bytes=self.max_bytes, required=self.required)
        # The sticky bit makes a shared directory safe (/tmp): only a file's owner may
        # rename or delete it there.
        found = []
        try:
            mode = os.stat(self.path.parent).st_mode
            if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
                found.append(
                    f"directory {os.fspath(self.path.parent)} is world-writable (mode {stat.S_IMODE(mode):04o})"
                )
        except OSError:
            pass  # missing or unreadable: reading the file says so

        def check(mode: int) -> None:  # the file's mode, from the fstat of the open file
            if mode & stat.S_IWOTH:
                found.insert(0, f"file {os.fspath(self.path)} is world-writable (mode {stat.S_IMODE(mode):04o})")
            self._modes_found("; ".join(found) or None)

        data = read_file(self.path, where=self._display, max_bytes=self.max_bytes, required=self.required, check=check)
        if data is None:
            self._modes_found("; ".join(found) or None)
        return data

    def _modes_found(self, finding: str | None) -> None:
        """Warn (once per finding) or, with `strict_modes`, refuse when another local user
        could change the config: a world-writable file, or a world-writable directory
        without the sticky bit (they could rename their own file over it)."""
        if finding is not None and self.strict_modes:
            raise self._error(f"{finding}: any local user can change this config (strict_modes)")
        if finding is not None and finding != self._unsafe_modes:
            log.warning("%s: %s: any local user can change this config", self._display, finding)
        self._unsafe_modes = finding

    def load(self) -> Layer:
        data = self._read()
        if data is None:
            self._last = None
            return Layer(self._display, None, "absent")
        digest = hashlib.sha256(data).hexdigest()
        if self._last is not None and self._last.digest == digest:
            return self._last  # same bytes: skip the parse
        if self._failed is not None and self._failed[0] == digest:
            raise self._failed[1]
        try:
            layer = self._layer(data, digest)
        except ConfigError as exc:
            self._failed = (digest, exc)
            raise
        self._last, self._failed = layer, None
        return layer

    def _layer(self, data: bytes, digest: str) -> Layer:
        return document_layer(
            self._display,
            data,
            digest,
            format=self.format,
            parse=self._parse,
            positions=self._positions,
            max_nodes=self.max_nodes,
            deep_text_check=self.deep_text_check,
            within=self._within,
        )

    def _within(self, tree: Any) -> bool:
        """Whether the parser vouches that `tree`, which it just returned, is within the
        budgets (else `check_tree` walks it)."""
        return False

    @abc.abstractmethod
    def _parse(self, text: str) -> Any:
        """The tree, fast. Raises `ConfigError` (with line:col) for a syntax error."""

    def _positions(self, name: str, text: str) -> Mapping[str, str]:
        """`{dotted path: "name:line:col"}` of the values in `text`."""
        return {}

    def watch(self, notify: NotifyFn) -> Watcher | None:
        if self.watch_mode is False:
            return None
        from .._watch import watch_path

        return watch_path(self.path, notify, mode=str(self.watch_mode), quiet=self.quiet)


# --- YAML ---------------------------------------------------------------------------------


class YamlFile(FileSource):
    """A YAML file layer (YAML 1.2): the tree from rapidyaml where it agrees with ruamel.yaml
    (checked per document, `selreload._ryml`), else from ruamel's safe C loader; positions
    from ruamel only when an error or `explain` needs them.

    Args:
        path: the file. Relative paths are resolved when the source is created.
        required: a missing required file is an error; a missing optional one is an
            absent layer.
        max_bytes: larger files are refused before they are read (default 4 MiB).
        max_nodes: documents holding more values are refused (default 100,000).
        watch: `"auto"`, `"inotify"` or `"poll"`; `False` to not watch the file.
    """

    format = "YAML"
    _sections: Sections | None = None

    def _parse(self, text: str) -> Any:
        if self._sections is None:
            # The entries of the last document, reused (made on the first parse, once
            # FileSource.__init__ has set max_nodes: YamlFile adds no __init__).
            self._sections = Sections(max_nodes=self.max_nodes)
        return parse_yaml(self._display, text, max_nodes=self.max_nodes, sections=self._sections)

    def _within(self, tree: Any) -> bool:
        return self._sections is not None and self._sections.within(tree)

    def _positions(self, name: str, text: str) -> Mapping[str, str]:
        return yaml_positions(name, text)
