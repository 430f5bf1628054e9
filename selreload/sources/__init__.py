"""Where config comes from: files, environment variables, etcd."""

from __future__ import annotations

from ._env import Env
from ._etcd import Etcd
from ._file import YamlFile
from ._json import JsonFile
from ._layout import layered
from ._toml import TomlFile

__all__ = ["Env", "Etcd", "JsonFile", "TomlFile", "YamlFile", "layered"]
