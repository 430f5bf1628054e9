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
import contextvars
import copyreg
import datetime
import enum
import io
import json
import marshal
import math
import pathlib
import pickle
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import attrs
import cattrs

from ._backend import is_pydantic
from ._errors import Issue
from ._guard import MAX_DEPTH
from ._mask import MASK, got, hidden, show
from ._paths import hint, item, join
from ._schema import Schema, is_config
from ._validate import collect_validation_issues
from ._values import (
    MAX_INT_DIGITS,
    TEXT_TYPES,
    EnvText,
    FrozenDict,
    FrozenList,
    float_problem,
    key_problem,
    keys_printable,
    kind,
    printable,
    read_duration,
    text_problem,
)

BAD: Final = object()  # "this value failed"; its issues are already in the list
_BAD: Final = BAD

StructureFn = Callable[[Any, str, list[Issue]], Any]

_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})
_INT = re.compile(r"[+-]?[0-9]+")

MAX_JSON_TEXT: Final = 1024 * 1024
"""Longest env value read as JSON (1 MiB). Linux refuses a single variable over 128 KiB
(MAX_ARG_STRLEN), so anything longer came from an `environ=` mapping, not a real process."""

_OUT_OF_RANGE: Final = "number out of range: past the largest float (~1.8e308)"
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]')


class _Unsupported(TypeError):
    """A field type selreload has no reader for; raised when a Reloader is made."""

    field: str | None = None


def _strict_cattrs() -> cattrs.Converter:
    return cattrs.Converter(forbid_extra_keys=True, prefer_attrib_converters=True)


class Structurer:
    """Compiled strict structuring for one schema.

    `structure(tree)` returns `(instance, [])` or `(None, issues)` with every issue found.
    """

    def __init__(self, schema: Schema) -> None:
        self._schema = schema
        # A pydantic schema: models, and types selreload does not know, go to `_pydantic`.
        self._pydantic = is_pydantic(schema.cls)
        self._fns: dict[tuple[Any, bool], StructureFn] = {}
        self._containers: set[StructureFn] = set()  # what `_class`, `_mapping`, `_sequence` made
        self._fallback = _strict_cattrs()
        # The root is rebuilt whenever anything changed: remembering its input would only
        # cost a fingerprint of the whole tree per reload.
        self._root = self._compile(schema.cls, False, memo=False)

    def structure(
        self, tree: Any, *, issues: list[Issue] | None = None, shared: bool = False
    ) -> tuple[Any, list[Issue]]:
        """`issues` collects what is found (a capped collector from `_layers`); a new list by default.

        `shared`: every container in `tree` comes from selreload's own parsers, which never
        modify a tree once made, and hand back the same object for an unchanged part
        (`_ryml.Sections`): a subtree that is the very object structured last time at its
        path is then taken as unchanged without comparing its values. A tree from anywhere
        else (a user's source may change its dicts in place) is compared value by value.
        """
        issues = [] if issues is None else issues
        token = _SHARED.set(shared) if shared else None
        try:
            value = self._root(tree, "", issues)
        except (ArithmeticError, ValueError, RecursionError) as exc:
            # Every rule refuses by message before this; a value no rule foresaw still
            # ends as an issue, not an exception out of reload().
            issues.append(Issue("", f"a value could not be structured ({type(exc).__name__}): please report it"))
            return None, issues
        finally:
            if token is not None:
                _SHARED.reset(token)
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
        try:
            compiled = self._compile(tp, secret)
        except BaseException:
            del self._fns[key]  # no trampoline left to a function never made
            raise
        cell.append(compiled)
        self._fns[key] = compiled
        return compiled

    # --- compilers ------------------------------------------------------------------------

    def _compile(self, tp: Any, secret: bool, *, memo: bool = True) -> StructureFn:
        compiled = self._compile_plain(tp, secret)
        # Containers remember their last good result per path: an unchanged subtree gives
        # back the very instance it gave before (frozen, so sharing it is safe), and the
        # planner skips a subtree whose live and new instances are the same object.
        if memo and compiled in self._containers:
            return _memoized(compiled)
        return compiled

    def _compile_plain(self, tp: Any, secret: bool) -> StructureFn:
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if tp is Any or tp is object:
            return self._any()
        if self._pydantic:
            from . import _pydantic

            if origin is typing.Annotated:  # constraints (`Gt`, `StringConstraints`): pydantic checks them
                return self.fn(args[0], secret)
            if is_pydantic(tp):
                return _pydantic.model_fn(self, tp, secret)
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
        if tp in TEXT_TYPES:
            return self._text_type(tp, secret)
        if tp is pathlib.Path:
            str_fn = self._str(secret)
            return lambda v, p, e: _BAD if (s := str_fn(v, p, e)) is _BAD else pathlib.Path(s)
        if origin in (dict, collections.abc.Mapping, collections.abc.MutableMapping) or tp is dict:
            k, v = args or (Any, Any)
            return self._mapping(k, v, secret)
        if origin in (list, tuple, set, frozenset, collections.abc.Sequence) or tp in (list, tuple):
            return self._sequence(tp, origin or tp, args, secret)
        return self._other(tp, secret)

    def fail(self, issues: list[Issue], path: str, message: str) -> object:
        """Record an issue at `path` and return `BAD`."""
        issues.append(Issue(path, message))
        return _BAD

    _fail = fail

    def _bool(self, secret: bool) -> StructureFn:
        def s(v: Any, path: str, issues: list[Issue]) -> Any:
            if v is True or v is False:
                return v
            if type(v) is EnvText:
                t = v.strip().lower()
                if t in _TRUE or t in _FALSE:
                    return t in _TRUE
                return self._fail(issues, path, f"expected a bool (true/false/1/0), got {show(v, secret=secret)}")
            return self._fail(issues, path, f"expected a bool, got {got(v, secret=secret)}")

        return s

    def _int(self, secret: bool) -> StructureFn:
        def s(v: Any, path: str, issues: list[Issue]) -> Any:
            if type(v) is int:
                return v
            if type(v) is EnvText:
                t = v.strip()
                if _INT.fullmatch(t):
                    digits = len(t.lstrip("+-"))
                    if digits > MAX_INT_DIGITS:
                        return self._fail(
                            issues, path, f"integer too long: {digits:,} digits, over the limit of {MAX_INT_DIGITS:,}"
                        )
                    try:
                        return int(t)
                    except ValueError:  # the process lowered sys.set_int_max_str_digits()
                        return self._fail(issues, path, f"integer too long: {digits:,} digits")
            return self._fail(issues, path, f"expected an int, got {got(v, secret=secret)}")

        return s

    def _float(self, secret: bool) -> StructureFn:
        def s(v: Any, path: str, issues: list[Issue]) -> Any:
            if type(v) is int:
                try:
                    v = float(v)
                except OverflowError:
                    digits = len(str(abs(v)))
                    return self._fail(issues, path, f"{_OUT_OF_RANGE}, got a {digits:,}-digit integer")
            elif type(v) is EnvText:
                try:
                    number = float(v)
                except ValueError:
                    return self._fail(issues, path, f"expected a number, got text {show(v, secret=secret)}")
                if math.isinf(number) and v.strip().lstrip("+-").lower() not in ("inf", "infinity"):
                    return self._fail(issues, path, f"{_OUT_OF_RANGE}, got {show(v, secret=secret)}")
                v = number
            if type(v) is float:
                problem = float_problem(v)
                if problem is None:
                    return v
                return self._fail(issues, path, f"{problem}, got {show(v, secret=secret)}")
            return self._fail(issues, path, f"expected a number, got {got(v, secret=secret)}")

        return s

    def _str(self, secret: bool) -> StructureFn:
        def s(v: Any, path: str, issues: list[Issue]) -> Any:
            if type(v) is str or type(v) is EnvText:
                problem = text_problem(v)
                if problem is not None:
                    return self._fail(issues, path, problem)
                return str(v)
            return self._fail(issues, path, f"expected a string, got {got(v, secret=secret)}")

        return s

    def _timedelta(self, secret: bool) -> StructureFn:
        def s(v: Any, path: str, issues: list[Issue]) -> Any:
            td = read_duration(v)
            if isinstance(td, datetime.timedelta):
                return td
            return self._fail(issues, path, f"{td}, got {show(v, secret=secret)}")

        return s

    def _text_type(self, tp: type, secret: bool) -> StructureFn:
        what, read = TEXT_TYPES[tp]

        def s(v: Any, path: str, issues: list[Issue]) -> Any:
            if type(v) is tp:  # a date or time YAML and TOML read themselves
                return v
            out = read(v)
            if out is None:
                return self._fail(issues, path, f"expected {what}, got {got(v, secret=secret)}")
            return out

        return s

    def _any(self) -> StructureFn:
        def s(v: Any, path: str, issues: list[Issue]) -> Any:
            # Untyped data goes live as it is, so only what would break rendering it is
            # refused: text that is not UTF-8 (values and keys), keys that are not one
            # printable line, floats that are not finite, bytes. Depth is bounded by _guard.
            before = len(issues)
            stack: list[tuple[Any, str]] = [(v, path)]
            while stack:
                node, where = stack.pop()
                if isinstance(node, str):
                    problem = text_problem(node)
                    if problem is not None:
                        issues.append(Issue(where, problem))
                elif isinstance(node, float):
                    # As for a float field: NaN is not equal to itself (every diff saw a
                    # change), and neither it nor inf is JSON (the admin API's /config and
                    # /explain answered 500, and the audit record was no longer JSON).
                    if (problem := float_problem(node)) is not None:
                        issues.append(Issue(where, problem))
                elif isinstance(node, bytes | bytearray):
                    # YAML's !!binary: no JSON rendering (/config and /explain answered 500).
                    issues.append(Issue(where, "binary data (!!binary) is not a config value: write it as text"))
                elif isinstance(node, Mapping):
                    if keys_printable(node):
                        stack.extend((entry, join(where, key)) for key, entry in node.items())
                        continue
                    for key, entry in node.items():
                        sub = join(where, printable(key))
                        if isinstance(key, str) and (problem := key_problem(key)) is not None:
                            issues.append(Issue(sub, f"key {problem}"))
                        stack.append((entry, sub))
                elif isinstance(node, list | tuple):
                    stack.extend((entry, item(where, i)) for i, entry in enumerate(node))
            return _BAD if len(issues) > before else frozen(v)

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
            elif any(type(o) is type(v) and o == v for o in options):
                return lookup[v]
            return self._fail(issues, path, f"must be one of {listed} (got {show(v, secret=secret)})")

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
            return self._fail(issues, path, f"expected {names}, got {got(v, secret=secret)}")

        return s

    def from_json(self, v: Any, path: str, issues: list[Issue], want: str) -> Any:
        # Budgets first: the decoder recurses once per level (RecursionError at ~1,000).
        if len(v) > MAX_JSON_TEXT:
            return self._fail(
                issues,
                path,
                f"expected {want} as JSON text, got {len(v):,} characters, over the limit of {MAX_JSON_TEXT:,}",
            )
        if _json_depth(v) > MAX_DEPTH:
            return self._fail(
                issues, path, f"expected {want} as JSON text, too deeply nested: more than {MAX_DEPTH} levels"
            )
        try:
            return json.loads(v)
        except json.JSONDecodeError as exc:
            return self._fail(issues, path, f"expected {want} as JSON text, got invalid JSON ({exc.msg})")
        except ValueError:  # an integer past sys.get_int_max_str_digits()
            return self._fail(issues, path, f"expected {want} as JSON text, got an integer too long to read")
        except RecursionError:
            return self._fail(issues, path, f"expected {want} as JSON text, too deeply nested")

    def _mapping(self, k_tp: Any, v_tp: Any, secret: bool) -> StructureFn:
        k_fn = self.fn(k_tp, secret)
        v_fn = self.fn(v_tp, secret)
        # A policy file or a credential rule may make one key secret (`flags.api_key`).
        v_secret_fn = v_fn if secret else self.fn(v_tp, True)
        secret_key = self._schema.policy_of

        def s(v: Any, path: str, issues: list[Issue]) -> Any:
            if type(v) is EnvText:
                v = self.from_json(v, path, issues, "a mapping")
                if v is _BAD:
                    return _BAD
            if not isinstance(v, Mapping):
                return self._fail(issues, path, f"expected a mapping, got {kind(v)}")
            out = {}
            bad = False
            plain = keys_printable(v)  # the usual case, in a few C calls for the whole map
            for key, entry in v.items():
                sub = join(path, key if plain else printable(key))
                if not plain and type(key) is str and (problem := key_problem(key)) is not None:
                    issues.append(Issue(sub, f"key {problem}"))
                    bad = True
                    continue
                k = k_fn(key, sub, issues)
                val = (v_secret_fn if secret_key(sub)[1] else v_fn)(entry, sub, issues)
                if k is _BAD or val is _BAD:
                    bad = True
                else:
                    out[k] = val
            return _BAD if bad else FrozenDict(out)

        self._containers.add(s)
        return s

    def _sequence(self, tp: Any, origin: Any, args: tuple[Any, ...], secret: bool) -> StructureFn:
        fixed = origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis)
        item_fns = [self.fn(a, secret) for a in args] if fixed else [self.fn(args[0] if args else Any, secret)]
        build: Callable[[list[Any]], Any]
        if origin is set and self._pydantic:
            build = set  # pydantic's strict mode takes a set for `set[...]`, not a frozenset
        elif origin in (set, frozenset):
            build = frozenset
        elif origin is tuple:
            build = tuple
        else:
            build = FrozenList

        def s(v: Any, path: str, issues: list[Issue]) -> Any:
            if type(v) is EnvText:
                v = self.from_json(v, path, issues, "a list")
                if v is _BAD:
                    return _BAD
            if not isinstance(v, list | tuple):
                return self._fail(issues, path, f"expected a list, got {kind(v)}")
            if fixed and len(v) != len(item_fns):
                return self._fail(issues, path, f"expected a list of {len(item_fns)} items, got {len(v)}")
            out = []
            bad = False
            for i, value in enumerate(v):
                f = item_fns[i] if fixed else item_fns[0]
                val = f(value, item(path, i), issues)
                bad = bad or val is _BAD
                out.append(val)
            if bad:
                return _BAD
            try:
                return build(out)
            except TypeError as exc:  # unhashable items in a set
                return self._fail(issues, path, str(exc))

        self._containers.add(s)
        return s

    def _other(self, tp: Any, secret: bool) -> StructureFn:
        if self._pydantic:
            from . import _pydantic

            return _pydantic.other_fn(self, tp, secret)
        converter = self._fallback
        try:
            converter.get_structure_hook(tp)
        except cattrs.errors.StructureHandlerNotFoundError:
            # Said when the Reloader is made, not as an issue of every load: cattrs' own
            # message asks for a structure hook, which selreload gives no way to register.
            raise _Unsupported(
                f"selreload cannot read a config field of type {getattr(tp, '__qualname__', tp)!s}: declare it as"
                " one of the types listed under 'Values' in the reference (text, numbers, durations, paths,"
                " addresses, UUIDs, decimals, dates, enums, Literals, collections of those, config classes),"
                " or as `str` and convert it where it is used"
            ) from None

        def s(v: Any, path: str, issues: list[Issue]) -> Any:
            if isinstance(tp, type) and type(v) is tp:
                return v
            try:
                return converter.structure(v, tp)
            except Exception as exc:  # noqa: BLE001 - every failure becomes an issue
                detail = MASK if secret else (str(exc) or type(exc).__name__)
                return self._fail(issues, path, f"cannot build {getattr(tp, '__name__', tp)}: {detail}")

        return s

    def node_fields(
        self,
        v: Any,
        path: str,
        issues: list[Issue],
        specs: Sequence[tuple[str, str, StructureFn, bool]],
        names: frozenset[str],
        name_list: list[str],
        paths: dict[str, list[str]] | None = None,
    ) -> tuple[dict[str, Any], set[str]] | None:
        """The fields of a node's mapping, structured: `({key: value}, names that failed or
        are missing)`, or None (an issue recorded) when `v` is not a mapping.

        `specs` holds `(name, keyword, function, required)` per field; `paths`, when given,
        remembers the fields' paths under each node path (a node is mostly at one path:
        no formatting per field and reload).
        """
        if type(v) is EnvText:
            v = self.from_json(v, path, issues, "a mapping")
            if v is _BAD:
                return None
        if type(v) is not dict and not isinstance(v, Mapping):  # the ABC check only for others
            self.fail(issues, path, f"expected a mapping, got {kind(v)}")
            return None
        if type(v) is not dict or not v.keys() <= names:  # the usual case: one check in C
            unknown_keys(v, names, name_list, path, issues)
        subs = None if paths is None else paths.get(path)
        if subs is None:
            subs = [join(path, spec[0]) for spec in specs]
            if paths is not None and len(paths) < MEMO_PATHS:
                paths[path] = subs
        kwargs: dict[str, Any] = {}
        failed: set[str] = set()
        for (name, keyword, f, required), sub in zip(specs, subs, strict=True):
            if name in v:
                out = f(v[name], sub, issues)
                if out is _BAD:
                    failed.add(name)
                else:
                    kwargs[keyword] = out
            elif required:
                issues.append(Issue(sub, "required key is missing"))
                failed.add(name)
        return kwargs, failed

    def _class(self, cls: type[Any], secret: bool) -> StructureFn:
        fields = [a for a in attrs.fields(attrs.resolve_types(cls)) if a.init]
        specs: list[tuple[str, str, StructureFn, bool]] = []
        secrets: dict[str, bool] = {}
        for a in fields:
            sec = secret or hidden(cls, a.name)  # declared, by a policy file or a credential rule
            secrets[a.name] = sec
            try:
                fn = self.fn(a.type, sec)
            except _Unsupported as exc:
                if exc.field is None:  # the innermost class names its field
                    exc.field = f"{cls.__qualname__}.{a.name}"
                    exc.args = (f"{exc.field}: {exc.args[0]}",)
                raise
            specs.append((a.name, a.alias or a.name, fn, a.default is attrs.NOTHING))
        names = frozenset(a.name for a in fields)
        name_list = sorted(names)
        paths: dict[str, list[str]] = {}

        def s(v: Any, path: str, issues: list[Issue]) -> Any:
            before = len(issues)
            found = self.node_fields(v, path, issues, specs, names, name_list, paths)
            if found is None:
                return _BAD
            kwargs = found[0]
            if len(issues) > before:
                # Still run the validators of the fields that did structure: all at once.
                collect_validation_issues(cls, kwargs, path, issues, secrets, partial=True)
                return _BAD
            try:
                return cls(**kwargs)
            except Exception:  # noqa: BLE001 - re-run below to collect every failure
                collect_validation_issues(cls, kwargs, path, issues, secrets)
                return _BAD

        self._containers.add(s)
        return s


MEMO_PATHS: Final = 65536
"""Paths one container function remembers (mapping keys are paths too: bounded)."""


def fingerprint(value: Any) -> bytes | None:
    """Bytes that are equal only when two raw trees are equal value for value and type for
    type, or None when the tree holds something neither `marshal` nor `pickle` writes.

    Not `==`: `1 == 1.0 == True` and `0.0 == -0.0`, and `"true"` from a file equals the same
    text from env (an `EnvText`, which a bool field parses); each structures differently.
    `marshal` writes exact types only (in C, as fast as `==`); it refuses subclasses and
    dates, which `pickle` writes with their class (and nothing else: `_Fingerprinter`).
    Equal bytes mean equal trees; unequal bytes may still be equal trees (key order,
    shared objects): then the subtree is only structured again.
    """
    try:
        return marshal.dumps(value)
    except ValueError:
        return _pickled(value)


def _pickled(value: Any) -> bytes | None:
    """`fingerprint` of a tree `marshal` refuses (a subclass, a date), or None."""
    out = io.BytesIO()
    try:
        _Fingerprinter(out, protocol=5).dump(value)
    except Exception:  # noqa: BLE001 - nothing to compare by: structure it
        return None
    return b"p" + out.getvalue()


class _Fingerprinter(pickle.Pickler):
    """Writes what parsers and env make, nothing else: any other object (whose pickle
    may run its own code, or say nothing of its state) leaves the tree unremembered."""

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) in _WRITTEN or obj in _GLOBALS:
            return NotImplemented  # pickled the usual way
        raise TypeError(type(obj).__name__)


_WRITTEN: Final = frozenset(
    {EnvText, datetime.datetime, datetime.date, datetime.time, datetime.timedelta, datetime.timezone}
)
_GLOBALS: Final = frozenset({*_WRITTEN, copyreg.__dict__["__newobj__"]})  # what their pickles name


_SHARED: Final[contextvars.ContextVar[bool]] = contextvars.ContextVar("selreload_shared_tree", default=False)
"""Whether the tree being structured is `shared` (`Structurer.structure`): per call, so a
plan on another thread structures its own tree by its own rule."""


def _memoized(structure: StructureFn) -> StructureFn:
    """`structure` that gives back its last good result at a path for the same raw input.

    Only results that added no issue are kept: a failure is structured again, so its
    issues are found (and placed) anew. A validator is taken to be a function of its
    node's values, as attrs treats it (it runs when an instance is built, never again):
    an unchanged subtree is not validated again, every node on the way to a change is.
    Each entry is one tuple, replaced whole: a plan on another thread (`Reloader.plan()`
    takes no lock) reads one old or one new entry, both true.
    """
    # path -> (the raw subtree when it came from a shared tree, its fingerprint, result)
    memo: dict[str, tuple[Any, bytes | None, Any]] = {}
    shared = _SHARED.get

    def s(v: Any, path: str, issues: list[Issue]) -> Any:
        hit = memo.get(path)
        by_identity = shared()
        if by_identity and hit is not None and hit[0] is not None:
            if hit[0] is v:
                return hit[2]  # the same object of a tree no one modifies: the same subtree
            # Put together from reused parts (`_ryml.Sections`) around a change: the
            # unchanged children are found by identity below, and a fingerprint of the
            # whole subtree (1 ms at 10,000 leaves) would only say it changed.
            key = None if _reuses_children(hit[0], v) else fingerprint(v)
        else:
            key = fingerprint(v)
        if key is not None and hit is not None and hit[1] == key:
            out = hit[2]
            if not by_identity:
                return out
        else:
            before = len(issues)
            out = structure(v, path, issues)
            if out is _BAD or len(issues) != before or (key is None and not by_identity):
                return out
            if len(memo) >= MEMO_PATHS:
                memo.clear()
        # The object is kept only from a shared tree (which hands it back when it is
        # unchanged): any other tree's next object is new, keeping this one would hold it.
        memo[path] = (v if by_identity else None, key, out)
        return out

    return s


def _reuses_children(old: Any, new: Any) -> bool:
    """Whether `new` holds a container child that is the very object `old` held there:
    only a tree put together from the parts of an earlier one does (`_ryml.Sections`)."""
    if type(old) is dict and type(new) is dict:
        get = new.get
        return any(get(k) is child for k, child in old.items() if type(child) in _NESTED)
    return False


_NESTED: Final = (dict, list)


def frozen(value: Any) -> Any:
    """Untyped data made read-only all the way down, as typed data is: a reader of the live
    config could change a `dict`, `list` or `set` under every other reader (and under the
    next diff). Depth is bounded by _guard."""
    # A call per container only: scalars, most of the values, are taken as they are.
    if isinstance(value, Mapping):
        return FrozenDict({k: frozen(v) if isinstance(v, _CONTAINERS) else v for k, v in value.items()})
    if isinstance(value, list):
        return FrozenList([frozen(v) if isinstance(v, _CONTAINERS) else v for v in value])
    if isinstance(value, tuple):
        return tuple(frozen(v) if isinstance(v, _CONTAINERS) else v for v in value)
    if isinstance(value, set | frozenset):
        return frozenset(frozen(v) if isinstance(v, _CONTAINERS) else v for v in value)
    return value


_CONTAINERS: Final = (Mapping, list, tuple, set, frozenset)


def unknown_keys(
    tree: Mapping[Any, Any], names: frozenset[str], name_list: list[str], path: str, issues: list[Issue]
) -> None:
    """An issue, with a "did you mean", for each key of `tree` that is not a field name."""
    for key in tree:
        if key not in names:
            shown = printable(key)
            tip = hint(str(shown), name_list, otherwise=f"; expected one of {', '.join(name_list)}")
            issues.append(Issue(join(path, shown), f"unknown key{tip}"))


def _json_depth(text: str) -> int:
    """The nesting depth of JSON text, brackets inside strings not counted.

    Free unless the text has more brackets than the depth budget.
    """
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return 0
    depth = deepest = 0
    for m in _JSON_TOKEN.finditer(text):
        token = m.group()
        if token in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in ("]", "}"):
            depth -= 1
    return deepest
