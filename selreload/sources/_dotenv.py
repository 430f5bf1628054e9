"""A `.env` file as a layer: python-dotenv's syntax, read without python-dotenv, origins `file:line`.

The syntax, as python-dotenv (and so pydantic-settings and dynaconf) reads it:

    # a comment
    export APP_LOGGING__LEVEL=debug     # `export` is optional; an inline comment after a space
    APP_NAME='literal $text'             # single quotes: no escapes but \\' and \\\\, no ${...}
    APP_GREETING="line one\\nline two"   # double quotes: \\n \\t \\" \\\\ ... escapes
    APP_CERT="-----BEGIN CERTIFICATE-----
    ...
    -----END CERTIFICATE-----"          # quoted values may span lines
    APP_URL=postgres://${DB_HOST:-localhost}/app   # ${VAR} and ${VAR:-default}

Where python-dotenv warns and skips a line it cannot parse, this refuses it (INVALID,
`file:line`), and a key set twice is an error, not "the last one wins".
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from .. import _args
from .._errors import Issue
from .._typing import Layer
from ._file import FileSource
from ._nest import nested_layer

_KEY = re.compile(r"[^=#\s'\"]+|'[^'\n]*'")
_EXPORT = re.compile(r"export[ \t]+")
_VAR = re.compile(r"\$\{(?P<name>[^}:]*)(?::-(?P<default>[^}]*))?\}")
_DOUBLE_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_DOUBLE_ESCAPES["v"] = "\v"


class DotEnvSyntaxError(ValueError):
    """A line of a `.env` file that cannot be read; `line` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def parse_dotenv(text: str) -> list[tuple[str, str | None, bool, int]]:
    """The bindings of a `.env` text: `(key, value, expand, line)`, in file order.

    `value` is `None` for a bare `KEY` line; `expand` is false for single-quoted values
    (no `${VAR}` interpolation there).

    Raises:
        DotEnvSyntaxError: an unterminated quote, a missing `=`, or text after a quoted value.
    """
    out: list[tuple[str, str | None, bool, int]] = []
    pos, n, line = 0, len(text), 1
    while pos < n:
        start_line = line
        end = text.find("\n", pos)
        end = n if end < 0 else end
        head = text[pos:end].lstrip(" \t")
        if not head.strip() or head.startswith("#"):
            pos, line = end + 1, line + 1
            continue
        i = end - len(head)  # where the key starts
        m = _EXPORT.match(text, i)
        if m is not None and _KEY.match(text, m.end()):
            i = m.end()
        k = _KEY.match(text, i)
        if k is None:
            raise DotEnvSyntaxError(start_line, "expected KEY=VALUE")
        key = k.group().strip("'")
        i = k.end()
        while i < end and text[i] in " \t":
            i += 1
        if i >= end or text[i] == "#":
            out.append((key, None, False, start_line))
            pos, line = end + 1, line + 1
            continue
        if text[i] != "=":
            raise DotEnvSyntaxError(start_line, f"expected '=' after {key}")
        i += 1
        while i < end and text[i] in " \t":
            i += 1
        if i < n and text[i] in "'\"":
            value, i = _quoted(text, i, start_line)
            line += text.count("\n", pos, i)
            expand = text[i - 1] == '"'
            rest_end = text.find("\n", i)
            rest_end = n if rest_end < 0 else rest_end
            rest = text[i:rest_end].strip(" \t\r")
            if rest and not rest.startswith("#"):
                raise DotEnvSyntaxError(line, f"{key}: unexpected text after the closing quote")
            end = rest_end
        else:
            raw = text[i:end].rstrip("\r")
            value = re.sub(r"[ \t]+#.*", "", raw).rstrip(" \t")
            expand = True
        out.append((key, value, expand, start_line))
        pos, line = end + 1, line + 1
    return out


def _quoted(text: str, i: int, line: int) -> tuple[str, int]:
    """The value of the quoted string at `text[i]`, and the index after its closing quote."""
    quote = text[i]
    chars: list[str] = []
    j = i + 1
    while j < len(text):
        c = text[j]
        if c == quote:
            return "".join(chars), j + 1
        if c == "\\" and j + 1 < len(text):
            nxt = text[j + 1]
            if quote == '"' and nxt in _DOUBLE_ESCAPES:
                chars.append(_DOUBLE_ESCAPES[nxt])
                j += 2
                continue
            if quote == "'" and nxt in "\\'":
                chars.append(nxt)
                j += 2
                continue
        chars.append(c)
        j += 1
    raise DotEnvSyntaxError(line, f"unterminated {'double' if quote == chr(34) else 'single'}-quoted value")


class _TooLong(Exception):
    """The expanded values outgrew what the file may hold."""


def _expand(value: str, known: Mapping[str, str | None], environ: Mapping[str, str], room: int) -> str:
    """`value` with its `${VAR}`s replaced; raises `_TooLong` past `room` characters,
    before the text is built (each `${...}` is counted as it is replaced)."""
    used = len(value)

    def sub(m: re.Match[str]) -> str:
        nonlocal used
        name = m.group("name")
        found = known.get(name)
        if found is None:
            found = environ.get(name)
        # python-dotenv: `${X:-d}` is d when X is unset or empty; an unset `${X}` is "".
        out = found or m.group("default") or ""
        used += len(out)
        if used > room:
            raise _TooLong
        return out

    return _VAR.sub(sub, value)


class DotEnv(FileSource):
    """A `.env` file as a layer: `APP_DATABASE__PORT=5432` -> `database.port`, like `Env`.

    Only keys under `prefix` are settings (others stay available to `${VAR}`); values are
    text parsed by the field's type, as from `Env`. The origin of a value is its line:
    `.env:12`. `${VAR}` and `${VAR:-default}` in unquoted and double-quoted values take
    earlier keys of the file first, then the process environment (python-dotenv's order);
    an unset variable is empty. Watched like any config file.

    Args:
        path: the file (default `.env`).
        prefix: of the keys that are settings (case-sensitive); `""` for every key.
        required: a missing file is an error; by default an absent layer.
        interpolate: expand `${VAR}`; `False` keeps the text as written.
        environ: where `${VAR}` looks after the file (default `os.environ`).
        watch, max_bytes, quiet, strict_modes: as for `YamlFile`.
    """

    format = ".env"

    def __init__(
        self,
        path: str | os.PathLike[str] = ".env",
        *,
        prefix: str = "APP_",
        required: bool = False,
        interpolate: bool = True,
        environ: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(path, required=required, **kwargs)
        self.prefix = _args.text("DotEnv", "prefix", prefix, empty=True)
        self.interpolate = _args.flag("DotEnv", "interpolate", interpolate)
        self.environ = _args.environ("DotEnv", environ)

    def __repr__(self) -> str:
        return f"DotEnv({self._display!r}, prefix={self.prefix!r}, required={self.required})"

    def _layer(self, data: bytes, digest: str) -> Layer:
        try:
            text = data.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError as exc:
            raise self._error(f"not UTF-8 text: invalid byte 0x{data[exc.start]:02x} at offset {exc.start}") from None
        try:
            bindings = parse_dotenv(text)
        except DotEnvSyntaxError as exc:
            raise self._error(exc.message, f"{self._display}:{exc.line}") from None
        environ = os.environ if self.environ is None else self.environ
        known: dict[str, str | None] = {}
        seen: dict[str, int] = {}
        entries: list[tuple[str, str, str, str]] = []
        issues: list[Issue] = []
        # Every value expanded, together, may be as long as the file may be: each line that
        # uses the one before it twice doubles it, and 30 such lines made 100 GiB of text.
        room = self.max_bytes
        for key, value, expand, line in bindings:
            origin = f"{self._display}:{line}"
            if value is not None and expand and self.interpolate:
                try:
                    value = _expand(value, known, environ, room)
                except _TooLong:
                    raise self._error(
                        f"{key}: ${{...}} expands the file's values past {self.max_bytes:,} characters"
                        " (max_bytes, the limit of the file itself)",
                        origin,
                    ) from None
            if value is not None:
                room -= len(value)
            known[key] = value
            if not key.startswith(self.prefix) or not key[len(self.prefix) :]:
                continue
            if key in seen:
                issues.append(Issue("", f"{key} is set twice (lines {seen[key]} and {line}): use one", origin))
                continue
            seen[key] = line
            if value is None:
                issues.append(Issue("", f"{key} has no value: expected {key}=VALUE", origin))
                continue
            entries.append((key, key[len(self.prefix) :], value, origin))
        return nested_layer(self._display, digest, entries, issues, what="the key")

    def _parse(self, text: str) -> Any:  # pragma: no cover - `_layer` parses
        return {key: value for key, value, _, _ in parse_dotenv(text)}
