"""Where config comes from: files, environment variables, .env files, secrets directories, etcd."""

from __future__ import annotations

from ._dotenv import DotEnv
from ._env import Env
from ._etcd import Etcd
from ._file import YamlFile
from ._json import JsonFile
from ._layout import layered
from ._secrets_dir import SecretsDir
from ._toml import TomlFile

__all__ = ["DotEnv", "Env", "Etcd", "JsonFile", "SecretsDir", "TomlFile", "YamlFile", "layered"]
