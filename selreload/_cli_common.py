"""What every `selreload` command shares: exit codes, `CliError`, loading what the user names."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pathlib
import sys
import typing
from collections.abc import Sequence
from typing import Any

from ._errors import PolicyError
from ._paths import hint
from ._policy import load_policies
from ._schema import Schema, is_config
from ._typing import Source

PROG = "selreload"

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_RESTART = 2


class CliError(Exception):
    """A failure the user can fix, reported as one line: `selreload: error: <message>`."""


# --- loading what the user names ------------------------------------------------------------


def schema_spec(text: str) -> str:
    # Syntax only (an argparse usage error, exit 2); importing it happens later (exit 1).
    module, sep, attr = text.partition(":")
    if not sep or not module or not attr:
        raise argparse.ArgumentTypeError(f"expected module:Class (like myapp.settings:AppConfig), got {text!r}")
    return text


def etcd_spec(text: str) -> str:
    """`--etcd` checked when parsed: a malformed endpoint is a one-line usage error."""
    from ._etcd_access import access

    try:
        access(text, environ={})  # the endpoints alone: TLS files and users are checked later
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (expected http[s]://HOST:PORT[,HOST:PORT...])") from None
    return text


def load_schema(spec: str) -> type[Any]:
    """Import `module:Class` (the current directory first on the path) and check that it
    is a config class.

    Raises:
        CliError: the module cannot be imported, lacks the attribute, or it is not a class
            made with `@selreload.config` (or attrs).
    """
    module_name, _, attr = spec.partition(":")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise CliError(f"--schema {spec}: no module named {exc.name!r} (looked in {cwd} and sys.path)") from None
        raise CliError(f"--schema {spec}: importing {module_name!r} failed: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - whatever the user's module raises, one line
        raise CliError(f"--schema {spec}: importing {module_name!r} failed: {type(exc).__name__}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            candidates = [n for n, v in vars(module).items() if is_config(v)]
            listed = f"; config classes there: {', '.join(candidates)}" if candidates else ""
            tip = hint(part, candidates, otherwise=listed)
            raise CliError(f"--schema {spec}: module {module_name!r} has no attribute {attr!r}{tip}")
        obj = getattr(obj, part)
    if not is_config(obj):
        raise CliError(
            f"--schema {spec}: {attr} is not a config class ({type(obj).__name__}); "
            "decorate it with @selreload.config, or pass a pydantic model"
        )
    return typing.cast(type[Any], obj)


def existing(path: str) -> pathlib.Path:
    """`path` as a Path, or `CliError` when it is missing or not a file."""
    p = pathlib.Path(path)
    if not p.exists():
        raise CliError(f"{path}: no such file")
    if not p.is_file():
        raise CliError(f"{path}: not a file")
    return p


def file_source(path: str) -> Source:
    """An unwatched file source chosen by extension: .json, .toml, else YAML (ConfigMap
    keys often have no extension). A CLI run reads once."""
    existing(path)
    suffix = pathlib.Path(path).suffix.lower()
    if suffix == ".json":
        from .sources import JsonFile

        return typing.cast(Source, JsonFile(path, watch=False))
    if suffix == ".toml":
        from .sources import TomlFile

        return typing.cast(Source, TomlFile(path, watch=False))
    from .sources import YamlFile

    return YamlFile(path, watch=False)


def env_source(prefix: str) -> Source:
    """Environment variables under `prefix` (`APP_LOGGING__LEVEL`)."""
    from .sources import Env

    return typing.cast(Source, Env(prefix=prefix))


def layer_sources(files: Sequence[str], env_prefix: str | None) -> list[Source]:
    """The layers a command reads: the files in order, then the environment if asked."""
    sources = [file_source(f) for f in files]
    if env_prefix:
        sources.append(env_source(env_prefix))
    return sources


def compile_schema(schema: type[Any], policies: Sequence[str]) -> Schema:
    """`schema` with the policy files applied.

    Raises:
        CliError: a policy file is missing or cannot be honoured.
    """
    for p in policies:
        existing(p)
    try:
        return Schema(schema, policies=load_policies(list(policies)))
    except PolicyError as exc:
        raise CliError(str(exc)) from None


# --- options more than one command takes ---------------------------------------------------


def add_schema(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    p.add_argument(
        "--schema",
        required=required,
        type=schema_spec,
        metavar="MODULE:CLASS",
        help="the config class, e.g. app.settings:App",
    )


def add_policies(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--policies", action="append", default=[], metavar="FILE", help="a policy file (repeatable; later ones tighten)"
    )


def add_env(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env-prefix", metavar="PREFIX", help="also read environment variables, e.g. APP_")


def actor(args: argparse.Namespace) -> str:
    """Who runs a command, for the audit: `--actor`, else `$SELRELOAD_ACTOR`, else the login."""
    import getpass

    given, where = getattr(args, "actor", None), "--actor"
    if not given:
        given, where = os.environ.get("SELRELOAD_ACTOR"), "$SELRELOAD_ACTOR"
    if not given:
        given, where = getpass.getuser(), "the login name"
    # It reaches every worker's log line and audit record of what it does.
    if not given.isprintable():
        raise CliError(f"{where}: an actor must be printable text (no newline or control character), got {given!r}")
    return given


def refused(problems: Sequence[str], err: typing.TextIO) -> bool:
    """Print why an override was refused before anything was written; whether it was."""
    for why in problems:
        print(why, file=err)
    if problems:
        print(f"{PROG}: refused: nothing written", file=err)
    return bool(problems)


def report_answer(
    args: argparse.Namespace,
    answer: Any,
    reasons: Sequence[tuple[str, str]],
    out: typing.TextIO,
    err: typing.TextIO,
    *,
    taken_back: bool,
) -> int:
    """Print what the workers or the fleet answered to a `set`, `unset` or `rollback`
    (`reasons`: each refusing instance and why); exit 0 all applied it, 1 one refused,
    3 not every one answered in time."""
    if args.json:
        print(json.dumps(answer.to_json(), indent=2, default=str), file=out)
    for instance, why in reasons:
        print(f"{instance}: refused: {why}", file=err)
    if not args.json:
        stream = err if answer.refused or answer.pending else out
        print(answer.summary() + (": taken back out" if answer.refused and taken_back else ""), file=stream)
    return EXIT_FAIL if answer.refused else 3 if answer.pending else EXIT_OK
