"""A config class as JSON Schema (draft 2020-12), so editors validate and complete config files as they are typed."""

from __future__ import annotations

import ast
import collections.abc
import datetime
import decimal
import enum
import inspect
import ipaddress
import itertools
import json
import pathlib
import textwrap
import types
import typing
import uuid
from typing import Any, Final

import attrs

from ._backend import is_pydantic
from ._policy import PolicyInput, load_policies
from ._schema import Schema, is_config, is_secret_field, unwrap_optional
from ._validate import validator_bounds
from ._values import to_plain

DRAFT: Final = "https://json-schema.org/draft/2020-12/schema"

_N = r"[0-9]+(?:[.,][0-9]+)?"
# What `_values.read_duration` reads from text, as an ECMA-262 regex: seconds ("90",
# "1.5"), Go-style units ("15m", "1h30m", "250ms") or ISO 8601 days and times ("PT15M",
# "P1DT2H", "P2W"; years and months are refused). The 100-year cap is not in it.
DURATION_PATTERN: Final = (
    r"^\s*\+?(?:"
    r"[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?"
    r"|(?:[0-9]+(?:\.[0-9]+)?(?:ms|us|µs|s|m|h|d|w))+"
    rf"|[Pp](?!\s*$)(?:{_N}[Ww])?(?:{_N}[Dd])?(?:[Tt](?=[0-9])(?:{_N}[Hh])?(?:{_N}[Mm])?(?:{_N}[Ss])?)?"
    r")\s*$"
)

_DURATION: Final = {
    "anyOf": [
        {"type": "string", "pattern": DURATION_PATTERN},
        {"type": "number", "minimum": 0},
    ],
    "description": "a duration: '15m', '24h', '1h30m', '250ms', ISO 8601 'PT15M', or seconds",
}

_SEQUENCES: Final = (list, tuple, set, frozenset, collections.abc.Sequence, collections.abc.Set)
_MAPPINGS: Final = (dict, collections.abc.Mapping, collections.abc.MutableMapping)


def json_schema(
    schema_cls: type[Any], *, policies: PolicyInput | list[PolicyInput] | None = None, partial: bool = False
) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the config files of `schema_cls`.

    Types, defaults (never a secret's), `enum` from `in_` validators and Literal/Enum types,
    bounds from `ge`/`gt`/`le`/`lt`/`min_len`/`max_len`, descriptions (a field's
    `metadata={"description": ...}`, else the string literal under it in the source, and
    class docstrings), unknown keys refused (`additionalProperties: false`), and on each leaf
    its resolved policy as `x-selreload-policy` (`"hot"` or `"restart_only"`) and
    `x-selreload-secret: true` for secrets.

    Args:
        schema_cls: the config class.
        policies: policy files or `PolicySet`s, as `Reloader(policies=...)` takes them.
        partial: no key is required (for overlay layers that set a few keys).

    Raises:
        PolicyError: a policy file cannot be honoured.
    """
    compiled = Schema(schema_cls, policies=load_policies(policies))
    if is_pydantic(schema_cls):
        # pydantic's own schema (its constraints, aliases and formats), annotated the same way.
        from . import _pydantic

        return {"$schema": DRAFT, **_pydantic.json_schema(compiled, partial=partial)}
    out: dict[str, Any] = {"$schema": DRAFT, "title": schema_cls.__name__}
    out.update(_Builder(compiled, partial=partial).object(schema_cls, "", frozenset()))
    return out


class _Builder:
    def __init__(self, schema: Schema, *, partial: bool) -> None:
        self.schema = schema
        self.partial = partial

    def object(self, cls: type[Any], prefix: str | None, chain: frozenset[type[Any]]) -> dict[str, Any]:
        """An attrs class; `prefix` is its dotted path in the schema (with a trailing dot,
        `""` for the root), `None` inside a container (no per-path policies there)."""
        out: dict[str, Any] = {"type": "object"}
        doc = _class_doc(cls)
        if doc:
            out["description"] = doc
        chain = chain | {cls}
        docs = _field_docs(cls)
        props: dict[str, Any] = {}
        required: list[str] = []
        for a in attrs.fields(attrs.resolve_types(cls)):
            if not a.init:
                continue
            props[a.name] = self.field(a, None if prefix is None else prefix + a.name, chain, docs)
            if a.default is attrs.NOTHING:
                required.append(a.name)
        out["properties"] = props
        if required and not self.partial:
            out["required"] = required
        out["additionalProperties"] = False
        return out

    def field(
        self, a: attrs.Attribute[Any], path: str | None, chain: frozenset[type[Any]], docs: dict[str, str]
    ) -> dict[str, Any]:
        inner = unwrap_optional(a.type)
        nullable = inner is not a.type
        description = a.metadata.get("description") or docs.get(a.name)
        section = a.type
        if section is not None and is_config(section) and section not in chain:  # never optional (Schema)
            node = self.object(section, None if path is None else path + ".", chain)
            if description:
                node["description"] = str(description)
            return node
        out = self.type(a.type, chain)
        leaf = self.schema.leaves.get(path) if path is not None else None
        secret = leaf.secret if leaf is not None else is_secret_field(a)
        if description:
            out["description"] = str(description)
        _bounds(out, inner, validator_bounds(a.validator) if a.validator is not None else {}, nullable)
        if not secret and a.default is not attrs.NOTHING:
            default = _default(a)
            if default is not _NO_DEFAULT:
                out["default"] = default
        if leaf is not None:
            out["x-selreload-policy"] = leaf.policy.value
        if secret:
            out["x-selreload-secret"] = True
        return out

    def type(self, tp: Any, chain: frozenset[type[Any]]) -> dict[str, Any]:
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if is_config(tp):
            return self.object(tp, None, chain) if tp not in chain else {"type": "object"}
        if origin in (typing.Union, types.UnionType):
            members = [self.type(a, chain) for a in args]
            return {"anyOf": members}
        if origin is typing.Literal:
            return {"enum": [to_plain(a) for a in args]}
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return {"enum": [m.value for m in tp]}
        simple = _SIMPLE.get(tp)
        if simple is not None:
            return dict(simple)
        if tp is datetime.timedelta:
            copied: dict[str, Any] = json.loads(json.dumps(_DURATION))  # a copy: callers add keys
            return copied
        if isinstance(tp, type) and issubclass(tp, pathlib.PurePath):
            return {"type": "string"}
        if origin in _MAPPINGS or tp is dict:
            k, v = args or (Any, Any)
            out: dict[str, Any] = {"type": "object", "additionalProperties": self.type(v, chain)}
            keys = self.type(k, chain)
            if "enum" in keys or "pattern" in keys:
                out["propertyNames"] = keys
            return out
        if origin in _SEQUENCES or tp in (list, tuple, set, frozenset):
            base = origin or tp
            out = {"type": "array"}
            if base is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
                out.update(
                    prefixItems=[self.type(a, chain) for a in args], items=False, minItems=len(args), maxItems=len(args)
                )
            elif args:
                out["items"] = self.type(args[0], chain)
            if base in (set, frozenset, collections.abc.Set):
                out["uniqueItems"] = True
            return out
        return {}  # Any, object, or a type only cattrs knows: anything


_SIMPLE: Final[dict[Any, dict[str, Any]]] = {
    bool: {"type": "boolean"},
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string"},
    type(None): {"type": "null"},
    datetime.datetime: {"type": "string", "format": "date-time"},
    datetime.date: {"type": "string", "format": "date"},
    datetime.time: {"type": "string", "format": "time"},
    ipaddress.IPv4Address: {"type": "string", "format": "ipv4"},
    ipaddress.IPv6Address: {"type": "string", "format": "ipv6"},
    ipaddress.IPv4Network: {"type": "string"},
    ipaddress.IPv6Network: {"type": "string"},
    ipaddress.IPv4Interface: {"type": "string"},
    ipaddress.IPv6Interface: {"type": "string"},
    uuid.UUID: {"type": "string", "format": "uuid"},
    decimal.Decimal: {"type": ["number", "string"]},
}

_NO_DEFAULT: Final = object()


def _default(a: attrs.Attribute[Any]) -> Any:
    """The field's default as plain JSON, or `_NO_DEFAULT` (a factory that takes self, a
    value JSON cannot hold)."""
    value: Any = a.default
    if isinstance(value, attrs.Factory):  # type: ignore[arg-type]
        if value.takes_self:
            return _NO_DEFAULT
        try:
            value = value.factory()
        except Exception:  # noqa: BLE001 - a default the schema cannot show is left out
            return _NO_DEFAULT
    if attrs.has(type(value)):
        return _NO_DEFAULT  # a nested class: its fields carry their own defaults
    plain = to_plain(value)
    try:
        json.dumps(plain, allow_nan=False)
    except (TypeError, ValueError):
        return _NO_DEFAULT
    return plain


def _bounds(out: dict[str, Any], tp: Any, found: dict[str, Any], nullable: bool) -> None:
    if "enum" in found:
        options = [to_plain(o) for o in found["enum"]]
        out["enum"] = [*options, None] if nullable and None not in options else options
    for op, key in ((">=", "minimum"), (">", "exclusiveMinimum"), ("<=", "maximum"), ("<", "exclusiveMaximum")):
        bound = found.get(op)
        if isinstance(bound, int | float) and not isinstance(bound, bool):
            out[key] = bound
    origin = typing.get_origin(tp) or tp
    if tp is str:
        names = [("minLength", "maxLength")]
    elif origin in _SEQUENCES:
        names = [("minItems", "maxItems")]
    elif origin in _MAPPINGS:
        names = [("minProperties", "maxProperties")]
    else:  # not known here: each keyword applies to its own JSON type only
        names = [("minLength", "maxLength"), ("minItems", "maxItems"), ("minProperties", "maxProperties")]
    for low, high in names:
        if "min_len" in found:
            out[low] = found["min_len"]
        if "max_len" in found:
            out[high] = found["max_len"]


def _class_doc(cls: type[Any]) -> str | None:
    doc = cls.__dict__.get("__doc__")
    return inspect.cleandoc(doc) if isinstance(doc, str) and doc.strip() else None


def _field_docs(cls: type[Any]) -> dict[str, str]:
    """The string literal right under each field in the class's source (an attribute
    docstring, as Sphinx reads them); `{}` when the source is not available."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return {}
    body = next((n.body for n in tree.body if isinstance(n, ast.ClassDef)), [])
    docs: dict[str, str] = {}
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = inspect.cleandoc(after.value.value)
    return docs
