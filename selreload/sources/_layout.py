"""`layered()`: the usual stack of config layers for one environment."""

from __future__ import annotations

import os
import pathlib
import re
from collections.abc import Mapping

from .._typing import Source
from ._env import Env
from ._file import YamlFile

_ENV_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def layered(
    directory: str | os.PathLike[str] = "config",
    *,
    env: str | None = None,
    prefix: str = "APP_",
    environ: Mapping[str, str] | None = None,
    watch: str | bool = "auto",
) -> list[Source]:
    """`default.yaml`, `{env}.yaml`, optional `local.yaml`, then `{prefix}*` variables.

    Later layers win; mappings are deep-merged. `env` defaults to `{prefix}ENV` (so
    `APP_ENV=production` reads `production.yaml`), and that variable is not a setting.

    Args:
        directory: where the YAML files are; errors name the files under it as given.
        env: the environment's file name without `.yaml`; none means no such layer.
        prefix: of the environment variables.
        environ: the variables (default `os.environ`).
        watch: passed to each file source (`False` to not watch).

    Raises:
        ValueError: `env` is not a plain name (it must not reach outside `directory`).
    """
    variables = os.environ if environ is None else environ
    env_var = f"{prefix}ENV"
    name = env if env is not None else variables.get(env_var)
    if name and (not _ENV_NAME.fullmatch(name) or ".." in name):
        raise ValueError(f"{env_var}={name!r} is not a plain environment name (letters, digits, '_', '-', '.')")
    base = pathlib.Path(directory)
    sources: list[Source] = [YamlFile(base / "default.yaml", watch=watch)]
    if name:
        sources.append(YamlFile(base / f"{name}.yaml", watch=watch))
    sources.append(YamlFile(base / "local.yaml", required=False, watch=watch))
    sources.append(Env(prefix, environ, ignore=[env_var]))
    return sources
