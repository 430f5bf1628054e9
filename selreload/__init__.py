"""selreload: safe, selective hot reload of typed configuration.

Declare which fields may change live, register appliers for their side effects, and
read `reloader.current`: every reload is validated, diffed, applied as one transaction
and swapped in with a single assignment.
"""

from __future__ import annotations

from ._audit import AuditLog, AuditVerification, read_audit, verify_audit
from ._change import UNSET, Change, Policy
from ._errors import (
    ApplierTimeoutError,
    ApplyError,
    AuditWriteError,
    ConfigError,
    Issue,
    PolicyError,
    SelreloadError,
    StateError,
    UnknownVersionError,
    WatchError,
)
from ._explain import Explanation, explain
from ._mask import MaskRules
from ._policy import load_policy_file
from ._reloader import Reloader, State
from ._result import Action, Outcome, Plan, PlannedChange, ReloadResult
from ._schema import Hot, PolicySet, RestartOnly, Secret, config, field, hot, restart_only, secret
from ._snapshot import Snapshot
from ._values import format_duration
from .sources import Env, Etcd, JsonFile, TomlFile, YamlFile, layered

__all__ = [
    "UNSET",
    "Action",
    "ApplierTimeoutError",
    "ApplyError",
    "AuditLog",
    "AuditVerification",
    "AuditWriteError",
    "Change",
    "ConfigError",
    "Env",
    "Etcd",
    "Explanation",
    "Hot",
    "Issue",
    "JsonFile",
    "MaskRules",
    "Outcome",
    "Plan",
    "PlannedChange",
    "Policy",
    "PolicyError",
    "PolicySet",
    "ReloadResult",
    "Reloader",
    "RestartOnly",
    "Secret",
    "SelreloadError",
    "Snapshot",
    "State",
    "StateError",
    "TomlFile",
    "UnknownVersionError",
    "WatchError",
    "YamlFile",
    "config",
    "explain",
    "field",
    "format_duration",
    "hot",
    "layered",
    "load_policy_file",
    "read_audit",
    "restart_only",
    "secret",
    "verify_audit",
]
