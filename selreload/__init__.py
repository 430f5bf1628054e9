"""selreload: safe, selective hot reload of typed configuration.

Declare which fields may change live, register appliers for their side effects, and
read `reloader.current`: every reload is validated, diffed, applied as one transaction
and swapped in with a single assignment.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
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
    from ._jsonschema import json_schema
    from ._mask import MaskRules
    from ._policy import load_policy_file
    from ._reloader import Reloader, State
    from ._result import Action, Outcome, Plan, PlannedChange, ReloadResult
    from ._schema import Hot, PolicySet, RestartOnly, Secret, config, field, hot, restart_only, secret
    from ._snapshot import Snapshot
    from ._values import format_duration
    from .sources import DotEnv, Env, Etcd, JsonFile, SecretsDir, TomlFile, YamlFile, layered

# Names load on first use (PEP 562): `import selreload` stays cheap, and what a program
# never touches (etcd and its asyncio, the Prometheus exposition's HTTP server, the
# explain machinery) is never imported. `tests/test_imports.py` pins what it pulls in.
_LAZY: dict[str, str] = {
    "UNSET": "._change",
    "Action": "._result",
    "ApplierTimeoutError": "._errors",
    "ApplyError": "._errors",
    "AuditLog": "._audit",
    "AuditVerification": "._audit",
    "AuditWriteError": "._errors",
    "Change": "._change",
    "DotEnv": ".sources",
    "ConfigError": "._errors",
    "Env": ".sources",
    "Etcd": ".sources",
    "Explanation": "._explain",
    "Hot": "._schema",
    "Issue": "._errors",
    "JsonFile": ".sources",
    "MaskRules": "._mask",
    "Outcome": "._result",
    "Plan": "._result",
    "PlannedChange": "._result",
    "Policy": "._change",
    "PolicyError": "._errors",
    "PolicySet": "._schema",
    "ReloadResult": "._result",
    "Reloader": "._reloader",
    "RestartOnly": "._schema",
    "Secret": "._schema",
    "SecretsDir": ".sources",
    "SelreloadError": "._errors",
    "Snapshot": "._snapshot",
    "State": "._reloader",
    "StateError": "._errors",
    "TomlFile": ".sources",
    "UnknownVersionError": "._errors",
    "WatchError": "._errors",
    "YamlFile": ".sources",
    "config": "._schema",
    "explain": "._explain",
    "field": "._schema",
    "format_duration": "._values",
    "hot": "._schema",
    "json_schema": "._jsonschema",
    "layered": ".sources",
    "load_policy_file": "._policy",
    "read_audit": "._audit",
    "restart_only": "._schema",
    "secret": "._schema",
    "verify_audit": "._audit",
}

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
    "DotEnv",
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
    "SecretsDir",
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
    "json_schema",
    "layered",
    "load_policy_file",
    "read_audit",
    "restart_only",
    "secret",
    "verify_audit",
]


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'selreload' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module, __name__), name)
    globals()[name] = value  # later reads skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
