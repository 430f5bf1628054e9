"""The incremental reload (remembered subtrees, identity-skipping diff, composed digest)
against a from-scratch reference, over random schemas and random sequences of edits."""

from __future__ import annotations

import copy
import datetime
import itertools
from typing import Any

import attrs
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

import selreload as sr
from selreload import _boundary, _mask
from selreload._change import UNSET, Change, Policy
from selreload._diff import Digester, Flattener, Tree, apply_changes, diff
from selreload._errors import ConfigError
from selreload._schema import Schema
from selreload._structure import Structurer, fingerprint
from selreload._typing import Layer
from selreload._values import EnvText, FrozenDict, to_plain

_names = itertools.count()

LEAF_TYPES: dict[str, Any] = {
    "int": int,
    "float": float,
    "bool": bool,
    "str": str,
    "list": list[int],
    "map": dict[str, int],
}
DEFAULTS: dict[str, Any] = {"int": 0, "float": 0.0, "bool": False, "str": "", "list": list, "map": dict}
# Raw values, valid and not: `True` where an int goes, `1.0` for an int, -0.0 beside 0.0.
RAW: dict[str, st.SearchStrategy[Any]] = {
    "int": st.sampled_from([0, 1, 2, 3, -1, True, 1.0]),
    "float": st.sampled_from([0.0, -0.0, 1.0, 1, 2.5, True]),
    "bool": st.sampled_from([True, False, True, False, 1]),
    "str": st.sampled_from(["", "a", "b", "1"]),
    "list": st.lists(st.sampled_from([0, 1, True]), max_size=2),
    "map": st.dictionaries(st.sampled_from(["k1", "k2", "k3"]), st.sampled_from([0, 1, 2, True]), max_size=3),
}
POLICIES = ["hot", "hot", "hot", "restart", "secret", "secret_hot", "inherit", "inherit"]


def _field(policy: str, **kwargs: Any) -> Any:
    if policy == "hot":
        return sr.hot(**kwargs)
    if policy == "restart":
        return sr.restart_only(**kwargs)
    if policy == "secret":
        return sr.secret(**kwargs)
    if policy == "secret_hot":
        return sr.secret(hot=True, **kwargs)
    return sr.field(**kwargs)


@st.composite
def specs(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    """A node: `{name: (kind, policy, sub-spec or None)}`, kind a leaf type, "node" or
    "nodes" (a mapping of nodes)."""
    kinds = [*LEAF_TYPES, "node", "nodes"] if depth < 2 else list(LEAF_TYPES)
    spec = {}
    for i in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(kinds))
        sub = draw(specs(depth + 1)) if kind in ("node", "nodes") else None
        spec[f"f{i}"] = (kind, draw(st.sampled_from(POLICIES)), sub)
    return spec


def build(spec: dict[str, Any], *, checked: bool) -> type[Any]:
    """The config class of a spec; `checked`: the second int must be >= the first (a
    cross-field validator, run again whenever a change is under its node)."""
    annotations: dict[str, Any] = {}
    ns: dict[str, Any] = {}
    ints = [name for name, (kind, _, _) in spec.items() if kind == "int"]
    for name, (kind, policy, sub) in spec.items():
        if kind == "node":
            cls = build(sub, checked=checked)
            annotations[name] = cls
            ns[name] = _field(policy, factory=cls)
            continue
        if kind == "nodes":
            annotations[name] = dict[str, build(sub, checked=checked)]  # type: ignore[misc]
            ns[name] = _field(policy, factory=dict)
            continue
        annotations[name] = LEAF_TYPES[kind]
        default = DEFAULTS[kind]
        kwargs: dict[str, Any] = {"factory": default} if callable(default) else {"default": default}
        if checked and len(ints) >= 2 and name == ints[1]:
            first = ints[0]

            def at_least(inst: Any, attribute: attrs.Attribute[Any], value: Any, first: str = first) -> None:
                if value < getattr(inst, first):
                    raise ValueError(f"must be at least {first} ({getattr(inst, first)})")

            kwargs["validator"] = at_least
        ns[name] = _field(policy, **kwargs)
    ns["__annotations__"] = annotations
    return sr.config(type(f"N{next(_names)}", (), ns))


@st.composite
def raws(draw: st.DrawFn, spec: dict[str, Any]) -> dict[str, Any]:
    """A raw tree for a spec: some keys left out (defaults), now and then an unknown one."""
    out: dict[str, Any] = {}
    for name, (kind, _, sub) in spec.items():
        if not draw(st.booleans()):
            continue
        if kind == "node":
            out[name] = draw(raws(sub))
        elif kind == "nodes":
            out[name] = draw(st.dictionaries(st.sampled_from(["a", "b"]), raws(sub), max_size=2))
        else:
            out[name] = draw(RAW[kind])
    if draw(st.integers(0, 40)) == 0:
        out["unknown"] = 1
    return out


def _twins(value: Any) -> list[Any]:
    """Values equal to `value` under `==` but of another type or sign."""
    if type(value) is bool:
        return [int(value), float(value)]
    if type(value) is int and value in (0, 1):
        return [bool(value), float(value)]
    if type(value) is float:
        return [-value] + ([int(value)] if value.is_integer() else [])
    if type(value) is str:
        return [EnvText(value)]
    return []


def _scalars(node: Any) -> list[tuple[Any, Any]]:
    """(container, key) of every scalar in a raw tree."""
    out: list[tuple[Any, Any]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        if isinstance(value, dict | list):
            out += _scalars(value)
        else:
            out.append((node, key))
    return out


@st.composite
def edited(draw: st.DrawFn, spec: dict[str, Any], tree: dict[str, Any]) -> dict[str, Any]:
    """`tree` with one field (at any depth) set anew or removed, or one scalar swapped for
    its twin under `==` (`1` for `True`, `-0.0` for `0.0`): a fresh object, as a new parse
    gives."""
    tree = copy.deepcopy(tree)
    scalars = [(c, k) for c, k in _scalars(tree) if _twins(c[k])]
    if scalars and draw(st.integers(0, 2)) == 0:
        container, key = draw(st.sampled_from(scalars))
        container[key] = draw(st.sampled_from(_twins(container[key])))
        return tree
    node, node_spec = tree, spec
    while True:
        name = draw(st.sampled_from(sorted(node_spec)))
        kind, _, sub = node_spec[name]
        if kind == "node" and isinstance(node.get(name), dict) and draw(st.booleans()):
            node, node_spec = node[name], sub
            continue
        if kind == "nodes" and isinstance(node.get(name), dict) and node[name] and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node[name])))
            if isinstance(node[name][key], dict):
                node, node_spec = node[name][key], sub
                continue
        if draw(st.integers(0, 4)) == 0:
            node.pop(name, None)
        else:
            node[name] = draw(raws({name: node_spec[name]})).get(name, draw(raws(node_spec)).get(name))
            if name not in node or node[name] is None:
                node.pop(name, None)
        return tree


class Source:
    """Hands over the tree of the current step, under a new digest every time."""

    name = "doc.yaml"

    def __init__(self) -> None:
        self.layer = Layer(self.name, {}, "0")

    def load(self) -> Layer:
        return self.layer

    def watch(self, notify: Any) -> None:
        return None


def strict(flat: dict[str, Any]) -> dict[str, Any]:
    """A flat map compared type for type (1 == True == 1.0 would hide a change)."""
    return {p: (type(v).__name__, repr(to_plain(v))) for p, v in flat.items()}


def changes_of(changes: Any) -> list[Any]:
    return [(c.path, repr(to_plain(c.old)), repr(to_plain(c.new)), c.policy, c.secret) for c in changes]


def reference(
    schema: Schema, live: Any, candidate: Any, strict_mode: bool
) -> tuple[list[Change], list[Change], Any, str | None]:
    """The plan computed from scratch, as selreload did before subtrees were remembered:
    flatten both, diff every leaf, rebuild the effective config, flatten it again."""
    flatten = Flattener(schema)
    live_flat, cand_flat = flatten(live), flatten(candidate)
    changes = diff(live_flat, cand_flat, schema)
    hot = [c for c in changes if c.policy is Policy.HOT]
    rejected = [c for c in changes if c.policy is not Policy.HOT]
    if strict_mode and rejected:
        hot, rejected = [], changes
    if not hot:
        return hot, rejected, live, None
    if not rejected:
        return hot, rejected, candidate, None
    try:
        if len(hot) <= len(rejected):
            effective = apply_changes(live, hot, schema)
        else:
            effective = apply_changes(candidate, [c.inverted() for c in rejected], schema)
    except Exception as exc:  # noqa: BLE001 - what the planner reports
        head = "the hot changes are not valid without the rejected restart-only ones"
        return hot, rejected, None, _mask.guard(schema, live_flat, cand_flat).failure(head, exc)
    return hot, rejected, effective, None


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(specs(), st.booleans(), st.booleans(), st.data())
def test_incremental_reloads_equal_reloads_from_scratch(
    spec: dict[str, Any], checked: bool, strict_mode: bool, data: st.DataObject
) -> None:
    """Over a random schema and a random sequence of edits (and rollbacks), every reload
    gives what planning from scratch gives: outcome, applied and rejected changes (in
    order), errors (structuring, cross-field validators, the effective config, secrets
    withheld), the live config, its leaves, and a digest equal to one computed anew."""
    root = build(spec, checked=checked)
    schema = Schema(root)
    source = Source()
    seen: list[Any] = []
    reloader = sr.Reloader(root, [source], registry=CollectorRegistry(), strict=strict_mode, applier_timeout=None)
    reloader.on("*", lambda changes, snapshot: seen.append(list(changes)))
    reloader.start()
    ref_live = reloader.current
    tree: dict[str, Any] = {}
    for step in range(data.draw(st.integers(1, 8), label="steps")):
        seen.clear()
        if step and data.draw(st.integers(0, 5), label="rollback?") == 0:
            target = data.draw(st.sampled_from(reloader.history), label="target")
            result = reloader.rollback(target.version)
            candidate: Any = target.config
            event("rollback")
        else:
            for _ in range(data.draw(st.integers(1, 3), label="edits")):
                tree = data.draw(edited(spec, tree), label=f"tree {step}")
            source.layer = Layer(source.name, tree, str(step + 1))
            result = reloader.reload()
            try:
                candidate = _boundary.structure(Structurer(schema), [source.layer])  # nothing remembered
            except ConfigError as exc:
                event("invalid input")
                assert result.outcome is sr.Outcome.INVALID
                assert [str(e) for e in result.errors] == [str(e) for e in exc.issues]
                continue
        hot, rejected, effective, error = reference(schema, ref_live, candidate, strict_mode)
        event(f"{result.outcome.value}{' with rejected' if rejected else ''}")
        if error is not None:
            assert result.outcome is sr.Outcome.INVALID
            assert [e.message for e in result.errors] == [error]
            continue
        assert changes_of(result.rejected) == changes_of(rejected)
        if not hot:
            assert result.outcome is (sr.Outcome.REJECTED if rejected else sr.Outcome.UNCHANGED)
            assert reloader.current is ref_live or strict(Flattener(schema)(reloader.current)) == strict(
                Flattener(schema)(ref_live)
            )
            continue
        assert result.outcome is sr.Outcome.APPLIED
        assert changes_of(result.applied) == changes_of(hot)
        assert [changes_of(batch) for batch in seen] == [changes_of(hot)]
        ref_live = effective
        current = reloader.current
        assert current == effective
        flat = Flattener(schema)(effective)
        assert strict(reloader._pipeline.live.flat) == strict(flat)
        assert strict(Flattener(schema)(current)) == strict(flat)
        assert reloader.snapshot is not None
        assert reloader.snapshot.digest == Digester(schema)(effective)
        assert list(reloader.snapshot.origins) == list(flat)


@sr.config
class Group:
    a: int = sr.hot(default=0)
    b: str = sr.hot(default="")


@sr.config
class Groups:
    x: Group = sr.field(factory=Group)
    y: Group = sr.field(factory=Group)
    flags: dict[str, bool] = sr.hot(factory=dict)


def test_an_unchanged_subtree_is_the_live_object() -> None:
    """A reload that changes one leaf shares every other subtree with the live config
    (the structurer gives back what it built for the same input)."""
    structurer = Structurer(Schema(Groups))
    first, _ = structurer.structure({"x": {"a": 1}, "y": {"a": 2}, "flags": {"k": True}})
    second, _ = structurer.structure({"x": {"a": 1}, "y": {"a": 3}, "flags": {"k": True}})
    assert second.x is first.x and second.flags is first.flags
    assert second.y is not first.y and second.y.a == 3


@sr.config
class Typed:
    n: int = sr.hot(default=0)
    x: float = sr.hot(default=0.0)
    b: bool = sr.hot(default=False)


@sr.config
class TypedRoot:
    inner: Typed = sr.field(factory=Typed)


def test_a_value_equal_under_eq_but_of_another_type_is_structured_again() -> None:
    """`1 == 1.0 == True`, `0.0 == -0.0` and `"1"` equals `EnvText("1")`: none of them
    reuses the subtree structured for the other."""
    structurer = Structurer(Schema(TypedRoot))
    good, issues = structurer.structure({"inner": {"n": 1, "x": 0.0, "b": False}})
    assert not issues
    _, issues = structurer.structure({"inner": {"n": True, "x": 0.0, "b": False}})
    assert [i.message for i in issues] == ["expected an int, got bool True"]
    _, issues = structurer.structure({"inner": {"n": 1.0, "x": 0.0, "b": False}})
    assert [i.path for i in issues] == ["inner.n"]
    negative, issues = structurer.structure({"inner": {"n": 1, "x": -0.0, "b": False}})
    assert not issues and str(negative.inner.x) == "-0.0" and negative.inner is not good.inner
    from_env, issues = structurer.structure({"inner": {"n": 1, "x": 0.0, "b": EnvText("true")}})
    assert not issues and from_env.inner.b is True


def test_fingerprints_tell_types_apart() -> None:
    """Equal fingerprints only for trees equal value for value and type for type."""
    assert fingerprint({"a": [1, "x"]}) == fingerprint({"a": [1, "x"]})
    for a, b in [(1, True), (1, 1.0), (0.0, -0.0), ("1", EnvText("1")), ([1], (1,))]:
        assert fingerprint({"k": a}) != fingerprint({"k": b})
    assert fingerprint({"k": datetime.date(2026, 1, 2)}) == fingerprint({"k": datetime.date(2026, 1, 2)})
    assert fingerprint({"k": datetime.date(2026, 1, 2)}) != fingerprint({"k": datetime.date(2026, 1, 3)})
    assert fingerprint({"k": object()}) is None  # no telling two of them apart


@sr.config
class Pair:
    n: int = sr.hot(default=0)
    flags: dict[str, bool] = sr.hot(factory=dict)


@sr.config
class Pairs:
    a: Pair = sr.field(factory=Pair)
    b: Pair = sr.field(factory=Pair)


def test_the_digest_is_a_function_of_content() -> None:
    """Equal configs built apart (no shared object) have equal digests; a digester that
    remembers subtrees gives what a new one gives; one changed leaf changes it."""
    schema = Schema(Pairs)
    digester = Digester(schema)
    one = Pairs(a=Pair(n=1, flags={"x": True, "y": False}))
    same = Pairs(a=Pair(n=1, flags={"y": False, "x": True}))
    assert digester(one) == digester(same) == Digester(schema)(same)
    changed = attrs.evolve(one, b=Pair(n=2))
    assert digester(changed) == Digester(schema)(changed) != digester(one)
    assert len(digester(one)) == 64 and int(digester(one), 16) >= 0


@sr.config
class Flagged:
    flags: dict[str, bool] = sr.hot(factory=dict)
    level: str = sr.hot(default="info")


def test_a_removed_mapping_key_is_a_change_to_unset() -> None:
    """Walking live and candidate finds removed mapping keys, after the other changes,
    as the flat diff lists them."""
    tree = Tree(Schema(Flagged))
    live, candidate = Flagged(flags={"a": True, "b": True}), Flagged(flags={"a": False}, level="debug")
    got = tree.diff(live, candidate)
    assert [(c.path, c.old, c.new) for c in got] == [
        ("flags.a", True, False),
        ("level", "info", "debug"),
        ("flags.b", True, UNSET),
    ]


@sr.config
class _Small:
    n: int = sr.hot(default=0)
    s: str = sr.hot(default="")


def _wide_class() -> type[Any]:
    """A root of 45 fields (the diff and the digest read wide nodes all at once): leaves
    of every kind, mappings and nodes."""
    annotations: dict[str, Any] = {}
    ns: dict[str, Any] = {}
    for i in range(45):
        kind = ["int", "float", "str", "map", "node"][i % 5]
        if kind == "node":
            annotations[f"w{i}"] = _Small
            ns[f"w{i}"] = sr.field(factory=_Small)
        else:
            annotations[f"w{i}"] = LEAF_TYPES[kind]
            default = DEFAULTS[kind]
            ns[f"w{i}"] = sr.hot(factory=default) if callable(default) else sr.hot(default=default)
    ns["__annotations__"] = annotations
    return sr.config(type(f"Wide{next(_names)}", (), ns))


WIDE = _wide_class()
_WIDE_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "int": st.sampled_from([0, 1, 2]),
    "float": st.sampled_from([0.0, -0.0, 1.0, 2.5]),
    "str": st.sampled_from(["", "a", "b"]),
    "map": st.dictionaries(st.sampled_from(["k1", "k2"]), st.sampled_from([0, 1]), max_size=2).map(FrozenDict),
    "node": st.builds(_Small, n=st.sampled_from([0, 1]), s=st.sampled_from(["", "x"])),
}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.dictionaries(st.integers(0, 44), st.data(), max_size=6), min_size=1, max_size=6), st.data())
def test_wide_nodes_diff_and_digest_as_from_scratch(edits: list[dict[int, Any]], data: st.DataObject) -> None:
    """Over a sequence of edits to a 45-field root (each edit replacing a few fields, the
    others kept as the same objects), the identity-skipping diff lists exactly the flat
    diff's changes, and the remembering digester gives what a new one gives."""
    schema = Schema(WIDE)
    tree, digester, flatten = Tree(schema), Digester(schema), Flattener(schema)
    live = WIDE()
    digester(live)
    for edit in edits:
        changes: dict[str, Any] = {}
        for i in edit:
            kind = ["int", "float", "str", "map", "node"][i % 5]
            changes[f"w{i}"] = data.draw(_WIDE_VALUES[kind])
        candidate = attrs.evolve(live, **changes)
        got = [(c.path, repr(c.old), repr(c.new)) for c in tree.diff(live, candidate)]
        want = [(c.path, repr(c.old), repr(c.new)) for c in diff(flatten(live), flatten(candidate), schema)]
        assert got == want
        assert digester(candidate) == Digester(schema)(candidate)
        live = candidate
