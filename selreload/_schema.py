"""Declaring config classes (`config`, `hot`, `restart_only`, `secret`, `field`; the
`Hot`, `RestartOnly`, `Secret` markers of pydantic fields) and compiling one into a
`Schema`: every leaf path with its type and resolved policy."""

from __future__ import annotations

import collections.abc
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypeVar, dataclass_transform, overload

import attrs

from . import _backend
from ._backend import META as _META
from ._backend import FieldPolicy
from ._change import Policy
from ._errors import PolicyError
from ._mask import DEFAULT_RULES, MaskRules, config_repr, masked_repr, register
from ._paths import ancestors, did_you_mean, hint, matches

_MARK: Final = "__selreload_config__"

T = TypeVar("T")


Hot: Final = FieldPolicy(policy=Policy.HOT)
"""The marker of a hot pydantic field: `level: Annotated[str, sr.Hot] = "info"`."""

RestartOnly: Final = FieldPolicy(policy=Policy.RESTART_ONLY)
"""The marker of a restart-only pydantic field: `port: Annotated[int, sr.RestartOnly]`."""


def Secret(*, hot: bool = False) -> FieldPolicy:
    """The marker of a secret pydantic field: masked everywhere, restart-only unless
    `hot=True` (`password: Annotated[str, sr.Secret()]`). `SecretStr` and `SecretBytes`
    fields are secrets without it."""
    return FieldPolicy(policy=Policy.HOT if hot else Policy.RESTART_ONLY, secret=True)


def field(*, policy: Policy | None = None, **kwargs: Any) -> Any:
    """`attrs.field` with a selreload policy in its metadata.

    Without `policy` the field inherits the nearest explicit policy above it (and a leaf
    with none anywhere above it is restart-only). Takes every `attrs.field` keyword.
    """
    metadata = dict(kwargs.pop("metadata", None) or {})
    previous = metadata.get(_META)
    secret = previous.secret if isinstance(previous, FieldPolicy) else False
    metadata[_META] = FieldPolicy(policy=policy, secret=secret)
    return attrs.field(metadata=metadata, **kwargs)


def hot(**kwargs: Any) -> Any:
    """A field that may change while the service runs (same keywords as `attrs.field`)."""
    return field(policy=Policy.HOT, **kwargs)


def restart_only(**kwargs: Any) -> Any:
    """A field whose changes are rejected live and reported as restart pending."""
    return field(policy=Policy.RESTART_ONLY, **kwargs)


def secret(*, hot: bool = False, **kwargs: Any) -> Any:
    """A credential: masked (`***`) everywhere selreload renders it, restart-only unless
    `hot=True` (credential rotation)."""
    metadata = dict(kwargs.pop("metadata", None) or {})
    metadata[_META] = FieldPolicy(policy=Policy.HOT if hot else Policy.RESTART_ONLY, secret=True)
    kwargs.setdefault("repr", masked_repr)
    return attrs.field(metadata=metadata, **kwargs)


@overload
def config(maybe_cls: type[T], /) -> type[T]: ...
@overload
def config(maybe_cls: None = None, /, **kwargs: Any) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(attrs.field, field, hot, restart_only, secret))
def config(maybe_cls: type[T] | None = None, /, **kwargs: Any) -> Any:
    """Make a frozen, slotted attrs class that selreload can load, diff and reload.

    Usable bare (`@sr.config`) or with `attrs.frozen` keywords (`@sr.config(kw_only=True)`).
    """

    def wrap(cls: type[T]) -> type[T]:
        kwargs.setdefault("slots", True)
        own_repr = "__repr__" in cls.__dict__ or kwargs.get("repr") is False
        new = attrs.frozen(cls, **kwargs)
        setattr(new, _MARK, True)
        if not own_repr:
            # attrs' repr knows the fields declared secret(); this one also masks the
            # fields that policy files and credential rules make secret (`_mask.config_repr`).
            new.__repr__ = config_repr  # type: ignore[method-assign, assignment]
        return new

    return wrap if maybe_cls is None else wrap(maybe_cls)


def is_config(obj: object) -> bool:
    """Whether `obj` is a config node class: any attrs class, or a pydantic model."""
    return _backend.is_node(obj)


def is_secret_field(a: attrs.Attribute[Any]) -> bool:
    """Whether a field was declared with `secret()` (its values are masked)."""
    meta = a.metadata.get(_META)
    return bool(meta is not None and meta.secret)


# --- policy files -------------------------------------------------------------------------


@attrs.frozen
class PolicySet:
    """Path-glob overrides of the declared policies, as a policy file states them.

    `restart` and `secret` tighten; `hot` loosens (refused for secrets). When globs of
    several kinds match a leaf, the tightest wins: secret, then restart, then hot.
    """

    hot: tuple[str, ...] = ()
    restart: tuple[str, ...] = ()
    secret: tuple[str, ...] = ()
    source: str = "<policies>"
    # `{"kind:pattern": "file:line:col"}`, so an error names the line of the bad glob.
    positions: Mapping[str, str] = attrs.field(factory=dict, eq=False, repr=False)

    def origin(self, kind: str, pattern: str) -> str:
        """Where a glob was written: `file:line:col` when known, else the source name."""
        return self.positions.get(f"{kind}:{pattern}", self.source)

    def patterns(self) -> Iterable[tuple[str, str]]:
        for kind in ("secret", "restart", "hot"):
            for pattern in getattr(self, kind):
                yield kind, pattern


# --- the compiled schema ------------------------------------------------------------------


@attrs.frozen
class Leaf:
    """One leaf of a schema.

    Attributes:
        path: dotted path.
        type: the field's resolved annotation.
        policy: the resolved policy (declared, then policy files).
        secret: masked everywhere (declared, by a policy file, or by a credential rule).
        mapping: a `dict[str, X]` field, diffed per key (`feature_flags.new_checkout`).
        by_rule: secret only because its name matches a credential rule (`MaskRules`):
            masked, but its policy is its own and a policy file may make it hot.
    """

    path: str
    type: Any
    policy: Policy
    secret: bool
    mapping: bool = False
    by_rule: bool = False


def _is_mapping_type(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    return origin in (dict, collections.abc.Mapping, collections.abc.MutableMapping)


def unwrap_optional(tp: Any) -> Any:
    """`X | None` -> `X`; anything else unchanged."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


class Schema:
    """The leaves of a config class with their resolved policies.

    Args:
        cls: a `@sr.config` (or any attrs) class, or a pydantic model.
        policies: `PolicySet`s applied in order after the declared policies.
        mask: the credential rules: leaves named like credentials are secret (masked).

    Raises:
        PolicyError: a policy glob matches nothing, or loosens a secret.
    """

    def __init__(self, cls: type[Any], *, policies: Iterable[PolicySet] = (), mask: MaskRules | None = None) -> None:
        if not is_config(cls):
            raise TypeError(
                f"{cls!r} is not a config class; decorate it with @selreload.config, or pass a pydantic model"
            )
        self.cls = cls
        self.policies = tuple(policies)
        self.mask = DEFAULT_RULES if mask is None else mask
        self.leaves: dict[str, Leaf] = {}
        # node path -> the attrs class at that path ("" is the root)
        self.nodes: dict[str, type[Any]] = {}
        self._walk(cls, "", None, False)
        self._policy_cache: dict[str, tuple[Policy, bool]] = {}
        self.mapping_paths = tuple(p for p, leaf in self.leaves.items() if leaf.mapping)
        self._apply_policy_files()
        self._register()

    def _register(self) -> None:
        # Tell `_mask` where each class sits, so its repr (and instances met without a
        # schema, e.g. a `Db` inside `dict[str, Db]`) mask what this schema makes secret.
        seen: set[tuple[type[Any], str]] = set()

        def inner(tp: Any, path: str, chain: frozenset[type[Any]] = frozenset()) -> None:
            if not is_config(tp):
                for arg in typing.get_args(tp):
                    inner(arg, path, chain)
            elif tp not in chain and (tp, path) not in seen:  # a recursive type stops here
                seen.add((tp, path))
                register(tp, self, path)
                for f in _backend.fields(tp):
                    inner(f.type, f"{path}.{f.name}", chain | {tp})

        for prefix, node in self.nodes.items():
            register(node, self, prefix.rstrip("."))
        for path, leaf in self.leaves.items():
            for arg in typing.get_args(leaf.type):
                inner(arg, f"{path}.*" if leaf.mapping else path)

    def _walk(self, cls: type[Any], prefix: str, inherited: Policy | None, secret: bool, ruled: bool = False) -> None:
        self.nodes[prefix] = cls
        _backend.prepare(cls)
        for a in _backend.fields(cls):
            meta = a.declared
            policy = meta.policy if meta is not None and meta.policy is not None else inherited
            is_secret = secret or (meta is not None and meta.secret)
            if is_secret and (meta is None or meta.policy is None) and policy is None:
                policy = Policy.RESTART_ONLY
            path = f"{prefix}{a.name}"
            # A credential rule masks a leaf (or a node: all under it) but sets no policy.
            by_rule = ruled or self.mask.matches(path)
            tp = unwrap_optional(a.type)
            if is_config(tp) and tp is not a.type:
                # A section that can be None has no leaves to diff, digest, mask or route:
                # refused here, not an AttributeError in the first reload.
                raise TypeError(
                    f"{path}: a config section cannot be optional ({tp.__name__} | None); "
                    f"give it a default instance (sr.field(factory={tp.__name__})) and, if it "
                    "can be turned off, an `enabled` flag"
                )
            if is_config(tp) and tp is not cls:
                self._walk(tp, path + ".", policy, is_secret, by_rule)
                continue
            self.leaves[path] = Leaf(
                path=path,
                type=a.type,
                policy=policy or Policy.RESTART_ONLY,
                secret=is_secret or by_rule,
                mapping=_is_mapping_type(a.type),
                by_rule=by_rule and not is_secret,
            )

    def _apply_policy_files(self) -> None:
        for policy_set in self.policies:
            for kind, pattern in policy_set.patterns():
                matched = [p for p in self.leaves if matches(pattern, p)]
                # A glob may also name keys inside a mapping field (feature_flags.beta_*).
                under_mapping = any(pattern.startswith(m + ".") or matches(pattern, m) for m in self.mapping_paths)
                if not matched and not under_mapping:
                    tip = hint(pattern, self.leaves)
                    raise PolicyError(f"{policy_set.origin(kind, pattern)}: {kind}: {pattern!r} matches no field{tip}")
                for path in matched:
                    leaf = self.leaves[path]
                    if kind == "hot" and leaf.secret and not leaf.by_rule:
                        raise PolicyError(
                            f"{policy_set.origin(kind, pattern)}: hot: {pattern!r} would make secret {path!r} hot; "
                            "secrets can only be made hot in code, with secret(hot=True)"
                        )
                    if kind == "hot" and any(matches(p, path) for k, p in policy_set.patterns() if k != "hot"):
                        continue  # the tighter glob in the same file wins
                    self.leaves[path] = attrs.evolve(
                        leaf,
                        policy=Policy.HOT if kind == "hot" else Policy.RESTART_ONLY,
                        secret=leaf.secret or kind == "secret",
                        by_rule=leaf.by_rule and kind != "secret",
                    )

    def leaf_of(self, path: str) -> Leaf | None:
        """The leaf at `path`, or the mapping leaf a per-key path is under."""
        # Walk up: a key may hold dots itself (`logging.levels.com.example.db`).
        for head in ancestors(path):
            leaf = self.leaves.get(head)
            if leaf is not None:
                return leaf if head == path or leaf.mapping else None
        return None

    def policy_of(self, path: str) -> tuple[Policy, bool]:
        """`(policy, secret)` of a leaf path or a per-key path under a mapping field."""
        cached = self._policy_cache.get(path)
        if cached is not None:
            return cached
        leaf = self.leaf_of(path)
        if leaf is None:
            return Policy.RESTART_ONLY, False
        policy, is_secret = leaf.policy, leaf.secret
        if path != leaf.path:  # a key inside a mapping: policy files may name keys
            locked = leaf.secret and not leaf.by_rule  # only a declared secret refuses `hot`
            for policy_set in self.policies:
                for kind, pattern in policy_set.patterns():  # tightest kind first
                    if not matches(pattern, path) or matches(pattern, leaf.path):
                        continue
                    if kind == "hot" and locked:
                        continue
                    policy = Policy.HOT if kind == "hot" else Policy.RESTART_ONLY
                    is_secret = is_secret or kind == "secret"
                    break
            is_secret = is_secret or self.mask.matches(path)
        if len(self._policy_cache) < 65536:
            self._policy_cache[path] = (policy, is_secret)
        return policy, is_secret

    def paths_matching(self, pattern: str) -> list[str]:
        """Leaf paths a registration pattern covers (mapping leaves count for their keys)."""
        return [
            p
            for p, leaf in self.leaves.items()
            if matches(pattern, p)
            or (leaf.mapping and matches(pattern, p + ".x"))
            or (leaf.mapping and pattern.startswith(p + "."))
        ]

    def suggest(self, path: str) -> str | None:
        """The leaf path closest to a misspelt one, if any is close."""
        return did_you_mean(path, self.leaves)
