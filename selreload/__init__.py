"""selreload: safe, selective hot reload of typed configuration.

Declare which fields may change live, register appliers for their side effects, and
read `reloader.current`: every reload is validated, diffed, applied as one transaction
and swapped in with a single assignment.
"""

from __future__ import annotations

from ._change import UNSET, Change, Policy
from ._errors import ApplyError, ConfigError, Issue, PolicyError, SelreloadError, StateError
from ._policy import load_policy_file
from ._reloader import Reloader, State
from ._result import Action, Outcome, Plan, PlannedChange, ReloadResult
from ._schema import PolicySet, config, field, hot, restart_only, secret
from ._snapshot import Snapshot
from .sources import YamlFile

__all__ = [
    "UNSET",
    "Action",
    "ApplyError",
    "Change",
    "ConfigError",
    "Issue",
    "Outcome",
    "Plan",
    "PlannedChange",
    "Policy",
    "PolicyError",
    "PolicySet",
    "ReloadResult",
    "Reloader",
    "SelreloadError",
    "Snapshot",
    "State",
    "StateError",
    "YamlFile",
    "config",
    "field",
    "hot",
    "load_policy_file",
    "restart_only",
    "secret",
]
