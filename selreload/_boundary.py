"""The one error boundary around reading and structuring input.

Sources, parsers and the structurer report bad input as `ConfigError`. Anything else
they raise (a bug, `RecursionError`, `MemoryError`, a parser choking on a value) is
caught here and becomes an `Issue` written by selreload, named by its type only: the
text of an unexpected exception may quote the input, and the input may be a secret.
So `reload()`, `plan()`, the CLI, the watchers, SIGHUP, HTTP and etcd all end in a
defined outcome, whatever the bytes were.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from . import _layers
from ._errors import ConfigError, Issue
from ._structure import Structurer
from ._typing import Layer, Source


def _unexpected(exc: Exception, what: str) -> str:
    return f"{what} failed unexpectedly ({type(exc).__name__}); the live config is kept"


def load(sources: Iterable[Source]) -> list[Layer]:
    """Read every source; the problems of all of them are raised together.

    Raises:
        ConfigError: a source could not be read or parsed.
    """
    layers: list[Layer] = []
    issues: list[Issue] = []
    for source in sources:
        try:
            layers.append(source.load())
        except ConfigError as exc:
            issues.extend(exc.issues)
        except Exception as exc:  # noqa: BLE001 - the boundary: every failure becomes an issue
            issues.append(Issue("", _unexpected(exc, "reading this source"), _name(source)))
    if issues:
        raise ConfigError(_layers.capped(issues))
    return layers


def structure(structurer: Structurer, layers: Sequence[Layer]) -> Any:
    """Merge and structure the layers into a config instance.

    Raises:
        ConfigError: every issue found, each placed at its origin.
    """
    try:
        return _layers.structure(structurer, layers)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - the boundary
        raise ConfigError([Issue("", _unexpected(exc, "structuring the config"), "structure")]) from None


def build(structurer: Structurer, sources: Iterable[Source]) -> Any:
    """Load the sources and structure them into a config instance (no Reloader needed).

    Raises:
        ConfigError: a source failed to parse, or the merged tree is invalid.
    """
    return structure(structurer, load(sources))


def _name(source: Source) -> str:
    try:
        return str(source.name)
    except Exception:  # noqa: BLE001 - a source whose name raises is still reported
        return type(source).__name__
