"""Strict structuring: plain trees into config instances, every problem collected.

cattrs' default converter coerces (`"false"` -> True, `4.7` -> 4, a dict -> str) and its
detailed validation reports only the first attrs validator failure of a class. Config is
the one input where a silent coercion becomes an outage, so selreload compiles one strict
function per type of the schema (no coercion, unknown keys refused with a suggestion,
every validator run, every failure kept with its path) and hands only types it does not
know to a strict cattrs converter.
"""

from __future__ import annotations

import collections.abc
import datetime
import difflib
import enum
import json
import pathlib
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Final, NoReturn

import attrs
import cattrs

from ._change import MASK, format_duration
from ._errors import Issue
from ._schema import _META, Schema, is_config

_BAD: Final = object()  # "this value failed"; its issues are already in the list

StructureFn = Callable[[Any, str, list[Issue]], Any]


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


def join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def show(value: Any, secret: bool) -> str:
    """A value as an error message quotes it: masked for secrets, cut when long."""
    if secret:
        return MASK
    text = repr(str(value) if isinstance(value, EnvText) else value)
    return text if len(text) <= 80 else text[:77] + "..."


def kind(value: Any) -> str:
    if isinstance(value, EnvText):
        return "text"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, list | tuple):
        return "list"
    if value is None:
        return "null"
    return type(value).__name__


_DURATION = re.compile(r"(?P<n>\d+(?:\.\d+)?)(?P<u>ms|us|µs|s|m|h|d|w)")
_UNIT_SECONDS: Final = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> datetime.timedelta | None:
    """`"15m"`, `"24h"`, `"1h30m"`, `"250ms"`, `"90"` (seconds) -> timedelta; None if not one."""
    text = text.strip()
    if not text:
        return None
    try:
        return datetime.timedelta(seconds=float(text))
    except ValueError:
        pass
    pos, seconds = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            return None
        seconds += float(m["n"]) * _UNIT_SECONDS[m["u"]]
        pos = m.end()
    return datetime.timedelta(seconds=seconds) if pos == len(text) else None


_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})
_INT = re.compile(r"[+-]?\d+")


def _strict_cattrs() -> cattrs.Converter:
    return cattrs.Converter(forbid_extra_keys=True, prefer_attrib_converters=True)


class Structurer:
    """Compiled strict structuring for one schema.

    `structure(tree)` returns `(instance, [])` or `(None, issues)` with every issue found.
    """

    def __init__(self, schema: Schema) -> None:
        self._schema = schema
        self._fns: dict[tuple[Any, bool], StructureFn] = {}
        self._fallback = _strict_cattrs()
        self._root = self.fn(schema.cls, False)

    def structure(self, tree: Any) -> tuple[Any, list[Issue]]:
        issues: list[Issue] = []
        value = self._root(tree, "", issues)
        if value is _BAD or issues:
            return None, issues
        return value, issues

    def structure_value(self, value: Any, tp: Any, path: str, *, secret: bool = False) -> tuple[Any, list[Issue]]:
        issues: list[Issue] = []
        out = self.fn(tp, secret)(value, path, issues)
        return (None if out is _BAD else out), issues

    def fn(self, tp: Any, secret: bool) -> StructureFn:
        key = (tp, secret)
        found = self._fns.get(key)
        if found is not None:
            return found
        # Break cycles (a class that refers to itself) with a trampoline until compiled.
        cell: list[StructureFn] = []
        self._fns[key] = lambda v, p, e: cell[0](v, p, e)
        compiled = self._compile(tp, secret)
        cell.append(compiled)
        self._fns[key] = compiled
        return compiled

    # --- compilers ------------------------------------------------------------------------

    def _compile(self, tp: Any, secret: bool) -> StructureFn:
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if tp is Any or tp is object:
            return lambda v, p, e: v
        if is_config(tp):
            return self._class(tp, secret)
        if origin in (typing.Union, types.UnionType):
            return self._union(args, secret)
        if origin is typing.Literal:
            return self._choice(tuple(args), {a: a for a in args}, secret)
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            members = {m.value: m for m in tp}
            return self._choice(tuple(members), members, secret)
        if tp is bool:
            return self._bool(secret)
        if tp is int:
            return self._int(secret)
        if tp is float:
            return self._float(secret)
        if tp is str:
            return self._str(secret)
        if tp is datetime.timedelta:
            return self._timedelta(secret)
        if tp is type(None):
            return self._none()
        if tp is pathlib.Path:
            str_fn = self._str(secret)
            return lambda v, p, e: _BAD if (s := str_fn(v, p, e)) is _BAD else pathlib.Path(s)
        if origin in (dict, collections.abc.Mapping, collections.abc.MutableMapping) or tp is dict:
            k, v = args or (Any, Any)
            return self._mapping(k, v, secret)
        if origin in (list, tuple, set, frozenset, collections.abc.Sequence) or tp in (list, tuple):
            return self._sequence(tp, origin or tp, args, secret)
        return self._other(tp, secret)

    def _fail(self, issues: list[Issue], path: str, message: str) -> object:
        issues.append(Issue(path, message))
        return _BAD

    def _bool(self, secret: bool) -> StructureFn:
        def s(v: Any, path: str, issues: list[Issue]) -> Any:
            if v is True or v is False:
                return v
            if type(v) is EnvText:
                t = v.strip().lower()
                if t in _TRUE or t in _FALSE:
                    return t in _TRUE
                return self._fail(issues, path, f"expected a bool (true/false/1/0), got {show(v, secret)}")
            return self._fail(issues, path, f"expected a bool, got {kind(v)} {show(v, secret)}")

        return s

    def _int(self, secret: bool) -> StructureFn:
        def s(v: Any, path: str, issues: list[Issue]) -> Any:
            if type(v) is int:
                return v
            if type(v) is EnvText and _INT.fullmatch(v.strip()):
                return int(v)
            return self._fail(issues, path, f"expected an int, got {kind(v)} {show(v, secret)}")

        return s

    def _float(self, secret: bool) -> StructureFn:
        def s(v: Any, path: str, issues: list[Issue]) -> Any:
            if type(v) is float:
                return v
            if type(v) is int:
                return float(v)
            if type(v) is EnvText:
                try:
                    return float(v)
                except ValueError:
                    pass
            return self._fail(issues, path, f"expected a number, got {kind(v)} {show(v, secret)}")

        return s

    def _str(self, secret: bool) -> StructureFn:
        def s(v: Any, path: str, issues: list[Issue]) -> Any:
            if type(v) is str:
                return v
            if type(v) is EnvText:
                return str(v)
            return self._fail(issues, path, f"expected a string, got {kind(v)} {show(v, secret)}")

        return s

    def _timedelta(self, secret: bool) -> StructureFn:
        def s(v: Any, path: str, issues: list[Issue]) -> Any:
            if type(v) is datetime.timedelta:
                return v
            if type(v) in (int, float):
                return datetime.timedelta(seconds=v)
            if isinstance(v, str):
                td = parse_duration(v)
                if td is not None:
                    return td
            return self._fail(
                issues, path, f"expected a duration like '15m', '24h', '1h30m' or seconds, got {show(v, secret)}"
            )

        return s

    def _none(self) -> StructureFn:
        def s(v: Any, path: str, issues: list[Issue]) -> Any:
            if v is None or (type(v) is EnvText and v.strip().lower() in ("", "null", "none")):
                return None
            return self._fail(issues, path, f"expected null, got {kind(v)}")

        return s

    def _choice(self, options: tuple[Any, ...], lookup: Mapping[Any, Any], secret: bool) -> StructureFn:
        listed = ", ".join(str(o) for o in options)
        by_text = {str(o): m for o, m in lookup.items()}

        def s(v: Any, path: str, issues: list[Issue]) -> Any:
            if type(v) is EnvText:
                if v in by_text:
                    return by_text[v]
            # `type(o) is type(v)` keeps True from matching an option 1.
            elif v in lookup and any(type(o) is type(v) and o == v for o in options):
                return lookup[v]
            return self._fail(issues, path, f"must be one of {listed} (got {show(v, secret)})")

        return s

    def _union(self, args: tuple[Any, ...], secret: bool) -> StructureFn:
        nullable = type(None) in args
        rest = [a for a in args if a is not type(None)]
        fns = [self.fn(a, secret) for a in rest]
        names = " | ".join(getattr(a, "__name__", str(a)) for a in rest)

        def s(v: Any, path: str, issues: list[Issue]) -> Any:
            if v is None:
                return None if nullable else self._fail(issues, path, f"expected {names}, got null")
            if nullable and type(v) is EnvText and v.strip().lower() in ("null", "none"):
                return None
            if len(fns) == 1:
                return fns[0](v, path, issues)
            for f in fns:
                trial: list[Issue] = []
                out = f(v, path, trial)
                if out is not _BAD and not trial:
                    return out
            return self._fail(issues, path, f"expected {names}, got {kind(v)} {show(v, secret)}")

        return s

    def _from_json(self, v: Any, path: str, issues: list[Issue], want: str) -> Any:
        try:
            return json.loads(v)
        except json.JSONDecodeError as exc:
            return self._fail(issues, path, f"expected {want} as JSON text, got invalid JSON ({exc.msg})")

    def _mapping(self, k_tp: Any, v_tp: Any, secret: bool) -> StructureFn:
        k_fn = self.fn(k_tp, secret)
        v_fn = self.fn(v_tp, secret)

        def s(v: Any, path: str, issues: list[Issue]) -> Any:
            if type(v) is EnvText:
                v = self._from_json(v, path, issues, "a mapping")
                if v is _BAD:
                    return _BAD
            if not isinstance(v, Mapping):
                return self._fail(issues, path, f"expected a mapping, got {kind(v)}")
            out = {}
            bad = False
            for key, item in v.items():
                sub = join(path, key)
                k = k_fn(key, sub, issues)
                val = v_fn(item, sub, issues)
                if k is _BAD or val is _BAD:
                    bad = True
                else:
                    out[k] = val
            return _BAD if bad else FrozenDict(out)

        return s

    def _sequence(self, tp: Any, origin: Any, args: tuple[Any, ...], secret: bool) -> StructureFn:
        fixed = origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis)
        item_fns = [self.fn(a, secret) for a in args] if fixed else [self.fn(args[0] if args else Any, secret)]
        build: Callable[[list[Any]], Any]
        if origin in (set, frozenset):
            build = frozenset
        elif origin is tuple:
            build = tuple
        else:
            build = FrozenList

        def s(v: Any, path: str, issues: list[Issue]) -> Any:
            if type(v) is EnvText:
                v = self._from_json(v, path, issues, "a list")
                if v is _BAD:
                    return _BAD
            if not isinstance(v, list | tuple):
                return self._fail(issues, path, f"expected a list, got {kind(v)}")
            if fixed and len(v) != len(item_fns):
                return self._fail(issues, path, f"expected a list of {len(item_fns)} items, got {len(v)}")
            out = []
            bad = False
            for i, item in enumerate(v):
                f = item_fns[i] if fixed else item_fns[0]
                val = f(item, f"{path}[{i}]", issues)
                bad = bad or val is _BAD
                out.append(val)
            if bad:
                return _BAD
            try:
                return build(out)
            except TypeError as exc:  # unhashable items in a set
                return self._fail(issues, path, str(exc))

        return s

    def _other(self, tp: Any, secret: bool) -> StructureFn:
        converter = self._fallback

        def s(v: Any, path: str, issues: list[Issue]) -> Any:
            if isinstance(tp, type) and type(v) is tp:
                return v
            try:
                return converter.structure(v, tp)
            except Exception as exc:  # noqa: BLE001 - every failure becomes an issue
                detail = MASK if secret else (str(exc) or type(exc).__name__)
                return self._fail(issues, path, f"cannot build {getattr(tp, '__name__', tp)}: {detail}")

        return s

    def _class(self, cls: type[Any], secret: bool) -> StructureFn:
        fields = [a for a in attrs.fields(attrs.resolve_types(cls)) if a.init]
        specs: list[tuple[str, str, StructureFn, bool]] = []
        secrets: dict[str, bool] = {}
        for a in fields:
            meta = a.metadata.get(_META)
            sec = secret or bool(meta is not None and meta.secret)
            secrets[a.name] = sec
            specs.append((a.name, a.alias or a.name, self.fn(a.type, sec), a.default is attrs.NOTHING))
        names = frozenset(a.name for a in fields)
        name_list = sorted(names)

        def s(v: Any, path: str, issues: list[Issue]) -> Any:
            if type(v) is EnvText:
                v = self._from_json(v, path, issues, "a mapping")
                if v is _BAD:
                    return _BAD
            if not isinstance(v, Mapping):
                return self._fail(issues, path, f"expected a mapping, got {kind(v)}")
            before = len(issues)
            for key in v:
                if key not in names:
                    hint = difflib.get_close_matches(str(key), name_list, n=1)
                    tip = f"; did you mean {hint[0]!r}?" if hint else f"; expected one of {', '.join(name_list)}"
                    issues.append(Issue(join(path, key), f"unknown key{tip}"))
            kwargs = {}
            for name, alias, f, required in specs:
                if name in v:
                    out = f(v[name], join(path, name), issues)
                    if out is not _BAD:
                        kwargs[alias] = out
                elif required:
                    issues.append(Issue(join(path, name), "required key is missing"))
            if len(issues) > before:
                # Still run the validators of the fields that did structure: all at once.
                collect_validation_issues(cls, kwargs, path, issues, secrets, partial=True)
                return _BAD
            try:
                return cls(**kwargs)
            except Exception:  # noqa: BLE001 - re-run below to collect every failure
                collect_validation_issues(cls, kwargs, path, issues, secrets)
                return _BAD

        return s


def _in_options(validator: Any) -> list[Any] | None:
    if type(validator).__name__ == "_InValidator" and hasattr(validator, "options"):
        return list(validator.options)
    inner = getattr(validator, "_validators", None)
    if inner:
        for sub in inner:
            found = _in_options(sub)
            if found is not None:
                return found
    return None


def describe_validation(exc: BaseException, a: attrs.Attribute[Any], value: Any, secret: bool) -> str:
    """A validator failure as one line that does not repeat the field name or leak a secret."""
    options = _in_options(a.validator)
    if options is not None and isinstance(exc, ValueError) and value not in options:
        return f"must be one of {', '.join(str(o) for o in options)} (got {show(value, secret)})"
    text = str(exc.args[0]) if exc.args and isinstance(exc.args[0], str) else str(exc)
    text = text or type(exc).__name__
    for prefix in (f"'{a.name}' ", f"'{a.alias}' "):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    return scrub(text, value) if secret else text


def scrub(text: str, *secrets: Any) -> str:
    """Replace every rendering of every secret value in `text` with `***`."""
    forms = {form for v in secrets if not (v is None or v == "" or isinstance(v, bool)) for form in (str(v), repr(v))}
    # Longest first: with secrets "abc" and "xabc", replacing "abc" first would leave "x***".
    for form in sorted(forms, key=len, reverse=True):
        if form:
            text = text.replace(form, MASK)
    return text


def collect_validation_issues(
    cls: type[Any],
    kwargs: Mapping[str, Any],
    path: str,
    issues: list[Issue],
    secrets: Mapping[str, bool],
    *,
    partial: bool = False,
) -> None:
    """Run every converter and validator of `cls` one by one, keeping each failure.

    attrs stops at the first failing validator; people fixing a config want them all.
    The half-built instance lets cross-field validators read their siblings. With
    `partial`, other fields already failed: only the fields in `kwargs` are validated.
    """
    before = len(issues)
    inst = object.__new__(cls)
    for a in attrs.fields(cls):
        alias = a.alias or a.name
        if alias in kwargs:
            value = kwargs[alias]
        elif isinstance(a.default, attrs.Factory):  # type: ignore[arg-type]
            fac = a.default
            value = fac.factory(inst) if fac.takes_self else fac.factory()
        else:
            value = a.default
        if a.converter is not None and alias in kwargs:
            try:
                conv = a.converter
                if isinstance(conv, attrs.Converter):
                    value = conv.converter(value, inst, a)  # type: ignore[attr-defined]
                else:
                    value = conv(value)
            except Exception as exc:  # noqa: BLE001
                message = describe_validation(exc, a, value, secrets.get(a.name, False))
                issues.append(Issue(join(path, a.name), scrub(message, *_secret_kwargs(kwargs, secrets, cls))))
                continue
        object.__setattr__(inst, a.name, value)
    for a in attrs.fields(cls):
        if a.validator is None or not hasattr(inst, a.name):
            continue
        if partial and (a.alias or a.name) not in kwargs:
            continue
        value = getattr(inst, a.name)
        try:
            a.validator(inst, a, value)
        except Exception as exc:  # noqa: BLE001
            message = describe_validation(exc, a, value, secrets.get(a.name, False))
            # A validator may quote a sibling (`must differ from password 'x'`): scrub them all.
            issues.append(Issue(join(path, a.name), scrub(message, *_secret_kwargs(kwargs, secrets, cls))))
    if len(issues) > before or partial:
        return
    post_init = getattr(cls, "__attrs_post_init__", None)
    try:
        if post_init is not None:
            post_init(inst)
        cls(**kwargs)
    except Exception as exc:  # noqa: BLE001
        secret_values = [getattr(inst, n, None) for n, sec in secrets.items() if sec]
        issues.append(Issue(path, scrub(str(exc) or type(exc).__name__, *secret_values)))


def _secret_kwargs(kwargs: Mapping[str, Any], secrets: Mapping[str, bool], cls: type[Any]) -> list[Any]:
    """The values given for the secret fields of `cls` (by init alias)."""
    return [kwargs.get(a.alias or a.name) for a in attrs.fields(cls) if secrets.get(a.name)]


# --- back to plain data -------------------------------------------------------------------


def to_plain(value: Any, *, schema: Schema | None = None, mask: bool = True, path: str = "") -> Any:
    """A config value as JSON-ready data: durations as `"1h30m"`, enums by value, secrets
    masked (when a schema says which leaves are secret)."""
    if schema is not None and mask and path:
        leaf = schema.leaf_of(path)
        if leaf is not None and leaf.secret:
            return MASK
    if attrs.has(type(value)):
        out = {}
        for a in attrs.fields(type(value)):
            sub = join(path, a.name)
            child = getattr(value, a.name)
            if mask and a.metadata.get(_META) is not None and a.metadata[_META].secret:
                out[a.name] = MASK
            else:
                out[a.name] = to_plain(child, schema=schema, mask=mask, path=sub)
        return out
    if isinstance(value, Mapping):
        return {str(k): to_plain(v, schema=schema, mask=mask, path=join(path, k)) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        items = sorted(value, key=repr) if isinstance(value, frozenset | set) else value
        return [to_plain(v, schema=schema, mask=mask, path=path) for v in items]
    if isinstance(value, datetime.timedelta):
        return format_duration(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    return value
