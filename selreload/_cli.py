"""The `selreload` command line: check, plan, explain, policies, audit, demo, fleet, push.

Exit codes: 0 success; 1 invalid config, tampered (or unverifiable) audit file or any
runtime error; 2 a usage error (argparse), or for `plan`, restart-only changes present.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import json
import logging
import os
import pathlib
import sys
import typing
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from . import _layers
from ._change import Policy
from ._errors import ConfigError, PolicyError
from ._plan import plan
from ._policy import load_policies
from ._present import plan_table, plan_to_json
from ._result import Outcome, Plan
from ._schema import Schema, is_config
from ._structure import Structurer
from ._text import table
from ._typing import Source

PROG = "selreload"

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_RESTART = 2


class CliError(Exception):
    """A failure the user can fix, reported as one line: `selreload: error: <message>`."""


# --- loading what the user names ------------------------------------------------------------


def _schema_spec(text: str) -> str:
    # Syntax only (an argparse usage error, exit 2); importing it happens later (exit 1).
    module, sep, attr = text.partition(":")
    if not sep or not module or not attr:
        raise argparse.ArgumentTypeError(f"expected module:Class (like myapp.settings:AppConfig), got {text!r}")
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
            hint = difflib.get_close_matches(part, candidates, n=1)
            tip = (
                f"; did you mean {hint[0]!r}?"
                if hint
                else (f"; config classes there: {', '.join(candidates)}" if candidates else "")
            )
            raise CliError(f"--schema {spec}: module {module_name!r} has no attribute {attr!r}{tip}")
        obj = getattr(obj, part)
    if not is_config(obj):
        raise CliError(
            f"--schema {spec}: {attr} is not a config class ({type(obj).__name__}); decorate it with @selreload.config"
        )
    return typing.cast(type[Any], obj)


def _existing(path: str) -> pathlib.Path:
    p = pathlib.Path(path)
    if not p.exists():
        raise CliError(f"{path}: no such file")
    if not p.is_file():
        raise CliError(f"{path}: not a file")
    return p


def file_source(path: str) -> Source:
    """An unwatched file source chosen by extension: .json, .toml, else YAML (ConfigMap
    keys often have no extension). A CLI run reads once."""
    _existing(path)
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
    from .sources import Env

    return typing.cast(Source, Env(prefix=prefix))


def _sources(files: Sequence[str], env_prefix: str | None) -> list[Source]:
    sources = [file_source(f) for f in files]
    if env_prefix:
        sources.append(env_source(env_prefix))
    return sources


def _compile(schema: type[Any], policies: Sequence[str]) -> Schema:
    for p in policies:
        _existing(p)
    try:
        return Schema(schema, policies=load_policies(list(policies)))
    except PolicyError as exc:
        raise CliError(str(exc)) from None


# --- commands -------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    schema = _compile(load_schema(args.schema), args.policies)
    try:
        _layers.build(Structurer(schema), _sources(args.files, args.env_prefix))
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=err)
        n = len(exc.issues)
        print(f"{PROG}: configuration check failed: {n} error{'s' if n != 1 else ''}", file=err)
        return EXIT_FAIL
    leaves = schema.leaves.values()
    hot = sum(1 for leaf in leaves if leaf.policy is Policy.HOT)
    print(f"{PROG}: {', '.join(args.files)}: syntax and types are ok", file=out)
    counts = f"{len(leaves)} leaves, {hot} hot, {len(leaves) - hot} restart-only"
    print(f"{PROG}: configuration OK ({schema.cls.__name__}: {counts})", file=out)
    return EXIT_OK


def cmd_plan(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    schema = _compile(load_schema(args.schema), args.policies)
    structurer = Structurer(schema)
    env = [env_source(args.env_prefix)] if args.env_prefix else []
    built = []
    for option, path in (("--from", args.from_), ("--to", args.to)):
        try:
            built.append(_layers.build(structurer, [file_source(path), *env]))
        except ConfigError as exc:
            return _print_plan(Plan(errors=exc.issues), args, out, err, invalid=f"{option} {path} is invalid")
    return _print_plan(plan(schema, built[0], built[1]), args, out, err, invalid=f"--to {args.to} is invalid")


def _print_plan(plan: Plan, args: argparse.Namespace, out: TextIO, err: TextIO, *, invalid: str) -> int:
    code = EXIT_FAIL if plan.errors else EXIT_RESTART if plan.rejected else EXIT_OK
    if args.json:
        print(json.dumps(plan_to_json(plan), indent=2), file=out)
        return code
    if plan.errors:
        for issue in plan.errors:
            print(issue, file=err)
        print(f"{PROG}: {invalid}: nothing would be applied", file=err)
        return code
    if not plan.steps:
        print("no changes", file=out)
        return code
    print(plan_table(plan), file=out)
    n_apply, n_reject = len(plan.applied), len(plan.rejected)
    summary = f"{n_apply} to apply live, {n_reject} rejected (restart required)"
    if plan.outcome is Outcome.REJECTED:
        summary += ": nothing would be applied"
    print(f"\n{summary}", file=out)
    return code


def cmd_explain(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._explain import explain, render_table

    schema = load_schema(args.schema)
    files = list(args.files)
    path = None
    # The last positional is a dotted path when it is not a file (`explain a.yaml logging`).
    if len(files) > 1 and not pathlib.Path(files[-1]).exists():
        path = files.pop()
    sources = _sources(files, args.env_prefix)
    for p in args.policies:
        _existing(p)
    try:
        rows = explain(schema, sources, path, policies=list(args.policies) or None)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=err)
        n = len(exc.issues)
        print(f"{PROG}: cannot explain an invalid configuration: {n} error{'s' if n != 1 else ''}", file=err)
        return EXIT_FAIL
    except PolicyError as exc:
        raise CliError(str(exc)) from None
    if path and not rows:
        compiled = Schema(schema)
        known = [*compiled.leaves, *(n.rstrip(".") for n in compiled.nodes if n)]
        hint = next(iter(difflib.get_close_matches(path, known, n=1)), None)
        raise CliError(f"no config field at {path!r}" + (f"; did you mean {hint!r}?" if hint else ""))
    print(render_table(rows), file=out)
    return EXIT_OK


def _type_name(tp: Any) -> str:
    """`int`, `timedelta`, `dict[str, bool]`, `str | None`: annotations as people write them."""
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    text = tp if isinstance(tp, str) else repr(tp)
    for module in ("typing.", "datetime.", "collections.abc.", "pathlib.", "enum."):
        text = text.replace(module, "")
    return text


def cmd_policies(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    cls = load_schema(args.schema)
    for p in args.policies:
        _existing(p)
    try:
        schema = Schema(cls, policies=load_policies(args.policies))
    except PolicyError as exc:
        raise CliError(str(exc)) from None
    rows: list[Sequence[str]] = [("PATH", "TYPE", "POLICY", "SECRET")]
    for leaf in schema.leaves.values():
        path = leaf.path + (".<key>" if leaf.mapping else "")
        rows.append((path, _type_name(leaf.type), leaf.policy.value, "yes" if leaf.secret else ""))
    print(table(rows), file=out)
    return EXIT_OK


def _audit_key(args: argparse.Namespace) -> bytes | None:
    from ._audit import load_key

    key_file = args.key_file or os.environ.get("SELRELOAD_AUDIT_KEY_FILE") or None
    try:
        return load_key(key_file=key_file)
    except OSError as exc:
        raise CliError(f"{key_file}: cannot read the key file: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CliError(str(exc)) from None


def cmd_audit_verify(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._audit import verify_audit

    _existing(args.file)
    key = _audit_key(args)
    try:
        found = verify_audit(args.file, key=key)
    except OSError as exc:
        raise CliError(f"{args.file}: cannot read: {exc.strerror or exc}") from None
    for problem in found.problems:
        print(f"{args.file}:{problem.line}: {problem.reason}", file=err)
    if found.omitted:
        print(f"{args.file}: +{found.omitted} more bad lines not listed", file=err)
    if found.ok:
        print(f"{args.file}: {found}", file=out)
        return EXIT_OK
    if found.tampered:
        count = len(found.tampered) + found.omitted
        print(
            f"{PROG}: {args.file}: TAMPERED: the hash chain breaks at line {found.first_bad}"
            f" ({count} bad line{'s' if count > 1 else ''})",
            file=err,
        )
    else:
        print(f"{PROG}: {args.file}: keyed (hmac-sha256) records not checked: pass --key-file", file=err)
    return EXIT_FAIL


def cmd_audit_head(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._audit import audit_head

    _existing(args.file)
    try:
        print(audit_head(args.file), file=out)
    except OSError as exc:
        raise CliError(f"{args.file}: cannot read: {exc.strerror or exc}") from None
    return EXIT_OK


def _audit_line(record: dict[str, Any]) -> str:
    ts = str(record.get("ts", "?"))[:19].replace("T", " ")
    version = record.get("version")
    head = f"{ts}  {record.get('config', '?')} v{version}  {str(record.get('outcome', '?')).upper()}"
    head += f"  trigger={record.get('trigger')}"
    if record.get("actor"):
        head += f" actor={record['actor']}"
    lines = [head]
    for c in record.get("changes") or []:
        if not isinstance(c, dict):
            continue
        action = "restart pending" if c.get("action") == "reject" else c.get("action", "")
        lines.append(
            f"    {c.get('path')}: {json.dumps(c.get('old'), default=str)} -> "
            f"{json.dumps(c.get('new'), default=str)}  ({action})"
        )
    lines.extend(f"    ! {e}" for e in record.get("errors") or [])
    return "\n".join(lines)


def cmd_audit_show(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import collections

    from ._audit import AuditLine, scan_audit

    _existing(args.file)
    key = _audit_key(args)
    try:
        lines: Iterable[AuditLine] = scan_audit(args.file, key=key)  # streamed
        if args.last is not None:  # only the last N lines held in memory
            lines = collections.deque(lines, maxlen=max(args.last, 0))
        for line in lines:
            if line.kind in ("torn", "tampered"):
                mark = f"-- line {line.number}: {line.kind.upper()}: {line.reason}"
                print(mark, file=err if args.json else out)
            if line.record is not None:
                print(json.dumps(line.record, default=str) if args.json else _audit_line(line.record), file=out)
    except OSError as exc:
        raise CliError(f"{args.file}: cannot read: {exc.strerror or exc}") from None
    return EXIT_OK


def cmd_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .demo._app import run

    return run(config=pathlib.Path(args.config), host=args.host, port=args.port)


def cmd_fleet_status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._fleet import fleet_status

    try:
        status = fleet_status(args.etcd, args.key, status_prefix=args.status_prefix, timeout=args.timeout)
    except (ConnectionError, TimeoutError, OSError) as exc:
        raise CliError(f"fleet status: {_unreachable(args.etcd, exc)}") from None
    print(json.dumps(status.to_json(), indent=2, default=str) if args.json else status.render(), file=out)
    return EXIT_OK


def cmd_push(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._fleet import push

    schema = load_schema(args.schema)
    _existing(args.file)
    for p in args.policies:
        _existing(p)
    try:
        result = push(args.etcd, args.key, schema, args.file, policies=args.policies or None, timeout=args.timeout)
    except (ConnectionError, TimeoutError, OSError) as exc:
        raise CliError(f"push: {_unreachable(args.etcd, exc)}") from None
    except PolicyError as exc:
        raise CliError(str(exc)) from None
    stream = out if result.exit_code == 0 else err
    if result.plan:
        print(result.plan, file=stream)
    print(result.message, file=stream)
    return int(result.exit_code)


def _unreachable(url: str, exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    reason = lines[0] if lines else type(exc).__name__
    return reason if "etcd" in reason else f"cannot reach etcd at {url}: {reason}"


# --- the parser -----------------------------------------------------------------------------


def _add_schema(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--schema",
        required=True,
        type=_schema_spec,
        metavar="MODULE:CLASS",
        help="the config class, e.g. app.settings:App",
    )


def _add_policies(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--policies", action="append", default=[], metavar="FILE", help="a policy file (repeatable; later ones tighten)"
    )


def _add_env(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env-prefix", metavar="PREFIX", help="also read environment variables, e.g. APP_")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Check, plan and explain selreload configuration; verify audit logs; run the demo.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check", help="validate config files (exit 0 valid, 1 invalid)")
    p.add_argument("files", nargs="+", metavar="FILE", help="layers, lowest precedence first")
    _add_schema(p)
    _add_env(p)
    _add_policies(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("plan", help="what going from one file to another would do (exit 0, 2 restart-only, 1 invalid)")
    p.add_argument("--from", dest="from_", required=True, metavar="FILE", help="the config that is live")
    p.add_argument("--to", required=True, metavar="FILE", help="the config you would deploy")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    _add_schema(p)
    _add_env(p)
    _add_policies(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("explain", help="value, origin and policy of every leaf (or those under PATH)")
    p.add_argument(
        "files", nargs="+", metavar="FILE [PATH]", help="layers, lowest first; then optionally a dotted path"
    )
    _add_schema(p)
    _add_env(p)
    _add_policies(p)
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("policies", help="the table of leaves: type, policy, secret")
    _add_schema(p)
    _add_policies(p)
    p.set_defaults(func=cmd_policies)

    audit = sub.add_parser("audit", help="verify, show or anchor an audit log").add_subparsers(
        dest="audit_command", required=True, metavar="verify|show|head"
    )
    key_help = "the HMAC key of a keyed chain (default: $SELRELOAD_AUDIT_KEY_FILE)"
    p = audit.add_parser("verify", help="check the hash chain (exit 0 intact, torn lines named; 1 tampered)")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--key-file", metavar="F", help=key_help)
    p.set_defaults(func=cmd_audit_verify)
    p = audit.add_parser("show", help="print the records, marking torn and tampered lines")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--last", type=int, metavar="N", help="only the last N lines")
    p.add_argument("--json", action="store_true", help="one JSON record per line (marks on stderr)")
    p.add_argument("--key-file", metavar="F", help=key_help)
    p.set_defaults(func=cmd_audit_show)
    p = audit.add_parser("head", help="print the hash of the last intact record (to anchor the chain elsewhere)")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_audit_head)

    p = sub.add_parser("demo", help="run the demo web service")
    p.add_argument("--config", default="selreload-demo/config.yaml", metavar="PATH", help="created when missing")
    p.add_argument("--host", help="default: server.host of the config (127.0.0.1 in a new one)")
    p.add_argument("--port", type=int, help="default: server.port of the config (8000 in a new one)")
    p.set_defaults(func=cmd_demo)

    fleet = sub.add_parser("fleet", help="the instances sharing a config in etcd").add_subparsers(
        dest="fleet_command", required=True, metavar="status"
    )
    p = fleet.add_parser("status", help="one row per instance: version, revision, outcome")
    p.add_argument("--etcd", required=True, metavar="URL", help="e.g. http://127.0.0.1:2379")
    p.add_argument("--key", required=True)
    p.add_argument("--status-prefix", metavar="PREFIX", help="where instances report (default: KEY.status)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS")
    p.set_defaults(func=cmd_fleet_status)

    p = sub.add_parser("push", help="validate FILE and write it to etcd (refused when invalid)")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--etcd", required=True, metavar="URL")
    p.add_argument("--key", required=True)
    p.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS")
    _add_schema(p)
    _add_policies(p)
    p.set_defaults(func=cmd_push)
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the command line; returns the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    args = build_parser().parse_args(argv)
    # The CLI reports results itself; the library's one-line reload logs would repeat them.
    logging.getLogger("selreload").addHandler(logging.NullHandler())
    try:
        code: int = args.func(args, out, err)
    except CliError as exc:
        print(f"{PROG}: error: {exc}", file=err)
        return EXIT_FAIL
    except KeyboardInterrupt:
        return 130
    return code
