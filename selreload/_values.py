"""Leaf value types: env text, read-only containers, durations, UNSET, plain data."""

from __future__ import annotations

import datetime
import decimal
import enum
import ipaddress
import json
import math
import pathlib
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final, NoReturn


class _Unset(enum.Enum):
    # An enum member is a singleton that survives pickling and copy.
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final = _Unset.UNSET
"""The `old` value of a change an applier sees at start-up: there was no previous value."""


class EnvText(str):
    """A value read as text (an environment variable): parsed by the field's type.

    Only text from env is parsed (`"true"` for a bool, `"8080"` for an int, JSON for a
    list or mapping); the same string from YAML is a type error.
    """

    __slots__ = ()


def _read_only(self: object, *args: object, **kwargs: object) -> NoReturn:
    raise TypeError(
        f"config values are immutable: change the config source and reload (tried to modify a {type(self).__name__})"
    )


class FrozenDict(dict[Any, Any]):
    """A read-only `dict` (config mappings are shared by every reader of a snapshot)."""

    __slots__ = ()
    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _read_only
    __ior__ = _read_only

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))


class FrozenList(list[Any]):
    """A read-only `list`: compares equal to a list with the same items."""

    __slots__ = ()
    __setitem__ = __delitem__ = append = extend = insert = remove = pop = clear = _read_only
    sort = reverse = __iadd__ = __imul__ = _read_only

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self))

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenList, (list(self),))


def kind(value: Any) -> str:
    """The kind of a raw value as an error message names it: `text`, `mapping`, `list`, ..."""
    if isinstance(value, EnvText):
        return "text"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, list | tuple):
        return "list"
    if value is None:
        return "null"
    return type(value).__name__


# --- text and numbers --------------------------------------------------------------------

MAX_INT_DIGITS: Final = 4_300
"""Longest integer text an env value may hold: CPython's own limit for `int(str)` (3.11+),
checked first so the answer is a message, not the interpreter's ValueError."""


def text_problem(text: str) -> str | None:
    """What makes `text` unusable as config text, or None.

    A lone surrogate (`"\\ud800"` in JSON, or an undecodable byte of an environment
    variable) is a `str` that cannot be encoded as UTF-8: let live, it breaks the audit
    record and every rendering of the config.
    """
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"not valid text: contains an unpaired surrogate at index {exc.start}"
    return None


def one_line(text: str) -> str:
    """`text` as one line of printable text: every character `str.isprintable()` refuses
    (newlines, escape codes, other control and invisible characters, unpaired
    surrogates) written as its escape (`\\n`, `\\x1b`, `\\u200b`, `\\ud800`).

    Every `Issue` and every key a path shows is made of such text. Unescaped, a key of
    `"x\\nconfig 'default' reload applied..."` forged a second line in the log, and an
    escape code in one coloured (or cleared) the terminal of whoever read it; a lone
    `"\\ud800"` (JSON decodes one, and so does a file name of undecodable bytes) stopped
    the audit line and the admin API's JSON, since UTF-8 cannot carry it.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def recorded_text(record: Mapping[str, Any], name: str, default: str = "unknown") -> str:
    """A text field of a record another process wrote (an override's or a command's
    `actor`, `ts`, `target`), as one printable line: it reaches log lines and results."""
    value = record.get(name)
    return one_line(str(value)) if value not in (None, "") else default


def printable(key: object) -> object:
    """A mapping key as a path may show it: one printable line (see `one_line`)."""
    return one_line(key) if isinstance(key, str) else key


_ASCII_CONTROL: Final = bytes(range(0x20)) + b"\x7f"


def keys_printable(mapping: Mapping[Any, Any]) -> bool:
    """Whether every key of `mapping` is text that `one_line` leaves as it is, in a few C
    calls for the whole map: `key.isprintable()` one key at a time cost ~50 ns a key (a
    Unicode table lookup per character), ~30% of structuring a `dict[str, int]`."""
    try:
        joined = "".join(mapping)
    except TypeError:  # a key that is not text (an int key): the caller checks each
        return False
    if joined.isascii():
        raw = joined.encode("ascii")
        return len(raw.translate(None, _ASCII_CONTROL)) == len(raw)
    return joined.isprintable()


def key_problem(key: str) -> str | None:
    """Why a mapping key cannot be a config key, or None. A key is a name: one that holds
    a newline, a control or an invisible character (U+200B, a no-break space) is a
    mistake or a disguise (two keys that look the same), never a name an operator meant."""
    if key.isprintable():
        return None
    problem = text_problem(key)
    if problem is not None:
        return problem
    bad = next(c for c in key if not c.isprintable())
    return f"holds a control or invisible character (U+{ord(bad):04X}): a key must be printable text"


def float_problem(value: float) -> str | None:
    """Why a float cannot be a config number, or None: only finite numbers are."""
    if math.isfinite(value):
        return None
    return "expected a finite number (inf and nan are refused)"


# --- values written as text: addresses, networks, UUIDs, decimals, dates and times --------


def _decimal(value: object) -> decimal.Decimal | None:
    if type(value) is int:
        return decimal.Decimal(value)
    if type(value) is float:
        # The shortest text that reads back as this float: what the file says (`0.1`, not
        # the binary fraction 0.1000000000000000055...).
        return decimal.Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            out = decimal.Decimal(value.strip() if type(value) is EnvText else value)
        except (decimal.InvalidOperation, ValueError):
            return None
        return out if out.is_finite() else None  # config numbers are finite, as floats are
    return None


def _from_text(parse: Callable[[str], Any]) -> Callable[[object], Any]:
    def read(value: object) -> Any:
        if not isinstance(value, str):
            return None
        try:
            return parse(value.strip() if type(value) is EnvText else value)
        except ValueError:  # every parser here says "not this" with ValueError (or a subclass)
            return None

    return read


TEXT_TYPES: Final[dict[type, tuple[str, Callable[[object], Any]]]] = {
    ipaddress.IPv4Address: ("an IPv4 address like '10.0.0.1'", _from_text(ipaddress.IPv4Address)),
    ipaddress.IPv6Address: ("an IPv6 address like '2001:db8::1'", _from_text(ipaddress.IPv6Address)),
    # Strict: `10.0.0.1/8` has host bits set and is refused, not read as 10.0.0.0/8.
    ipaddress.IPv4Network: ("an IPv4 network like '10.0.0.0/8'", _from_text(ipaddress.IPv4Network)),
    ipaddress.IPv6Network: ("an IPv6 network like '2001:db8::/32'", _from_text(ipaddress.IPv6Network)),
    ipaddress.IPv4Interface: ("an IPv4 interface like '10.0.0.1/8'", _from_text(ipaddress.IPv4Interface)),
    ipaddress.IPv6Interface: ("an IPv6 interface like '2001:db8::1/64'", _from_text(ipaddress.IPv6Interface)),
    uuid.UUID: ("a UUID like '12345678-1234-5678-1234-567812345678'", _from_text(uuid.UUID)),
    decimal.Decimal: ("a finite decimal number like 0.10 or '0.10'", _decimal),
    datetime.date: ("an ISO 8601 date like 2026-12-03", _from_text(datetime.date.fromisoformat)),
    datetime.datetime: (
        "an ISO 8601 date and time like 2026-12-03T10:30:00+00:00",
        _from_text(datetime.datetime.fromisoformat),
    ),
    datetime.time: ("an ISO 8601 time like 10:30:00", _from_text(datetime.time.fromisoformat)),
}
"""Field types read from text (YAML, TOML and tomllib's own dates and times are taken as
they are): `type -> (what the error message expects, read)`, `read` giving None for a value
it cannot read."""

_AS_TEXT: Final = (
    ipaddress.IPv4Address,
    ipaddress.IPv6Address,
    ipaddress.IPv4Network,
    ipaddress.IPv6Network,
    uuid.UUID,
    decimal.Decimal,
)


# --- durations ----------------------------------------------------------------------------

MAX_DURATION: Final = datetime.timedelta(days=36_500)
"""The longest duration a config may hold: 100 years (36,500 days). Far past any TTL or
timeout, and short enough that `datetime.now() + ttl` cannot overflow (datetime ends in
year 9999) and `ttl.total_seconds()` stays exact to the microsecond (2**53 us is 285 years)."""

_GO_PART = re.compile(r"(?P<n>[0-9]+(?:\.[0-9]+)?)(?P<u>ms|us|µs|s|m|h|d|w)")
_SECONDS_TEXT = re.compile(r"[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?")
_NON_FINITE = frozenset({"inf", ".inf", "infinity", "nan", ".nan"})
_UNIT_SECONDS: Final = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_N = r"[0-9]+(?:[.,][0-9]+)?"
_ISO = re.compile(
    rf"P(?:(?P<Y>{_N})Y)?(?:(?P<Mo>{_N})M)?(?:(?P<W>{_N})W)?(?:(?P<D>{_N})D)?"
    rf"(?:T(?:(?P<H>{_N})H)?(?:(?P<M>{_N})M)?(?:(?P<S>{_N})S)?)?",
    re.IGNORECASE,
)
_ISO_SECONDS: Final = {"W": 604800, "D": 86400, "H": 3600, "M": 60, "S": 1}
_MAX_SECONDS: Final = MAX_DURATION.total_seconds()

DURATION_FORMS: Final = "a duration like '15m', '24h', '1h30m' or seconds (or ISO 8601 'PT15M')"


def read_duration(value: object) -> datetime.timedelta | str:
    """A config value as a duration, or what is wrong with it.

    Numbers are seconds; text is seconds (`"90"`, `"1.5"`), Go-style units (`"15m"`,
    `"1h30m"`, `"250ms"`, `"2d"`, `"1w"`) or ISO 8601 (`"PT15M"`, `"P1DT2H"`, `"P2W"`).
    Refused: negative, non-finite, longer than `MAX_DURATION`, ISO years and months.

    Returns:
        The timedelta, or a message saying what is wrong. The message never quotes the
        value (it may be a secret): the caller adds `, got ...`.
    """
    if type(value) is datetime.timedelta:
        return _checked(value.total_seconds()) or value
    if type(value) is int:  # any size: compared exactly, never converted to float first
        return _checked(value) or datetime.timedelta(seconds=value)
    if type(value) is float:
        if not math.isfinite(value):
            return "a duration must be finite"
        return _checked(value) or datetime.timedelta(seconds=value)
    if not isinstance(value, str):
        return f"expected {DURATION_FORMS}"
    text = value.strip()
    sign, body = (text[0], text[1:]) if text[:1] in ("+", "-") else ("", text)
    if body.lower() in _NON_FINITE:
        return "a duration must be finite"
    seconds = _text_seconds(body)
    if isinstance(seconds, str):
        return seconds
    if seconds is None:
        return f"expected {DURATION_FORMS}"
    if sign == "-" and seconds:
        return _NEGATIVE
    return _checked(seconds) or datetime.timedelta(seconds=seconds)


_NEGATIVE: Final = "a duration cannot be negative"


def _text_seconds(body: str) -> float | str | None:
    """Seconds in a duration's text without its sign, a message, or None if not a duration."""
    if not body:
        return None
    if _SECONDS_TEXT.fullmatch(body):
        return float(body)  # "1e999" is inf here: `_checked` refuses it as too long
    if body[0] in "Pp":
        m = _ISO.fullmatch(body)
        if m is None or not any(m.groupdict().values()) or body[-1] in "Tt":
            return None
        if m["Y"] or m["Mo"]:
            return (
                "ISO 8601 years and months have no fixed length (a month is 28 to 31 days):"
                " write days or weeks instead, like 'P30D'"
            )
        return sum(float(n.replace(",", ".")) * _ISO_SECONDS[u] for u, n in m.groupdict().items() if n)
    # Part by part from where the last one ended: `finditer` tried every position, and a
    # 10,000-digit number without a unit took 2 s (each start scanned the digits after it).
    pos, seconds = 0, 0.0
    while pos < len(body):
        m = _GO_PART.match(body, pos)
        if m is None:
            return None
        seconds += float(m["n"]) * _UNIT_SECONDS[m["u"]]
        pos = m.end()
    return seconds


def _checked(seconds: float) -> str | None:
    """What is wrong with a number of seconds as a duration, or None."""
    # Compared before a timedelta exists: timedelta(seconds=1e308) raises OverflowError.
    if seconds < 0:
        return _NEGATIVE
    if not seconds <= _MAX_SECONDS:  # also an overflow to inf: "99999999999d", "1e999"
        return "a duration must be at most 100 years (36500d)"
    return None


def parse_duration(text: str) -> datetime.timedelta | None:
    """`"15m"`, `"24h"`, `"1h30m"`, `"250ms"`, `"90"` (seconds), `"PT15M"` -> timedelta;
    None if not a duration selreload accepts (`read_duration` says why not)."""
    out = read_duration(text)
    return None if isinstance(out, str) else out


def format_duration(td: datetime.timedelta) -> str:
    """The inverse of `parse_duration` for people: `1h30m`, `15m`, `1.5s`."""
    total = td.total_seconds()
    if total < 0 or total != int(total):
        return f"{total:g}s"
    seconds = int(total)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


# --- a version named in text --------------------------------------------------------------


def version_number(text: str) -> int | None:
    """The version that `text` names (`"12"`), or None when it is not a version: versions
    are written in ASCII digits (`"²"` and the Arabic-Indic digits are digits to
    `str.isdigit`; `int()` refuses the first and reads the others), and count reloads, so 5,000 digits (which `int()`
    refuses past Python's limit) name none."""
    if text.isascii() and text.isdigit() and len(text) <= 30:
        return int(text)
    return None


# --- JSON that selreload stores and reads back ---------------------------------------------

_decode_json = json.JSONDecoder().decode


class TooDeep(ValueError):
    """JSON nested past the decoder's depth: never a record selreload wrote, whole or torn."""


def load_json(body: bytes | str) -> Any:
    """A JSON document read back from a store another party may write (the audit log,
    the state directory, etcd's status, override and rollout keys).

    Raises `json.JSONDecodeError` (with its column), `ValueError` for bytes that are not
    UTF-8, and `TooDeep` (a `ValueError`) for nesting past the decoder's depth: `json.loads` raises `RecursionError`
    there, which a line of 100,000 `[` let out of `start()` (the audit log's chain head),
    `verify_audit` and `read_audit`. Nothing selreload writes nests that deep (a config
    is at most 100 levels).
    """
    try:
        return _decode_json(body if isinstance(body, str) else body.decode())
    except RecursionError:
        raise TooDeep("nested too deeply to be a record selreload wrote") from None


# --- back to plain data -------------------------------------------------------------------


def to_plain(value: Any) -> Any:
    """A config value as JSON-ready data, unmasked: durations as `"1h30m"`, enums by value,
    paths and dates as text, sets sorted. Anything people or files see goes through
    `_mask.masked_plain` (a whole config) or `_mask.plain` (one leaf) instead."""
    # Imported here: `_backend` imports `_change`, which imports this module.
    from ._backend import field_names

    names = field_names(type(value))
    if names is not None:
        return {name: to_plain(getattr(value, name)) for name in names}
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        return [to_plain(v) for v in ordered(value)]
    return scalar_to_plain(value)


def ordered(items: Any) -> Any:
    """The items of a list as they are, of a set sorted (so equal sets render equally)."""
    return sorted(items, key=repr) if isinstance(items, frozenset | set) else items


def scalar_to_plain(value: Any) -> Any:
    """A value that is not a container as JSON-ready data."""
    if isinstance(value, datetime.timedelta):
        return format_duration(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, _AS_TEXT):  # interfaces are addresses
        return str(value)
    if callable(getattr(value, "get_secret_value", None)):
        return str(value)  # pydantic's SecretStr / SecretBytes render themselves masked
    return value
