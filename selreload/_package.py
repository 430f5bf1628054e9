"""What the installed distribution brings: its version, the shipped policy files, and the
optional dependencies (imported on demand, or a one-line error naming the extra)."""

from __future__ import annotations

import importlib
import pathlib
from types import ModuleType
from typing import Final

POLICIES_DIR: Final = pathlib.Path(__file__).parent / "policies"
"""The policy files shipped inside the package (`selreload policies --list` prints them)."""


def version() -> str:
    """The installed version of selreload (`unknown` when run from a tree that is not installed)."""
    from importlib import metadata

    try:
        return metadata.version("selreload")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def shipped_policies() -> list[pathlib.Path]:
    """The shipped policy files, sorted by name."""
    return sorted(POLICIES_DIR.glob("*.yaml"))


def shipped_policies_table() -> str:
    """One line per shipped policy file: its name, its first comment line, its path."""
    rows = []
    for path in shipped_policies():
        first = path.read_text(encoding="utf-8").splitlines()[:1]
        about = first[0].lstrip("# ").strip() if first and first[0].startswith("#") else ""
        rows.append((path.stem, about, str(path)))
    from ._text import table

    return table([("NAME", "FOR", "PATH"), *rows])


# module -> (distribution, extra): what `pip install 'selreload[extra]'` brings.
_PROVIDERS: Final = {
    "starlette": ("starlette", "http"),
    "uvicorn": ("uvicorn", "demo"),
    "opentelemetry.sdk": ("opentelemetry-sdk", "otel"),
    "aetcd": ("aetcd", "etcd"),
}


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message says which extra brings it."""


def missing(exc: ModuleNotFoundError, *, feature: str, extra: str | None = None) -> ImportError:
    """`MissingExtraError` with the install hint when `exc` is about an optional
    dependency, else `exc` itself (an ImportError inside an installed package stays as it is).
    `extra` names the extra to install when it is not the one that provides the module
    (the demo needs starlette too, and `[demo]` brings everything it needs)."""
    for module, (dist, provider) in _PROVIDERS.items():
        if exc.name is not None and (exc.name == module or module.startswith(exc.name + ".")):
            msg = f"{feature} needs {dist}, which is not installed: pip install 'selreload[{extra or provider}]'"
            return MissingExtraError(msg, name=exc.name)
    return exc


def need(module: str, *, feature: str) -> ModuleType:
    """Import `module` for `feature`, or raise `MissingExtraError` with the install hint."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise missing(exc, feature=feature) from None
