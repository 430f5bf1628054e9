"""`explain()`: the value, origin and policy of every leaf, for people fixing config."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from ._boundary import load, structure
from ._change import Policy
from ._diff import Flattener
from ._layers import origins
from ._mask import MASK, render
from ._paths import matches
from ._policy import PolicyInput, load_policies
from ._present import explain_table
from ._schema import Schema
from ._structure import Structurer
from ._typing import Source


@attrs.frozen
class Explanation:
    """Where one leaf's value came from and how it may change.

    Attributes:
        path: dotted path (`logging.level`, `feature_flags.new_checkout`).
        value: the effective value, or `"***"` for a secret.
        origin: `file:line:col`, `env:APP_X`, `etcd:key`, or `default`.
        policy: `Policy.HOT` or `Policy.RESTART_ONLY`.
        secret: the value is masked.
    """

    path: str
    value: Any
    origin: str
    policy: Policy
    secret: bool = False

    def rendered_value(self) -> str:
        """The value as people read it (`15m`, `'info'`, `***`)."""
        return render(self.value, secret=self.secret)


def explain(
    schema: type[Any],
    sources: Sequence[Source],
    path: str | None = None,
    *,
    policies: PolicyInput | Iterable[PolicyInput] | None = None,
) -> list[Explanation]:
    """Load `sources` as a Reloader would and explain every leaf (or those at or under
    `path`, which may be a glob like `logging.*`), in schema order.

    Args:
        schema: a `@sr.config` class.
        sources: layers, lowest precedence first.
        path: only leaves at or under this dotted path or glob.
        policies: policy files or `PolicySet`s, as for `Reloader`.

    Returns:
        One `Explanation` per leaf (mapping fields per key).

    Raises:
        ConfigError: the config is invalid; every issue with its origin.
        PolicyError: a policy file cannot be honoured.
    """
    compiled = Schema(schema, policies=load_policies(policies))
    layers = load(sources)
    config = structure(Structurer(compiled), layers)
    flat = Flattener(compiled)(config)
    if path:
        flat = {p: v for p, v in flat.items() if matches(path, p)}
    where = origins(flat, layers)
    out = []
    for leaf_path, value in flat.items():
        policy, secret = compiled.policy_of(leaf_path)
        out.append(Explanation(leaf_path, MASK if secret else value, where[leaf_path], policy, secret))
    return out


def render_table(explanations: Iterable[Explanation]) -> str:
    """A fixed-width table, one leaf per line: PATH, VALUE, POLICY, ORIGIN (`_present.explain_table`)."""
    return explain_table(explanations)
