"""The operations commands: `audit verify|show|head`, `demo`, `status`, `set`, `unset`."""

from __future__ import annotations

import argparse
import collections
import json
import os
import pathlib
from collections.abc import Iterable
from typing import TextIO

from ._cli_common import EXIT_FAIL, EXIT_OK, PROG, CliError, actor, existing, load_schema, refused, report_answer
from ._package import missing
from ._present import audit_text


def _audit_key(args: argparse.Namespace) -> bytes | None:
    from ._audit_chain import load_key

    key_file = args.key_file or os.environ.get("SELRELOAD_AUDIT_KEY_FILE") or None
    try:
        return load_key(key_file=key_file)
    except OSError as exc:
        raise CliError(f"{key_file}: cannot read the key file: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CliError(str(exc)) from None


def cmd_audit_verify(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._audit_read import verify_audit

    existing(args.file)
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
    from ._audit_read import audit_head

    existing(args.file)
    try:
        print(audit_head(args.file), file=out)
    except OSError as exc:
        raise CliError(f"{args.file}: cannot read: {exc.strerror or exc}") from None
    return EXIT_OK


def cmd_audit_show(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._audit_read import AuditLine, scan_audit

    existing(args.file)
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
                print(json.dumps(line.record, default=str) if args.json else audit_text(line.record), file=out)
    except OSError as exc:
        raise CliError(f"{args.file}: cannot read: {exc.strerror or exc}") from None
    return EXIT_OK


def cmd_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        from .demo._app import run
    except ModuleNotFoundError as exc:  # starlette, the SDK: what `selreload[demo]` brings
        raise missing(exc, feature="selreload demo", extra="demo") from None

    return run(config=pathlib.Path(args.config), host=args.host, port=args.port, allow_remote=args.allow_remote)


def _where(args: argparse.Namespace) -> str:
    """`state-dir` or `etcd`: which a command works on (exactly one must be given)."""
    if args.state_dir and args.etcd:
        raise CliError(f"{args.command}: give --state-dir DIR (one host) or --etcd URL --key KEY (a fleet), not both")
    if not args.state_dir and not args.etcd:
        raise CliError(f"{args.command}: give --state-dir DIR (one host) or --etcd URL --key KEY (a fleet)")
    return "etcd" if args.etcd else "state-dir"


def cmd_status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._statedir import StateDir

    if _where(args) == "etcd":
        from ._cli_fleet import fleet_overrides_status

        return fleet_overrides_status(args, out, err)

    status = StateDir(args.state_dir).workers(prune=args.prune)
    print(json.dumps(status.to_json(), indent=2, default=str) if args.json else status.render(), file=out)
    return EXIT_OK


def cmd_set(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._overrides_request import parse_assignments, parse_ttl

    try:
        values = parse_assignments(args.assignments)
        ttl = parse_ttl(args.for_)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return _overrides(args, out, err, values=values, unset=(), ttl=ttl)


def cmd_unset(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    return _overrides(args, out, err, values={}, unset=tuple(args.paths), ttl=None)


def _overrides(
    args: argparse.Namespace,
    out: TextIO,
    err: TextIO,
    *,
    values: dict[str, object],
    unset: tuple[str, ...],
    ttl: float | None,
) -> int:
    from ._statedir import StateDir
    from ._workers import check_override_path, set_overrides

    if _where(args) == "etcd":
        from ._cli_fleet import fleet_overrides

        return fleet_overrides(args, out, err, values=values, unset=unset, ttl=ttl)
    if args.schema:
        from ._cli_common import compile_schema

        schema = compile_schema(load_schema(args.schema), args.policies)
        if refused([f"{path}: {why}" for path in values if (why := check_override_path(schema, path))], err):
            return EXIT_FAIL
    state = StateDir(args.state_dir)
    if not state.path.is_dir():
        raise CliError(f"{args.state_dir}: no such control directory")
    answer = set_overrides(state, values, unset=unset, actor=actor(args), ttl=ttl, timeout=args.timeout)
    reasons = [
        (
            row.instance,
            "; ".join(str(e) for e in row.get("errors") or ())
            or "restart-only: " + ", ".join(sorted(set(values) & set(row.get("rejected") or ()))),
        )
        for row in answer.refused
    ]
    return report_answer(args, answer, reasons, out, err, taken_back=bool(values))
