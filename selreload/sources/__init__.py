"""Where config comes from: files, environment variables, .env files, secrets directories, etcd."""

from __future__ import annotations

import typing as _typing

from ._dotenv import DotEnv
from ._env import Env
from ._file import YamlFile
from ._json import JsonFile
from ._layout import layered
from ._secrets_dir import SecretsDir
from ._toml import TomlFile

if _typing.TYPE_CHECKING:
    from ._etcd import Etcd

__all__ = ["DotEnv", "Env", "Etcd", "JsonFile", "SecretsDir", "TomlFile", "YamlFile", "layered"]


def __getattr__(name: str) -> _typing.Any:
    # Etcd loads on first use: it brings asyncio and the etcd client machinery, which a
    # service reading files never needs.
    if name == "Etcd":
        from ._etcd import Etcd

        globals()["Etcd"] = Etcd
        return Etcd
    raise AttributeError(f"module 'selreload.sources' has no attribute {name!r}")
