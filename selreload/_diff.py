"""Diff two configs leaf by leaf, and apply a list of changes to a config."""

from __future__ import annotations

import hashlib
import itertools
import math
import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import attrs

from ._backend import fields, rebuild
from ._change import UNSET, Change, Policy
from ._paths import join
from ._schema import Schema
from ._values import FrozenDict, to_plain

Flat = dict[str, Any]


class Flattener:
    """Reads every leaf of a config into `{path: value}`, mapping fields per key.

    The getters are compiled once per schema (`operator.attrgetter("a.b.c")` walks the
    path in C), so flattening costs one call per leaf.
    """

    def __init__(self, schema: Schema) -> None:
        self._getters: list[tuple[str, Callable[[Any], Any], bool]] = [
            (path, operator.attrgetter(path), leaf.mapping) for path, leaf in schema.leaves.items()
        ]

    def __call__(self, config: Any) -> Flat:
        out: Flat = {}
        for path, get, mapping in self._getters:
            value = get(config)
            if mapping and value is not None:
                # In key order, not insertion order: equal mappings flatten (and digest) alike.
                for key in sorted(value, key=str):
                    out[join(path, key)] = value[key]
            else:
                out[path] = value
        return out


def _same(a: Any, b: Any) -> bool:
    # `type(a) is type(b)` keeps 1 == True and 1 == 1.0 from hiding a change; and 0.0 ==
    # -0.0, but they render (and digest) differently, so the sign is a change too.
    if a is b:
        return True
    if type(a) is not type(b) or a != b:
        return False
    return type(a) is not float or math.copysign(1.0, a) == math.copysign(1.0, b)


def diff(old: Mapping[str, Any], new: Mapping[str, Any], schema: Schema) -> list[Change]:
    """Every leaf that differs between two flattened configs, in path order of `new`
    (mapping keys that disappeared come last, with `new` = UNSET)."""
    changes = []
    for path, value in new.items():
        before = old.get(path, UNSET)
        if not _same(before, value):
            policy, secret = schema.policy_of(path)
            changes.append(Change(path, before, value, policy, secret))
    for path, before in old.items():
        if path not in new:
            policy, secret = schema.policy_of(path)
            changes.append(Change(path, before, UNSET, policy, secret))
    return changes


def apply_changes(config: Any, changes: Iterable[Change], schema: Schema) -> Any:
    """A copy of `config` with every change's `new` value set, built in one pass.

    Each changed node is rebuilt once (`attrs.evolve`, pydantic `model_validate`), so its validators run again on
    the values that will actually go live; unchanged subtrees are shared, not copied.

    Raises:
        Exception: whatever a validator of a rebuilt node raises.
    """
    updates: dict[str, Any] = {}
    for change in changes:
        leaf = schema.leaf_of(change.path)
        if leaf is None:
            raise KeyError(change.path)
        if change.path == leaf.path:
            updates[leaf.path] = change.new
            continue
        # A key inside a mapping field: rebuild the mapping with that key set or removed.
        current = updates.get(leaf.path, UNSET)
        if current is UNSET:
            current = operator.attrgetter(leaf.path)(config) or {}
        key = change.path[len(leaf.path) + 1 :]
        mapping = dict(current)
        if change.new is UNSET:
            mapping.pop(key, None)
        else:
            mapping[key] = change.new
        updates[leaf.path] = FrozenDict(mapping)
    tree: dict[str, Any] = {}
    for path, value in updates.items():
        node = tree
        *parents, last = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = _Leaf(value)
    return _rebuild(config, tree)


@attrs.frozen
class _Leaf:
    value: Any


def _rebuild(obj: Any, tree: Mapping[str, Any]) -> Any:
    changes = {
        name: sub.value if isinstance(sub, _Leaf) else _rebuild(getattr(obj, name), sub) for name, sub in tree.items()
    }
    return rebuild(obj, changes)


def _plain(value: Any) -> Any:
    # to_plain returns these as they are; skipping the call made a 10,000-leaf digest 10x faster.
    if type(value) in _PLAIN:
        return value
    if callable(getattr(value, "get_secret_value", None)):
        return value.get_secret_value()  # pydantic's SecretStr renders as '****': a new secret is a new digest
    return to_plain(value)


_PLAIN = frozenset({str, int, float, bool, type(None)})

# --- the schema as a tree: walking only what changed ----------------------------------------

_LEAF, _MAPPING, _NODE = 0, 1, 2
_Field = tuple[str, int, Any, "tuple[Policy, bool] | None"]


WIDE: Final = 32
"""Fields from which a node is compared all at once: every attribute read by one
`attrgetter` call, and the ones that differ picked out by `map(is_not, ...)`, both in C.
A root of 1,000 sections walked one field at a time cost ~0.4 ms per diff and per digest."""


class _Node:
    """One config node of a schema: its path and, in field order, its fields, each
    `(attribute, kind, leaf path or child node, (policy, secret) of a plain leaf or None)`;
    `values` reads them all, for wide nodes."""

    __slots__ = ("fields", "path", "values")

    def __init__(self, path: str) -> None:
        self.path = path
        self.fields: list[_Field] = []
        self.values: Callable[[Any], tuple[Any, ...]] | None = None

    def seal(self) -> _Node:
        if len(self.fields) >= WIDE:
            self.values = operator.attrgetter(*(field[0] for field in self.fields))
        return self


def _differing(values: Callable[[Any], tuple[Any, ...]], old: Any, new: Any) -> Iterable[tuple[int, Any, Any]]:
    """`(index, old value, new value)` of the fields that are not the same object."""
    before, after = values(old), values(new)
    for i in itertools.compress(range(len(after)), map(operator.is_not, before, after)):
        yield i, before[i], after[i]


def _compile(schema: Schema, prefix: str = "") -> _Node:
    # The same walk as `Schema._walk`, so fields come in the order of `schema.leaves`
    # (which is the order `Flattener` reads them in).
    node = _Node(prefix[:-1])
    for f in fields(schema.nodes[prefix]):
        path = prefix + f.name
        if path + "." in schema.nodes:
            node.fields.append((f.name, _NODE, _compile(schema, path + "."), None))
        elif path in schema.leaves:
            if schema.leaves[path].mapping:
                node.fields.append((f.name, _MAPPING, path, None))
            else:  # a leaf's policy is fixed by its schema: looked up once, here
                node.fields.append((f.name, _LEAF, path, schema.policy_of(path)))
    return node.seal()


def _mapping_flat(path: str, value: Any) -> Flat:
    # Exactly what `Flattener` makes of one mapping field.
    if value is None:
        return {path: None}
    return {join(path, key): value[key] for key in sorted(value, key=str)}


class Tree:
    """Diffs two configs of one schema by walking both, skipping every subtree that is the
    same object in both (the structurer gives back the live instance of an unchanged
    subtree), so a one-leaf change costs the depth of the leaf times the width of its
    ancestors, not the whole config.

    `tree.diff(old, new)` equals `diff(flatten(old), flatten(new), schema)`, change for
    change and in the same order.
    """

    __slots__ = ("root", "schema")

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.root = _compile(schema)

    def diff(self, old: Any, new: Any) -> list[Change]:
        """Every leaf that differs between two configs, as `diff` lists them."""
        changed: list[Change] = []
        removed: list[Change] = []
        self._walk(self.root, old, new, changed, removed)
        return changed + removed

    def _walk(self, node: _Node, old: Any, new: Any, changed: list[Change], removed: list[Change]) -> None:
        if old is new:
            return
        if node.values is not None:
            fields = node.fields
            for i, a, b in _differing(node.values, old, new):
                self._field(fields[i], a, b, changed, removed)
            return
        for field in node.fields:
            name, _, sub, leaf = field
            a = getattr(old, name)
            b = getattr(new, name)
            if a is b:
                continue
            if leaf is not None:  # `_field`'s leaf case, inline: most fields are leaves
                if not _same(a, b):
                    changed.append(Change(sub, a, b, *leaf))
            else:
                self._field(field, a, b, changed, removed)

    def _field(self, field: _Field, a: Any, b: Any, changed: list[Change], removed: list[Change]) -> None:
        """The changes of one field whose old and new values are not the same object."""
        _, kind, sub, leaf = field
        policy_of = self.schema.policy_of
        if kind is _NODE:
            self._walk(sub, a, b, changed, removed)
        elif leaf is not None:
            if not _same(a, b):
                changed.append(Change(sub, a, b, *leaf))
        else:
            before, after = _mapping_flat(sub, a), _mapping_flat(sub, b)
            for path, value in after.items():
                was = before.get(path, UNSET)
                if not _same(was, value):
                    changed.append(Change(path, was, value, *policy_of(path)))
            removed.extend(Change(p, v, UNSET, *policy_of(p)) for p, v in before.items() if p not in after)


def updated(flat: Flat, changes: Iterable[Change]) -> Flat:
    """A copy of `flat` with `changes` made (a removed mapping key is dropped).

    The leaves are the same as `flatten` of the changed config gives; a new mapping key
    comes last rather than in key order (nothing reads a flat map by its order).
    """
    out = dict(flat)
    for change in changes:
        if change.new is UNSET:
            out.pop(change.path, None)
        else:
            out[change.path] = change.new
    return out


class Digester:
    """The digest of a config: the identity of its content, equal across processes.

    sha256 composed along the schema: a node's digest covers, in field order, one line
    per leaf (`path=value`, per key for mappings) and one per child node (`path:digest`);
    the config's digest is its root's, in hex. A function of the content alone: equal
    configs have equal digests in every process, however they were built.

    The digest of each node instance is remembered, so a config that shares all but one
    subtree with the last one digested re-hashes only that subtree and its ancestors.
    """

    __slots__ = ("_memo", "_nodes", "_root", "_wide")

    def __init__(self, schema: Schema) -> None:
        self._root = _compile(schema)
        # path -> (the leaf value or mapping digested there, its lines). The instance
        # is held, so an `is` check cannot be fooled by a reused id.
        self._memo: dict[str, tuple[Any, str]] = {}
        # node path -> (the instance digested there, its line in its parent's digest).
        self._nodes: dict[str, tuple[Any, str]] = {}
        # wide node path -> (the instance digested there, its parts, one per field).
        self._wide: dict[str, tuple[Any, list[str]]] = {}

    def __call__(self, config: Any) -> str:
        return self._node(self._root, config)[len(self._root.path) + 1 : -1]

    def _node(self, node: _Node, obj: Any) -> str:
        """The line `path:digest` of `obj` at `node` in its parent's digest (remembered:
        an unchanged subtree costs one lookup, no hex, no formatting)."""
        nodes = self._nodes
        hit = nodes.get(node.path)
        if hit is not None and hit[0] is obj:
            return hit[1]
        fields = node.fields
        wide = self._wide.get(node.path) if node.values is not None else None
        if wide is not None:
            # A wide node digested before: its parts again, with the differing fields' redone.
            parts = list(wide[1])
            for i, _, value in _differing(node.values, wide[0], obj):  # type: ignore[arg-type]
                parts[i] = self._part(fields[i], value)
        else:
            parts = []
            for name, kind, sub, _ in fields:  # `_part`, inline: a narrow node is digested often
                value = getattr(obj, name)
                if kind is _NODE:
                    known = nodes.get(sub.path)
                    parts.append(known[1] if known is not None and known[0] is value else self._node(sub, value))
                elif kind is _LEAF and type(value) in _PLAIN:
                    parts.append(f"{sub}={value!r}\n")
                else:
                    parts.append(self._lines(sub, kind, value))
        line = f"{node.path}:{hashlib.sha256(''.join(parts).encode()).hexdigest()}\n"
        nodes[node.path] = (obj, line)
        if node.values is not None:
            self._wide[node.path] = (obj, parts)
        return line

    def _part(self, field: _Field, value: Any) -> str:
        """A field's line(s) in its node's digest."""
        _, kind, sub, _ = field
        if kind is _NODE:
            known = self._nodes.get(sub.path)
            return known[1] if known is not None and known[0] is value else self._node(sub, value)
        if kind is _LEAF and type(value) in _PLAIN:
            return f"{sub}={value!r}\n"
        return self._lines(sub, kind, value)

    def _lines(self, path: str, kind: int, value: Any) -> str:
        hit = self._memo.get(path)
        if hit is not None and hit[0] is value:
            return hit[1]
        flat = {path: value} if kind is _LEAF else _mapping_flat(path, value)
        lines = "".join(f"{p}={_plain(v)!r}\n" for p, v in flat.items())
        self._memo[path] = (value, lines)
        return lines
