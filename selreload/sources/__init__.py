"""Where config comes from: files, environment variables, etcd."""

from __future__ import annotations

from ._file import YamlFile

__all__ = ["YamlFile"]
