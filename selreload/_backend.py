"""The seam between selreload and the library that defines the config classes.

A config class is a tree of nodes; selreload needs five things from the library that
made them, and only this module (and the backend it picks) asks for them:

- is `tp` a node class? (`is_node`)
- its fields: key, annotation, declared policy (`fields`), and their keys on an
  instance (`field_names`, cached: masking and rendering ask it for every value). A
  field's key is what documents and paths call it, and `getattr(node, key)` reads it:
  the attribute name for attrs classes, the alias for pydantic fields that declare one;
- make a class ready to be a snapshot (frozen, a repr that masks secrets: `prepare`);
- rebuild an instance with some fields replaced, its validators run again (`rebuild`).

attrs classes are today's backend (below). pydantic models are the other one, in
`_pydantic`, imported only when a pydantic model is met: `sys.modules` says whether
pydantic is loaded at all, so `import selreload` never imports it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, Final

import attrs

from ._change import Policy

META: Final = "selreload"
"""The key of a field's policy: in attrs `metadata`, in pydantic `json_schema_extra`."""


@attrs.frozen(repr=False)
class FieldPolicy:
    """What a field declares: an explicit policy (or `None`: inherit) and secrecy.

    The same object is the `Annotated` marker of pydantic fields (`sr.Hot`,
    `sr.RestartOnly`, `sr.Secret(hot=False)`).
    """

    policy: Policy | None = None
    secret: bool = False

    def __repr__(self) -> str:
        if self.secret:
            return f"sr.Secret(hot={self.policy is Policy.HOT})"
        return {Policy.HOT: "sr.Hot", Policy.RESTART_ONLY: "sr.RestartOnly"}.get(self.policy, "sr.field()")  # type: ignore[arg-type]


@attrs.frozen
class NodeField:
    """One field of a node class, as the schema compiler reads it.

    Attributes:
        name: the field's key in documents and paths (attrs: the attribute name; pydantic:
            the alias when the field declares one); `getattr(node, name)` reads it.
        type: the resolved annotation.
        declared: the policy written on the field, or None.
    """

    name: str
    type: Any
    declared: FieldPolicy | None


def is_pydantic(tp: object) -> bool:
    """Whether `tp` is a pydantic model class (never imports pydantic)."""
    pydantic = sys.modules.get("pydantic")
    if pydantic is None or not isinstance(tp, type):
        return False
    base = pydantic.BaseModel
    return tp is not base and issubclass(tp, base)


def is_node(tp: object) -> bool:
    """Whether `tp` is a config node class: an attrs class or a pydantic model."""
    return isinstance(tp, type) and (attrs.has(tp) or is_pydantic(tp))


_NAMES: dict[type, tuple[str, ...] | None] = {}


def field_names(cls: type) -> tuple[str, ...] | None:
    """The field keys of a node class (see `NodeField.name`), or None when `cls` is not one (cached)."""
    try:
        return _NAMES[cls]
    except KeyError:
        pass
    names: tuple[str, ...] | None = None
    if attrs.has(cls):
        names = tuple(a.name for a in attrs.fields(cls))
    elif is_pydantic(cls):
        from . import _pydantic

        names = _pydantic.keys(cls).keys
    if len(_NAMES) >= 65536:  # classes made at run time must not grow it forever
        _NAMES.clear()
    _NAMES[cls] = names
    return names


def fields(cls: type[Any]) -> list[NodeField]:
    """The fields of a node class with their declared policies.

    Raises:
        TypeError: the annotations cannot be resolved.
    """
    if is_pydantic(cls):
        from . import _pydantic

        return _pydantic.fields(cls)
    try:
        hints = attrs.resolve_types(cls)
    except NameError as exc:
        raise TypeError(
            f"cannot resolve the annotations of {cls.__qualname__} ({exc}): define config classes "
            "at module level, or refer to nested classes that exist when the schema is built"
        ) from None
    return [NodeField(a.name, a.type, a.metadata.get(META)) for a in attrs.fields(hints)]


def declared_secret(cls: type, name: str) -> bool:
    """Whether the field keyed `name` of node class `cls` is declared secret (by its own code)."""
    if attrs.has(cls):
        a = attrs.fields_dict(cls).get(name)
        meta = a.metadata.get(META) if a is not None else None
        return bool(meta is not None and meta.secret)
    if is_pydantic(cls):
        from . import _pydantic

        return _pydantic.declared_secret(cls, name)
    return False


def prepare(cls: type[Any]) -> None:
    """Make a node class ready to hold snapshots (pydantic: frozen, secrets masked in repr)."""
    if is_pydantic(cls):
        from . import _pydantic

        _pydantic.prepare(cls)


def rebuild(obj: Any, changes: Mapping[str, Any]) -> Any:
    """A copy of node `obj` with the fields in `changes` (by key) replaced, validated again.

    Raises:
        Exception: whatever a validator of the node raises (pydantic: a `ConfigError`).
    """
    if attrs.has(type(obj)):
        aliases = {a.name: a.alias or a.name for a in attrs.fields(type(obj))}
        return attrs.evolve(obj, **{aliases[k]: v for k, v in changes.items()})
    from . import _pydantic

    return _pydantic.rebuild(obj, changes)
