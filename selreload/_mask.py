"""The one masking policy: which values are secret, and how anything that might show one is rendered.

A value is masked because of where it is, never because of what a text contains: its
resolved path is secret (declared with `secret()`, named by a policy file, or matched by
a credential rule such as `password` or `*_key`), or it is the password part of a URL's
user-info (`scheme://user:***@host`). Every output that renders config values (repr,
errors, logs, audit, plans, spans, HTTP, CLI) goes through this module.

Messages written by user code (validators, converters, appliers, subscribers) are never
edited: a `Guard` shows one whole, or withholds it whole when it quotes a secret.
"""

from __future__ import annotations

import fnmatch
import json
import re
import string
import traceback
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs

from ._backend import declared_secret, field_names
from ._paths import join
from ._values import UNSET, EnvText, kind, ordered, scalar_to_plain

if TYPE_CHECKING:
    from ._schema import Schema

MASK: Final = "***"
"""What a secret value renders as, everywhere."""

_SCALARS: Final = frozenset({int, float, bool, type(None)})

# --- credential rules -------------------------------------------------------------------------

DEFAULT_SECRET_NAMES: Final = (
    "password",
    "*_password",
    "passwd",
    "secret",
    "*_secret",
    "token",
    "*_token",
    "*_key",
    "apikey",
    "credentials",
    "*_credentials",
    "private_key",
)
"""Field names (and mapping keys) secret by default: shell globs on the last path segment,
case-insensitive, `-` read as `_` (`API-Key` matches `*_key`)."""


@attrs.frozen
class MaskRules:
    """Which leaves are secret by name, beyond the declared and policy-file secrets.

    A leaf (or a config node: everything under it) whose name, or a mapping key, matches
    one of the globs is masked everywhere selreload renders it. The rules only mask: a
    leaf they match keeps its hot or restart-only policy, and a policy file may still
    make it hot (only a declared or policy-file secret refuses that).

    Args:
        names: the globs, replacing the defaults (`DEFAULT_SECRET_NAMES`); `()` for none.
        extra: globs added to `names` (`extra=("pin", "*_dsn")`).

    `*_key` masks `cache_key` and `sort_key` too: hiding a value that was not secret
    costs a line of readability, showing one that was costs a credential rotation. Pass
    `names=` without `*_key` to show them. The password of a URL's user-info is masked
    in every rendering whatever the rules say: nobody needs to read it.
    """

    names: tuple[str, ...] = attrs.field(default=DEFAULT_SECRET_NAMES, converter=tuple)
    extra: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    _compiled: re.Pattern[str] | None = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        globs = [_norm(g) for g in (*self.names, *self.extra)]
        pattern = "|".join(fnmatch.translate(g) for g in globs)
        object.__setattr__(self, "_compiled", re.compile(pattern) if globs else None)

    @classmethod
    def off(cls) -> MaskRules:
        """No rule: only declared and policy-file secrets are masked."""
        return cls(names=())

    def matches(self, path: str) -> bool:
        """Whether the last segment of `path` is a credential name."""
        if self._compiled is None:
            return False
        return self._compiled.match(_norm(path.rsplit(".", 1)[-1])) is not None


def _norm(name: str) -> str:
    return name.lower().replace("-", "_")


DEFAULT_RULES: Final = MaskRules()

# --- URL user-info ----------------------------------------------------------------------------

# `scheme://user:password@`: RFC 3986 scheme, then user-info up to the last `@` before the
# host (a password may hold `@` only percent-encoded, but tolerate a raw one).
_USERINFO = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:]*:)(?P<password>[^\s/?#]*)(?=@[^\s@/?#]*(?:[/?#\s]|$))"
)


_SCHEME_CHARS: Final = frozenset(string.ascii_letters + string.digits + "+.-")
_SCHEME_START = re.compile(r"\b[A-Za-z]")


def _userinfo(text: str) -> Iterator[re.Match[str]]:
    """`_USERINFO.finditer(text)`, in time linear in the text.

    The regex alone tries every position, and from each letter of a long run of scheme
    characters (`a.a.a.a...`) reads the rest of the run looking for `://`: 0.2 s for 16,000
    characters, quadratic. Here each `://` is found first; the match is the regex's own,
    tried once, at the leftmost start it could have: the first letter at a word boundary
    in the run of scheme characters before it (and not before the last match's end).
    """
    pos = 0
    while (sep := text.find("://", pos)) >= 0:
        start = sep
        while start > pos and text[start - 1] in _SCHEME_CHARS:
            start -= 1
        first = next((i for i in range(start, sep) if _SCHEME_START.match(text, i)), None)
        found = _USERINFO.match(text, first) if first is not None else None
        if found is None:
            pos = sep + 1
            continue
        yield found
        pos = found.end()


def mask_url(text: str) -> str:
    """`postgresql://app:hunter2@db/app` -> `postgresql://app:***@db/app`; other text unchanged."""
    if "://" not in text:
        return text
    out: list[str] = []
    last = 0
    for m in _userinfo(text):
        out += (text[last : m.start()], m["head"] + MASK if m["password"] else m[0])
        last = m.end()
    out.append(text[last:])
    return "".join(out)


def url_passwords(value: Any) -> list[str]:
    """The passwords in the URL user-info of a string (or any strings inside `value`)."""
    if isinstance(value, str):
        return [m["password"] for m in _userinfo(value) if m["password"]] if "://" in value else []
    if isinstance(value, Mapping):
        return [p for v in value.values() for p in url_passwords(v)]
    if isinstance(value, list | tuple | frozenset | set):
        return [p for v in value for p in url_passwords(v)]
    names = field_names(type(value))
    if names is not None:
        return [p for name in names for p in url_passwords(getattr(value, name, None))]
    return []


# --- rendering --------------------------------------------------------------------------------


ABSENT: Final = "(absent)"
"""How `render` shows `UNSET`: the mapping key does not exist on that side of a change."""


to_json: Final = json.JSONEncoder(ensure_ascii=False, default=str).encode
"""`json.dumps(value, ensure_ascii=False, default=str)` with one encoder built once
(`json.dumps` builds a new one per call when given arguments: ~10 µs a value)."""


def render(value: Any, *, secret: bool) -> str:
    """A leaf value for people, as JSON (`"info"`, `true`, `null`, `"15m"`, `{"a": 1}`):
    the same text in the demo, logs, plans, `explain` and `audit show`. A secret is `***`.

    `UNSET` (no value on that side of a change) is `(absent)`, even for a secret: it
    says the key did not exist, which reveals nothing.
    """
    if value is UNSET:
        return ABSENT
    if secret:
        return MASK
    return to_json(plain(value, secret=False))


def value_repr(value: Any) -> str:
    """`repr(value)` with URL passwords masked in every string inside it."""
    if isinstance(value, str):
        return repr(mask_url(str(value)))
    if type(value) in _SCALARS or field_names(type(value)) is not None:
        return repr(value)  # a config instance's repr masks its own secrets
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{value_repr(k)}: {value_repr(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(value_repr(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(value_repr(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def masked_repr(_value: object) -> str:
    """The attrs `repr=` of a secret field: `Config(token=***)`."""
    return MASK


def config_repr(self: Any) -> str:
    """The `__repr__` of `@sr.config` classes: attrs' form, every secret field masked.

    Secret are the fields declared `secret()`, and those the schemas the class is part
    of make secret (policy files, credential rules; mapping keys one by one). A class
    shared by two schemas is masked by both.
    """
    cls = type(self)
    parts = []
    for a in attrs.fields(cls):
        if not a.repr:
            continue
        value = getattr(self, a.name, attrs.NOTHING)
        if hidden(cls, a.name):
            text = MASK
        elif callable(a.repr):
            text = a.repr(value)
        elif isinstance(value, Mapping) and not attrs.has(type(value)):
            shown = (f"{value_repr(k)}: {MASK if hidden(cls, a.name, k) else value_repr(v)}" for k, v in value.items())
            text = "{" + ", ".join(shown) + "}"
        else:
            text = value_repr(value)
        parts.append(f"{a.name}={text}")
    return f"{cls.__qualname__.rsplit('>.', 1)[-1]}({', '.join(parts)})"


def show(value: Any, *, secret: bool) -> str:
    """A raw value as an error message quotes it: masked for secrets, cut when long.

    A mapping or a list is described by its size, never quoted: one found where a scalar
    belongs is most often a block that a mis-indented line swallowed, and the lines it
    swallowed may be a sibling's secret (`host:` left empty above `  password: ...`).
    """
    if secret:
        return MASK
    if isinstance(value, Mapping):
        return _count(len(value), "a mapping of {} key")
    if isinstance(value, list | tuple):
        return _count(len(value), "a list of {} item")
    text = value_repr(str(value) if isinstance(value, EnvText) else value)
    return text if len(text) <= 80 else text[:77] + "..."


def got(value: Any, *, secret: bool) -> str:
    """What an error message says it found: `int 5`, `str 'x'`, `int ***` for a secret,
    `a list of 2 items` for a container (see `show`)."""
    if isinstance(value, Mapping | list | tuple) and not secret:
        return show(value, secret=False)
    return f"{kind(value)} {show(value, secret=secret)}"


def _count(n: int, form: str) -> str:
    return form.format(f"{n:,}") + ("" if n == 1 else "s")


# --- which fields of a class are secret -------------------------------------------------------

# Where each config class sits in the live schemas: (schema, node path). A class's repr,
# and the masking of instances met without a schema, ask every schema it is part of.
_PLACES: weakref.WeakKeyDictionary[type, list[tuple[weakref.ref[Schema], str]]] = weakref.WeakKeyDictionary()
_HIDDEN: dict[tuple[type, str, object], bool] = {}


def register(cls: type, schema: Schema, path: str) -> None:
    """Record that `schema` holds `cls` at node `path` (`"dbs.*"` for mapping values)."""
    places = _PLACES.setdefault(cls, [])
    places[:] = [(ref, p) for ref, p in places if ref() is not None and (ref() is not schema or p != path)]
    places.append((weakref.ref(schema), path))
    _HIDDEN.clear()


def hidden(cls: type, name: str, key: object = None) -> bool:
    """Whether field `name` of `cls` (or key `key` of that mapping field) is secret."""
    cache_key = (cls, name, key)
    found = _HIDDEN.get(cache_key)
    if found is None:
        found = _resolve(cls, name, key)
        if len(_HIDDEN) >= 65536:  # classes or keys made at run time must not grow it forever
            _HIDDEN.clear()
        _HIDDEN[cache_key] = found
    return found


def _resolve(cls: type, name: str, key: object) -> bool:
    if key is None and declared_secret(cls, name):
        return True
    sub = name if key is None else f"{name}.{key}"
    places = [(schema, path) for ref, path in _PLACES.get(cls, ()) if (schema := ref()) is not None]
    if not places:  # never compiled into a schema: the default rules
        return DEFAULT_RULES.matches(sub)
    return any(schema.mask.matches(sub) or schema.policy_of(join(path, sub))[1] for schema, path in places)


# --- JSON-ready data --------------------------------------------------------------------------


def plain(value: Any, *, secret: bool) -> Any:
    """One leaf value as JSON-ready data: `***` when secret, `UNSET` as `None`."""
    if value is UNSET:
        return None  # the mapping key did not exist on that side
    if secret:
        return MASK
    if type(value) in _SCALARS:
        return value  # most leaves: skip the walk's type checks (a third of an audit record's cost)
    return masked_plain(value)


def masked_plain(value: Any, *, schema: Schema | None = None) -> Any:
    """A config (or any value in one) as JSON-ready data with every secret masked: the
    leaves `schema` resolves as secret (declared, policy file, credential rule; mapping
    keys too), the secret fields of any attrs instance inside, and URL passwords."""
    return _walk(value, schema, "")


def _walk(value: Any, schema: Schema | None, path: str) -> Any:
    if schema is not None and path and schema.policy_of(path)[1]:
        return MASK
    cls = type(value)
    names = field_names(cls)
    if names is not None:
        out: dict[str, Any] = {}
        for name in names:
            v = getattr(value, name)
            if hidden(cls, name):
                out[name] = MASK
            elif schema is None and isinstance(v, Mapping) and field_names(type(v)) is None:
                out[name] = {str(k): MASK if hidden(cls, name, k) else _walk(x, None, "") for k, x in v.items()}
            else:
                out[name] = _walk(v, schema, join(path, name))
        return out
    if isinstance(value, str):
        return mask_url(str(value))
    if isinstance(value, Mapping):
        return {str(k): _walk(v, schema, join(path, k)) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        # Items share their list's path: the schema has leaves for lists, not for items.
        return [_walk(v, schema, path) for v in ordered(value)]
    return scalar_to_plain(value)


# --- messages written by user code --------------------------------------------------------------

WITHHELD_SECRET: Final = "invalid value (the {what}'s message is withheld: the value is secret)"


class Guard:
    """Shows a message written by user code whole, or withholds it whole.

    A message is withheld when it contains the `str()` or `repr()` of any secret value in
    scope (declared, policy-file and rule secrets, URL passwords). It is never edited: a
    replaced substring mangles the text and, for a short secret, shows where it was.

    Args:
        secrets: the secret values, or a function returning them (called on first use:
            collecting them walks every leaf, and a reload without errors never needs it).
    """

    __slots__ = ("_collect", "_forms")

    def __init__(self, secrets: Callable[[], Iterable[Any]] | Iterable[Any] = ()) -> None:
        self._collect = secrets
        self._forms: frozenset[str] | None = None

    def quotes_secret(self, text: str) -> bool:
        """Whether `text` contains a rendering of a secret value."""
        if self._forms is None:
            found = self._collect() if callable(self._collect) else self._collect
            self._forms = frozenset(_forms(found))
        return any(form in text for form in self._forms)

    def text(self, text: str, *, what: str, exc: BaseException) -> str:
        """`text`, or `{what} ({ExcType}); its message is withheld because it quotes a secret`."""
        if self.quotes_secret(text):
            return f"{what} ({type(exc).__name__}); its message is withheld because it quotes a secret"
        return mask_url(text)

    def failure(self, what: str, exc: BaseException) -> str:
        """`{what}: {ExcType}: {message}`, the message withheld when it quotes a secret."""
        message = str(exc)
        if not message:
            return f"{what}: {type(exc).__name__}"
        return self.text(f"{what}: {type(exc).__name__}: {message}", what=what, exc=exc)


def _forms(values: Iterable[Any]) -> Iterable[str]:
    for v in values:
        if v is None or isinstance(v, bool) or v is UNSET:
            continue
        if isinstance(v, Mapping):
            yield from _forms(v.values())
        elif isinstance(v, list | tuple | frozenset | set):
            yield from _forms(v)
        elif (names := field_names(type(v))) is not None:
            yield from _forms(getattr(v, name, None) for name in names)
            continue
        elif callable(getattr(v, "get_secret_value", None)):
            v = v.get_secret_value()  # pydantic's SecretStr: a message may quote what it holds
        for form in (str(v), repr(v)):
            if form and form != "''":
                yield form


def secrets_inside(value: Any) -> list[Any]:
    """Secret values inside a value that is not secret itself: the secret fields (and
    keys) of attrs instances in it, and URL passwords."""
    cls = type(value)
    if isinstance(value, str):
        return list(url_passwords(value))
    names = field_names(cls)
    if names is not None:
        out: list[Any] = []
        for name in names:
            v = getattr(value, name, None)
            if hidden(cls, name):
                out.append(v)
            elif isinstance(v, Mapping) and field_names(type(v)) is None:
                out += [x for k, x in v.items() if hidden(cls, name, k)]
                out += [s for x in v.values() for s in secrets_inside(x)]
            else:
                out += secrets_inside(v)
        return out
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in secrets_inside(v)]
    if isinstance(value, list | tuple | frozenset | set):
        return [s for v in value for s in secrets_inside(v)]
    return []


def secret_values(schema: Schema, *flats: Mapping[str, Any]) -> list[Any]:
    """Every secret value in flattened configs (`{path: value}`): secret leaves, and the
    secrets inside the others (URL passwords, secret fields of instances in mappings)."""
    out: list[Any] = []
    for flat in flats:
        for p, v in flat.items():
            if schema.policy_of(p)[1]:
                out.append(v)
            elif type(v) not in _SCALARS:
                out += secrets_inside(v)
    return out


def guard(schema: Schema, *flats: Mapping[str, Any]) -> Guard:
    """A `Guard` over the secret values of `flats`, collected on first use."""
    return Guard(lambda: secret_values(schema, *flats))


def exc_summary(exc: BaseException) -> str:
    """An exception for a log: its type and traceback frames, never its message."""
    frames = "".join(traceback.format_tb(exc.__traceback__)).rstrip()
    return f"{type(exc).__name__}\n{frames}" if frames else type(exc).__name__
