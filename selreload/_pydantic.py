"""The pydantic backend: pydantic v2 models as config classes (imported only when one is met).

Structuring is two passes per model. selreload's own strict rules first, per field, for
the types it knows (the same functions as for attrs classes: env text parsed by the
field's type, `"false"` never a bool, durations like `15m`, surrogates, huge numbers and
non-finite floats refused), so an attrs config and its pydantic twin accept the same
documents. Then `model_validate(..., strict=True)` with those values: pydantic's own
constraints, field validators and model validators. Types selreload does not know
(`SecretStr`, URLs, UUIDs, datetimes, ...) are validated by pydantic alone, in its strict
JSON mode when the document holds them as text, because a document is JSON-like data.

Paths use each field's document key: its alias when the model declares one (`KeyMap`,
below), as pydantic validates it; the model is then validated by field name.

pydantic's error messages are rebuilt here: `input` is never shown for a secret leaf, and
a message written by a validator is withheld whole when it quotes a secret in scope.
"""

from __future__ import annotations

import inspect
import json
import operator
import types
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

import pydantic
import pydantic_core
from pydantic import BaseModel, TypeAdapter, ValidationError

from ._backend import META, FieldPolicy, NodeField
from ._change import Policy
from ._errors import ConfigError, Issue
from ._mask import MASK, WITHHELD_SECRET, Guard, hidden, secrets_inside, show
from ._paths import item, join
from ._values import EnvText, FrozenDict, FrozenList, printable, text_problem

if TYPE_CHECKING:
    from ._structure import StructureFn, Structurer

_WORDS: Final = {
    "hot": FieldPolicy(Policy.HOT),
    "restart_only": FieldPolicy(Policy.RESTART_ONLY),
    "restart-only": FieldPolicy(Policy.RESTART_ONLY),
    "secret": FieldPolicy(Policy.RESTART_ONLY, secret=True),
    "secret_hot": FieldPolicy(Policy.HOT, secret=True),
}
_BUILTIN_ERRORS: Final = frozenset(typing.get_args(pydantic_core.core_schema.ErrorType)) - {
    "value_error",
    "assertion_error",
}
_RAW_MODES: Final = frozenset({"before", "plain", "wrap"})
_RAW_VALIDATORS: Final = (pydantic.BeforeValidator, pydantic.PlainValidator, pydantic.WrapValidator)
_SECRET_TYPES: Final = (pydantic.SecretStr, pydantic.SecretBytes)


def _complete(cls: type[BaseModel]) -> None:
    if not cls.__pydantic_complete__:
        try:
            cls.model_rebuild()
        except pydantic.PydanticUndefinedAnnotation as exc:
            raise TypeError(f"cannot resolve the annotations of {cls.__qualname__} ({exc})") from None


def _holds_secret(tp: Any) -> bool:
    if isinstance(tp, type) and issubclass(tp, _SECRET_TYPES):
        return True
    return any(_holds_secret(arg) for arg in typing.get_args(tp))


def _declared(cls: type[BaseModel], name: str, info: pydantic.fields.FieldInfo) -> FieldPolicy | None:
    marks = [m for m in info.metadata if isinstance(m, FieldPolicy)]
    if typing.get_origin(info.annotation) in (typing.Union, types.UnionType):  # `Annotated[str, sr.Hot] | None`
        for arg in typing.get_args(info.annotation):
            marks += [m for m in getattr(arg, "__metadata__", ()) if isinstance(m, FieldPolicy)]
    extra = info.json_schema_extra
    word = extra.get(META) if isinstance(extra, dict) else None
    declared: FieldPolicy | None = marks[-1] if marks else None
    if declared is None and word is not None:
        declared = _WORDS.get(word) if isinstance(word, str) else None
        if declared is None:
            raise TypeError(
                f"{cls.__qualname__}.{name}: json_schema_extra {{'selreload': {word!r}}}: "
                f"expected one of {', '.join(repr(w) for w in _WORDS)}"
            )
    if _holds_secret(info.annotation) and (declared is None or not declared.secret):
        # SecretStr / SecretBytes: a secret, restart-only unless marked hot.
        hot = declared is not None and declared.policy is Policy.HOT
        declared = FieldPolicy(Policy.HOT if hot else Policy.RESTART_ONLY, secret=True)
    return declared


def fields(cls: type[BaseModel]) -> list[NodeField]:
    """The fields of a model, by document key, with their declared policies (markers,
    `json_schema_extra`, secret types)."""
    k = keys(cls)
    return [
        NodeField(k.key_of[name], info.annotation, _declared(cls, name, info))
        for name, info in cls.model_fields.items()
    ]


def declared_secret(cls: type[BaseModel], key: str) -> bool:
    name = keys(cls).name_of.get(key, key)
    info = cls.model_fields.get(name)
    declared = _declared(cls, name, info) if info is not None else None
    return declared is not None and declared.secret


# --- document keys: aliases -------------------------------------------------------------------
#
# A model that declares aliases (`Field(alias=...)`, `validation_alias=`, an `alias_generator`)
# is written with those keys in its documents, as pydantic validates it. selreload's paths are
# document keys everywhere: errors, changes, `on()`, policy files, `explain`, the JSON Schema.
# The paths a user reads are then the keys they typed, and an error's path finds its
# `file:line:col` (origins are keyed by what the document holds). Everything in selreload
# reads a node by its path's keys (`getattr(node, key)`), so a model class answers to its
# keys too: a read-only property per aliased field (`cfg.logLevel is cfg.log_level`).


class KeyMap:
    """The document keys of one model class.

    Attributes:
        keys: the canonical key of each field, in field order (what paths use).
        key_of: field name -> canonical key.
        name_of: every accepted key (canonical or not) -> field name.
        others: field name -> the other keys a document may use for it (the field name
            under `validate_by_name`/`populate_by_name`, further `AliasChoices`).
    """

    __slots__ = ("key_of", "keys", "name_of", "others")

    def __init__(self, key_of: dict[str, str], others: dict[str, tuple[str, ...]]) -> None:
        self.key_of = key_of
        self.keys = tuple(key_of.values())
        self.others = others
        self.name_of = {key: name for name, key in key_of.items()}
        for name, more in others.items():
            self.name_of.update(dict.fromkeys(more, name))


class _KeyProperty(property):
    """The read-only attribute an aliased field gets under its document key."""


_KEYS: dict[type, KeyMap] = {}


def _choices(cls: type[BaseModel], name: str, alias: object) -> list[str]:
    if alias is None:
        return []
    if isinstance(alias, str):
        return [alias]
    items = alias.choices if isinstance(alias, pydantic.AliasChoices) else [alias]
    out = []
    for choice in items:
        if isinstance(choice, str):
            out.append(choice)
        elif isinstance(choice, pydantic.AliasPath) and len(choice.path) == 1 and isinstance(choice.path[0], str):
            out.append(choice.path[0])
        else:
            raise TypeError(
                f"{cls.__qualname__}.{name}: validation alias {choice!r} reads a nested path; selreload reads one "
                "document key per field: use a plain alias, or AliasChoices of keys"
            )
    return out


def keys(cls: type[BaseModel]) -> KeyMap:
    """The document keys of a model class (cached); gives the class its key properties.

    Raises:
        TypeError: an alias that is not a key (a nested `AliasPath`), a key that two fields
            share, or a key the class already has as an attribute (other than a deprecated
            pydantic v1 method such as `schema` or `json`, which the key shadows).
    """
    found = _KEYS.get(cls)
    if found is not None:
        return found
    _complete(cls)
    config = cls.model_config
    by_alias = config.get("validate_by_alias", True) is not False
    by_name = bool(config.get("validate_by_name") or config.get("populate_by_name"))
    key_of: dict[str, str] = {}
    others: dict[str, tuple[str, ...]] = {}
    for name, info in cls.model_fields.items():
        alias = info.validation_alias if info.validation_alias is not None else info.alias
        accepted = _choices(cls, name, alias) if by_alias else []
        if not accepted or (by_name and name not in accepted):
            accepted.append(name)
        key_of[name] = accepted[0]
        if len(accepted) > 1:
            others[name] = tuple(dict.fromkeys(accepted[1:]))
    owner: dict[str, str] = {}
    for name in key_of:
        for key in (key_of[name], *others.get(name, ())):
            if owner.setdefault(key, name) != name:
                raise TypeError(
                    f"{cls.__qualname__}: fields {owner[key]!r} and {name!r} both read the document key {key!r}"
                )
    for name, key in key_of.items():
        if key != name:
            _give_key(cls, name, key)
    found = KeyMap(key_of, others)
    if len(_KEYS) >= 65536:  # classes made at run time must not grow it forever
        _KEYS.clear()
    _KEYS[cls] = found
    return found


def _give_key(cls: type[BaseModel], name: str, key: str) -> None:
    existing = inspect.getattr_static(cls, key, None)
    if isinstance(existing, _KeyProperty):
        return  # a base class's, or made before
    shadows_v1 = existing is not None and existing is inspect.getattr_static(BaseModel, key, None)
    if existing is not None and not (shadows_v1 and not key.startswith(("model_", "_"))):
        raise TypeError(
            f"{cls.__qualname__}.{name}: its document key {key!r} is an attribute of the class; "
            "selreload reads config nodes by key: choose another alias"
        )
    # attrgetter: the read runs in C, as fast as the field's own attribute.
    setattr(cls, key, _KeyProperty(operator.attrgetter(name), doc=f"`{name}`, under its document key."))


# --- the class: frozen, masked repr ---------------------------------------------------------


class _Text:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _repr_args(self: BaseModel) -> Any:
    """pydantic's `__repr_args__` with every secret field (and mapping key) masked."""
    from ._mask import value_repr

    cls = type(self)
    key_of = keys(cls).key_of
    for name, info in cls.model_fields.items():
        if not info.repr:
            continue
        value = self.__dict__.get(name)
        key = key_of[name]
        if hidden(cls, key):
            yield name, _Text(MASK)
        elif isinstance(value, Mapping) and not isinstance(value, BaseModel):
            shown = (f"{value_repr(k)}: {MASK if hidden(cls, key, k) else value_repr(v)}" for k, v in value.items())
            yield name, _Text("{" + ", ".join(shown) + "}")
        else:
            yield name, _Text(value_repr(value))


def prepare(cls: type[BaseModel]) -> None:
    """Freeze a model class (snapshots are shared by every reader), mask its repr, and
    give it its document keys (`keys`)."""
    keys(cls)
    if not cls.model_config.get("frozen"):
        cls.model_config["frozen"] = True
        # pydantic memoises a setter per attribute name: forget those made before freezing.
        handlers = cls.__dict__.get("__pydantic_setattr_handlers__")
        if isinstance(handlers, dict):
            handlers.clear()
    if "__repr_args__" not in cls.__dict__ and "__repr__" not in cls.__dict__:
        cls.__repr_args__ = _repr_args  # type: ignore[assignment, method-assign]


# --- structuring ------------------------------------------------------------------------------


def _validate(cls: type[BaseModel], values: Mapping[str, Any]) -> BaseModel:
    return cls.model_validate(values, strict=True, by_alias=False, by_name=True)


def _frozen(value: Any) -> Any:
    if type(value) is dict:
        return FrozenDict({k: _frozen(v) for k, v in value.items()})
    if type(value) is list:
        return FrozenList(_frozen(v) for v in value)
    return value


def _freeze(inst: BaseModel) -> BaseModel:
    # pydantic rebuilds containers as plain dicts and lists: make them read-only, as for
    # attrs configs (a frozen model still lets `current.flags["x"] = True` through).
    state = inst.__dict__
    for name, value in state.items():
        if type(value) is dict or type(value) is list:
            state[name] = _frozen(value)
    return inst


def _raw(cls: type[BaseModel], name: str, info: pydantic.fields.FieldInfo) -> bool:
    """Whether a field has a validator that reads the raw value (before, plain, wrap)."""
    if any(isinstance(m, _RAW_VALIDATORS) for m in info.metadata):
        return True
    for dec in cls.__pydantic_decorators__.field_validators.values():
        if dec.info.mode in _RAW_MODES and (name in dec.info.fields or "*" in dec.info.fields):
            return True
    return False


def _raw_fn(fail: Callable[[list[Issue], str, str], object]) -> StructureFn:
    def s(v: Any, path: str, issues: list[Issue]) -> Any:
        if isinstance(v, str):
            problem = text_problem(v)
            if problem is not None:
                return fail(issues, path, problem)
            return str(v)  # env text goes to the validator as the text it is
        return v

    return s


def model_fn(st: Structurer, cls: type[BaseModel], secret: bool) -> StructureFn:
    """The strict structuring function of a pydantic model class."""
    from ._structure import BAD

    k = keys(cls)
    specs: list[tuple[str, str, StructureFn, bool]] = []
    # Fields a document may name in more than one way: (canonical key, every key, required).
    several: list[tuple[str, tuple[str, ...], bool]] = []
    for name, info in cls.model_fields.items():
        key = k.key_of[name]
        sec = secret or hidden(cls, key)
        fn = _raw_fn(st.fail) if _raw(cls, name, info) else st.fn(info.annotation, sec)
        more = k.others.get(name, ())
        specs.append((key, name, fn, info.is_required() and not more))
        specs += [(other, name, fn, False) for other in more]
        if more:
            several.append((key, (key, *more), info.is_required()))
    names = frozenset(k.name_of)
    name_list = sorted(names)

    def s(v: Any, path: str, issues: list[Issue]) -> Any:
        before = len(issues)
        refused: set[str] = set()
        if several and isinstance(v, Mapping):
            for key, every, required in several:
                given = [other for other in every if other in v]
                if len(given) > 1:
                    issues.append(Issue(join(path, given[1]), f"the same field as {given[0]!r}: give one of them"))
                    refused.add(key)
                elif required and not given:
                    issues.append(Issue(join(path, key), "required key is missing"))
                    refused.add(key)
        found = st.node_fields(v, path, issues, specs, names, name_list)
        if found is None:
            return BAD
        kwargs, skip = found
        try:
            inst = _validate(cls, kwargs)
        except ValidationError as exc:
            # With fields already refused, only the other fields' own errors are news.
            issues.extend(_issues(exc, path, cls, kwargs, secret, {k.name_of[key] for key in skip | refused}))
            return BAD
        return BAD if len(issues) > before else _freeze(inst)

    return s


_JSON_TYPES: Final = (str, int, float, bool, type(None), list, dict)


def other_fn(st: Structurer, tp: Any, secret: bool) -> StructureFn:
    """A type selreload does not know, validated by pydantic alone: strict, or strict JSON
    mode for text and numbers (a document's `"2026-01-01"`, `"1.2.3.4"`, `1.5` for Decimal)."""
    from ._structure import BAD

    try:
        adapter: TypeAdapter[Any] | None = TypeAdapter(tp)
    except pydantic.PydanticSchemaGenerationError:
        adapter = None  # an arbitrary type the model allows: model_validate checks it

    def s(v: Any, path: str, issues: list[Issue]) -> Any:
        if isinstance(v, str) and (problem := text_problem(v)) is not None:
            return st.fail(issues, path, problem)
        if adapter is None:
            return str(v) if type(v) is EnvText else v
        try:
            if type(v) is EnvText:
                return adapter.validate_strings(str(v), strict=True)
            try:
                return adapter.validate_python(v, strict=True)
            except ValidationError as strict_error:
                if not isinstance(v, _JSON_TYPES):
                    raise
                try:
                    text = json.dumps(v, allow_nan=False)
                except (TypeError, ValueError):
                    raise strict_error from None
                return adapter.validate_json(text, strict=True)
        except ValidationError as exc:
            issues.extend(_leaf_issues(exc, path, secret))
            return BAD

    return s


# --- errors -----------------------------------------------------------------------------------


def _where(path: str, loc: tuple[int | str, ...]) -> str:
    for part in loc:
        path = item(path, part) if isinstance(part, int) else join(path, printable(part))
    return path


def _message(err: pydantic_core.ErrorDetails, secret: bool, guard: Guard) -> str:
    typ, msg = err["type"], err["msg"]
    if typ == "missing":
        return "required key is missing"
    if typ not in _BUILTIN_ERRORS:  # a validator's own words (value_error, assertion_error, custom)
        if secret:
            return WITHHELD_SECRET.format(what="validator")
        text = msg.removeprefix("Value error, ")
        exc: Exception = AssertionError() if typ == "assertion_error" else ValueError()
        return guard.text(text, what="the validator failed", exc=exc)
    text = msg[:1].lower() + msg[1:]
    value = err.get("input")
    if secret:
        forms = {str(value), repr(value)} - {"", "''", "None"}
        if any(form in text for form in forms):
            return "invalid value (pydantic's message is withheld: the value is secret)"
        return text
    if not isinstance(value, Mapping | list | tuple | BaseModel):
        text += f" (got {show(value, secret=False)})"
    return text


def _leaf_issues(exc: ValidationError, path: str, secret: bool) -> list[Issue]:
    guard = Guard(())
    return [Issue(_where(path, err["loc"]), _message(err, secret, guard)) for err in exc.errors(include_url=False)]


def _issues(
    exc: ValidationError, path: str, cls: type[BaseModel], kwargs: Mapping[str, Any], secret: bool, skip: set[str]
) -> list[Issue]:
    guard = Guard(lambda: _secrets_in_scope(cls, kwargs, secret))
    key_of = keys(cls).key_of
    out = []
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        if skip and (not loc or loc[0] in skip):
            continue
        # Validated by field name: the error's first step is the name, the path the key.
        head = key_of.get(loc[0]) if loc and isinstance(loc[0], str) else None
        if head is not None:
            loc = (head, *loc[1:])
        sec = secret or (head is not None and (hidden(cls, head) or (len(loc) > 1 and hidden(cls, head, loc[1]))))
        out.append(Issue(_where(path, loc), _message(err, sec, guard)))
    return out


def _secrets_in_scope(cls: type[BaseModel], kwargs: Mapping[str, Any], secret: bool) -> list[Any]:
    """The secret values a validator of `cls` could quote: its secret fields, secret keys of
    its mappings, and the secrets nested in the rest."""
    out: list[Any] = []
    key_of = keys(cls).key_of
    for name, value in kwargs.items():
        key = key_of.get(name, name)
        if secret or hidden(cls, key):
            out.append(value)
            continue
        if isinstance(value, Mapping) and not isinstance(value, BaseModel):
            out += [v for k, v in value.items() if hidden(cls, key, k)]
        out += secrets_inside(value)
    return out


def rebuild(obj: BaseModel, changes: Mapping[str, Any]) -> BaseModel:
    """`obj` with `changes` set, validated again (field and model validators included).

    Raises:
        ConfigError: the rebuilt model is invalid (messages masked as when structuring).
    """
    cls = type(obj)
    name_of = keys(cls).name_of
    values = {name: obj.__dict__[name] for name in cls.model_fields}
    values.update({name_of.get(key, key): value for key, value in changes.items()})
    try:
        return _freeze(_validate(cls, values))
    except ValidationError as exc:
        raise ConfigError(_issues(exc, "", cls, values, False, set())) from None


# --- JSON Schema ------------------------------------------------------------------------------


def json_schema(schema: Any, *, partial: bool = False) -> dict[str, Any]:
    """pydantic's own JSON Schema of the root model, with `x-selreload-policy` (and
    `x-selreload-secret`) on each leaf property as the compiled `Schema` resolves it."""
    root: type[BaseModel] = schema.cls
    # Properties by document key, as paths are (pydantic's schema names aliases unless the
    # model validates by name only).
    by_alias = root.model_config.get("validate_by_alias", True) is not False
    out = root.model_json_schema(mode="validation", by_alias=by_alias)
    defs = out.get("$defs", {})

    def node(obj: dict[str, Any]) -> dict[str, Any]:
        ref = obj.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return typing.cast(dict[str, Any], defs[ref.rsplit("/", 1)[1]])
        for sub in obj.get("anyOf", ()):
            if "$ref" in sub:
                return node(sub)
        return obj

    def walk(cls: type[BaseModel], obj: dict[str, Any], prefix: str) -> None:
        obj.setdefault("additionalProperties", False)
        if partial:
            obj.pop("required", None)
        props = obj.get("properties", {})
        for key in keys(cls).keys:
            prop = props.get(key)
            if prop is None:
                continue
            path = prefix + key
            sub = schema.nodes.get(path + ".")
            if sub is not None:
                walk(sub, node(prop), path + ".")
                continue
            policy, is_secret = schema.policy_of(path)
            prop["x-selreload-policy"] = policy.value
            if is_secret:
                prop["x-selreload-secret"] = True
                prop.pop("default", None)

    walk(root, out, "")
    return out
