"""Policies and `Change`: the unit every stage passes along (`UNSET` is re-exported)."""

from __future__ import annotations

import enum
from typing import Any

import attrs

from ._values import UNSET

__all__ = ["UNSET", "Change", "Policy"]


class Policy(enum.Enum):
    """Whether a leaf may change while the service runs."""

    HOT = "hot"
    RESTART_ONLY = "restart_only"


@attrs.frozen(repr=False)
class Change:
    """One leaf that differs between two configs.

    Attributes:
        path: dotted path of the leaf (`logging.level`, `feature_flags.new_checkout`).
        old: the live value (`UNSET` on start-up, or when a mapping key is new).
        new: the value going live (`UNSET` when a mapping key was removed).
        policy: the leaf's resolved policy.
        secret: the value is masked wherever selreload renders it.
    """

    path: str
    old: Any
    new: Any
    policy: Policy = Policy.HOT
    secret: bool = False

    def inverted(self) -> Change:
        """The change that undoes this one (old and new swapped)."""
        return attrs.evolve(self, old=self.new, new=self.old)

    def __repr__(self) -> str:
        from ._present import transition  # the one renderer of a change; it imports this module

        return f"Change({self.path!r}, {transition(self)}, {self.policy.value})"

    __str__ = __repr__
