"""The `selreload` command line: check, plan, explain, policies, schema, audit, demo, fleet, push,
status, set, unset, completion.

Exit codes: 0 success; 1 invalid config, tampered (or unverifiable) audit file or any
runtime error; 2 a usage error (argparse), or for `plan`, restart-only changes present.
The operations commands (audit, demo, status, set) live in `_cli_ops`; fleet, push and rollout in `_cli_fleet`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import pathlib
import sys
from collections.abc import Sequence
from typing import TextIO

from . import _boundary
from ._change import Policy
from ._cli_common import (
    EXIT_FAIL,
    EXIT_OK,
    EXIT_RESTART,
    PROG,
    CliError,
    add_env,
    add_policies,
    add_schema,
    compile_schema,
    env_source,
    existing,
    file_source,
    layer_sources,
    load_schema,
)
from ._cli_complete import SHELLS, completion_script
from ._cli_fleet import add_etcd, add_fleet_commands, add_rollback_command, cmd_push
from ._cli_ops import (
    cmd_audit_head,
    cmd_audit_show,
    cmd_audit_verify,
    cmd_demo,
    cmd_set,
    cmd_status,
    cmd_unset,
)
from ._errors import ConfigError, PolicyError
from ._package import MissingExtraError, shipped_policies_table, version
from ._paths import hint
from ._plan import plan
from ._present import explain_table, plan_table, plan_to_json, policies_table
from ._result import Outcome, Plan
from ._schema import Schema
from ._structure import Structurer


def cmd_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    schema = compile_schema(load_schema(args.schema), args.policies)
    try:
        _boundary.build(Structurer(schema), layer_sources(args.files, args.env_prefix))
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=err)
        n = len(exc.issues)
        print(f"{PROG}: configuration check failed: {n} error{'s' if n != 1 else ''}", file=err)
        return EXIT_FAIL
    leaves = schema.leaves.values()
    hot = sum(1 for leaf in leaves if leaf.policy is Policy.HOT)
    # Success lines carry no `selreload:` prefix: that marks errors (like `nginx -t`'s "ok").
    print(f"{', '.join(args.files)}: syntax and types are ok", file=out)
    counts = f"{len(leaves)} leaves, {hot} hot, {len(leaves) - hot} restart-only"
    print(f"configuration OK ({schema.cls.__name__}: {counts})", file=out)
    return EXIT_OK


def cmd_plan(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    schema = compile_schema(load_schema(args.schema), args.policies)
    structurer = Structurer(schema)
    env = [env_source(args.env_prefix)] if args.env_prefix else []
    built = []
    for option, path in (("--from", args.from_), ("--to", args.to)):
        try:
            built.append(_boundary.build(structurer, [file_source(path), *env]))
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
    print(plan_table(plan, appliers=False), file=out)
    n_apply, n_reject = len(plan.applied), len(plan.rejected)
    summary = f"{n_apply} to apply live, {n_reject} rejected (restart required)"
    if plan.outcome is Outcome.REJECTED:
        summary += ": nothing would be applied"
    print(f"\n{summary}", file=out)
    return code


def cmd_explain(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._explain import explain

    schema = load_schema(args.schema)
    files = list(args.files)
    path = None
    # The last positional is a dotted path when it is not a file (`explain a.yaml logging`).
    if len(files) > 1 and not pathlib.Path(files[-1]).exists():
        path = files.pop()
    sources = layer_sources(files, args.env_prefix)
    for p in args.policies:
        existing(p)
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
        raise CliError(f"no config field at {path!r}" + hint(path, known))
    print(explain_table(rows), file=out)
    return EXIT_OK


def cmd_policies(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.list:
        print(shipped_policies_table(), file=out)
        return EXIT_OK
    if not args.schema:
        raise CliError("policies: --schema MODULE:CLASS is required (or --list for the shipped policy files)")
    print(policies_table(compile_schema(load_schema(args.schema), args.policies)), file=out)
    return EXIT_OK


def cmd_schema(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._jsonschema import json_schema

    schema = load_schema(args.schema)
    compile_schema(schema, args.policies)  # the files exist and can be honoured, or one line
    print(json.dumps(json_schema(schema, policies=args.policies, partial=args.partial), indent=2), file=out)
    return EXIT_OK


def cmd_completion(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    print(completion_script(build_parser(), args.shell), file=out, end="")
    return EXIT_OK


def _fleet_options(p: argparse.ArgumentParser, *, timeout: bool) -> None:
    """`--etcd URL --key KEY` (and TLS, user) instead of `--state-dir`: the whole fleet."""
    add_etcd(p, required=False, timeout=timeout)
    p.add_argument("--status-prefix", metavar="PREFIX", help="with --etcd: where instances report (KEY.status)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Check, plan and explain selreload configuration; verify audit logs; run the demo.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check", help="validate config files (exit 0 valid, 1 invalid)")
    p.add_argument("files", nargs="+", metavar="FILE", help="layers, lowest precedence first")
    add_schema(p)
    add_env(p)
    add_policies(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("plan", help="what going from one file to another would do (exit 0, 2 restart-only, 1 invalid)")
    p.add_argument("--from", dest="from_", required=True, metavar="FILE", help="the config that is live")
    p.add_argument("--to", required=True, metavar="FILE", help="the config you would deploy")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    add_schema(p)
    add_env(p)
    add_policies(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("explain", help="value, origin and policy of every leaf (or those under PATH)")
    p.add_argument(
        "files", nargs="+", metavar="FILE [PATH]", help="layers, lowest first; then optionally a dotted path"
    )
    add_schema(p)
    add_env(p)
    add_policies(p)
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("policies", help="the table of leaves: type, policy, secret (--list: the shipped files)")
    add_schema(p, required=False)
    add_policies(p)
    p.add_argument("--list", action="store_true", help="list the policy files shipped with selreload, with their paths")
    p.set_defaults(func=cmd_policies)

    p = sub.add_parser("schema", help="JSON Schema of the config files, for editors (x-selreload-policy per leaf)")
    add_schema(p)
    add_policies(p)
    p.add_argument("--partial", action="store_true", help="no key required (for overlay layers)")
    p.set_defaults(func=cmd_schema)

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
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="serve on a host beyond loopback (refused without it): the admin endpoints become reachable",
    )
    p.set_defaults(func=cmd_demo)

    add_fleet_commands(sub)

    p = sub.add_parser("push", help="validate FILE and write it to etcd (refused when invalid), or roll it out")
    p.add_argument("file", metavar="FILE")
    add_etcd(p)
    add_schema(p)
    add_policies(p)
    p.add_argument(
        "--canary", metavar="N|P%|STAGES", help="progressive rollout: canaries first, e.g. 1 or 10%% or 1,10%%,100%%"
    )
    p.add_argument(
        "--bake", default="30s", metavar="DURATION", help="canaries stay healthy this long per stage (default 30s)"
    )
    p.add_argument(
        "--stage-timeout", default="60s", metavar="DURATION", help="canaries ACK a stage within this (default 60s)"
    )
    p.add_argument("--status-prefix", metavar="PREFIX", help="where instances report (default: KEY.status)")
    p.add_argument("--actor", help="who pushes (default: $SELRELOAD_ACTOR or the login name)")
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("status", help="every worker sharing a control directory (or a fleet's overrides)")
    p.add_argument("--state-dir", metavar="DIR", help="the Reloaders' state_dir")
    p.add_argument("--json", action="store_true")
    p.add_argument("--prune", action="store_true", help="remove the reports of dead workers")
    _fleet_options(p, timeout=True)
    p.set_defaults(func=cmd_status)

    for name, what in (("set", "override PATH=VALUE in every worker"), ("unset", "remove overrides in every worker")):
        p = sub.add_parser(name, help=f"{what} (exit 0 all applied, 1 refused, 3 not all answered)")
        if name == "set":
            p.add_argument("assignments", nargs="+", metavar="PATH=VALUE", help="values read as YAML scalars")
            p.add_argument("--for", dest="for_", metavar="DURATION", help="revert by itself after it (15m, 2s)")
            p.set_defaults(func=cmd_set)
        else:
            p.add_argument("paths", nargs="+", metavar="PATH")
            p.set_defaults(func=cmd_unset)
        p.add_argument("--state-dir", metavar="DIR", help="the workers of one host (their state_dir)")
        p.add_argument("--actor", help="who asks (default: $SELRELOAD_ACTOR or the login name)")
        p.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS", help="wait for the workers")
        p.add_argument("--json", action="store_true")
        p.add_argument("--schema", metavar="MODULE:CLASS", help="refuse unknown and restart-only paths before writing")
        add_policies(p)
        _fleet_options(p, timeout=False)

    add_rollback_command(sub)

    p = sub.add_parser("completion", help='print a shell completion script: eval "$(selreload completion bash)"')
    p.add_argument("shell", choices=SHELLS)
    p.set_defaults(func=cmd_completion)
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the command line and return its exit code; usage errors and `--help` included
    (argparse writes them to `err` and `out`), so a test can call it in-process.

    Args:
        argv: the arguments after the program name (default: `sys.argv[1:]`).
        out, err: where results and diagnostics go (default: `sys.stdout`, `sys.stderr`).
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    try:
        # argparse prints to sys.stdout/sys.stderr itself and exits: send it where we write.
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_OK if exc.code is None else EXIT_FAIL
    # The CLI reports results itself; the library's one-line reload logs would repeat them.
    logging.getLogger("selreload").addHandler(logging.NullHandler())
    try:
        code: int = args.func(args, out, err)
    except (CliError, MissingExtraError) as exc:
        print(f"{PROG}: error: {exc}", file=err)
        return EXIT_FAIL
    except KeyboardInterrupt:
        return 130
    return code
