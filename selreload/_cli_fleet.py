"""The fleet commands on etcd: `fleet status`, `push` (with `--canary`), `rollout status|abort|resume`,
`rollback --etcd`, and the fleet side of `set`, `unset` and `status` (`--etcd`)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from ._cli_common import (
    EXIT_FAIL,
    EXIT_OK,
    CliError,
    actor,
    etcd_spec,
    existing,
    load_schema,
    refused,
    report_answer,
)
from ._errors import PolicyError
from ._values import one_line, version_number

if TYPE_CHECKING:
    from ._etcd_access import Access


def add_etcd(p: argparse.ArgumentParser, *, required: bool = True, timeout: bool = True) -> None:
    """--etcd, --key and how to reach etcd (TLS, user), each defaulting as etcdctl's."""
    p.add_argument(
        "--etcd", required=required, type=etcd_spec, metavar="URL", help="e.g. https://10.0.0.1:2379 (comma-separated)"
    )
    p.add_argument("--key", required=required, help="the key holding the document")
    g = p.add_argument_group("TLS and authentication (default: $ETCDCTL_CACERT, _CERT, _KEY, _USER, _PASSWORD)")
    g.add_argument("--cacert", metavar="FILE", help="CA bundle to verify etcd with")
    g.add_argument("--cert", metavar="FILE", help="client certificate")
    g.add_argument("--cert-key", metavar="FILE", help="the client certificate's key")
    g.add_argument("--server-name", metavar="NAME", help="the name in etcd's certificate, if not the host's")
    g.add_argument("--user", metavar="USER[:PASSWORD]", help="etcd user (password: after ':' or $ETCDCTL_PASSWORD)")
    if timeout:
        p.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS", help="for one etcd request")


def etcd_access(args: argparse.Namespace) -> Access:
    """Raises CliError: a bad endpoint, an unreadable TLS file, a missing extra (one line)."""
    try:
        from ._etcd_access import access
        from ._etcd_client import require

        require()
        return access(
            args.etcd,
            ca_cert=args.cacert,
            client_cert=args.cert,
            client_key=args.cert_key,
            server_name=args.server_name,
            user=args.user,
        )
    except (ValueError, ImportError) as exc:
        raise CliError(str(exc)) from None


def _unreachable(where: Access, exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    reason = lines[0] if lines else type(exc).__name__
    return reason if "etcd" in reason else f"cannot reach etcd at {where}: {reason}"


def cmd_fleet_status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._fleet import fleet_status

    where = etcd_access(args)
    try:
        status = fleet_status(where, args.key, status_prefix=args.status_prefix, timeout=args.timeout)
    except (ConnectionError, TimeoutError, OSError) as exc:
        raise CliError(f"fleet status: {_unreachable(where, exc)}") from None
    print(json.dumps(status.to_json(), indent=2, default=str) if args.json else status.render(), file=out)
    return EXIT_OK


def cmd_push(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._fleet import push

    schema = load_schema(args.schema)
    existing(args.file)
    for p in args.policies:
        existing(p)
    where = etcd_access(args)
    if args.canary is not None:
        return _rollout_push(args, where, schema, out, err)
    try:
        result = push(where, args.key, schema, args.file, policies=args.policies or None, timeout=args.timeout)
    except (ConnectionError, TimeoutError, OSError) as exc:
        raise CliError(f"push: {_unreachable(where, exc)}") from None
    except PolicyError as exc:
        raise CliError(str(exc)) from None
    stream = out if result.exit_code == 0 else err
    if result.plan:
        print(result.plan, file=stream)
    print(result.message, file=stream)
    return int(result.exit_code)


def _rollout_push(args: argparse.Namespace, where: Access, schema: type, out: TextIO, err: TextIO) -> int:
    from ._fleet import plan_push
    from ._rollout import Rollout
    from ._rollout_record import parse_duration, parse_stages

    try:
        stages = parse_stages(args.canary)
        bake = parse_duration(args.bake)
        stage_timeout = parse_duration(args.stage_timeout)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    try:
        planned = plan_push(where, args.key, schema, args.file, policies=args.policies or None, timeout=args.timeout)
        if planned.errors is not None:
            print(planned.plan, file=err)
            print(f"{args.file}: invalid, nothing written", file=err)
            return 1
        print(planned.plan, file=out)
        rollout = Rollout(where, args.key, timeout=args.timeout, status_prefix=args.status_prefix, say=_say(out))
        result = rollout.start(planned, stages=stages, bake=bake, stage_timeout=stage_timeout, actor=actor(args))
    except (ConnectionError, TimeoutError, OSError) as exc:
        raise CliError(f"push: {_unreachable(where, exc)}") from None
    except PolicyError as exc:
        raise CliError(str(exc)) from None
    print(result.message, file=out if result.exit_code == 0 else err)
    return result.exit_code


def _say(out: TextIO) -> Callable[[str], None]:
    def say(line: str) -> None:
        print(one_line(line), file=out, flush=True)  # it names instances and their errors

    return say


def cmd_rollout(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._rollout import Rollout

    where = etcd_access(args)
    rollout = Rollout(where, args.key, timeout=args.timeout, status_prefix=args.status_prefix, say=_say(out))
    try:
        if args.rollout_command == "status":
            status = rollout.status()
            print(json.dumps(status.to_json(), indent=2, default=str) if args.json else status.render(), file=out)
            return EXIT_OK
        result = rollout.abort() if args.rollout_command == "abort" else rollout.resume(actor=actor(args))
    except (ConnectionError, TimeoutError, OSError) as exc:
        raise CliError(f"rollout {args.rollout_command}: {_unreachable(where, exc)}") from None
    print(result.message, file=out if result.exit_code == 0 else err)
    return result.exit_code


def add_fleet_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`fleet status`, `push`, `rollout status|abort|resume`."""
    fleet = sub.add_parser("fleet", help="the instances sharing a config in etcd").add_subparsers(
        dest="fleet_command", required=True, metavar="status"
    )
    p = fleet.add_parser("status", help="one row per instance: version, revision, outcome; the rollout")
    add_etcd(p)
    p.add_argument("--status-prefix", metavar="PREFIX", help="where instances report (default: KEY.status)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_fleet_status)

    rollout = sub.add_parser("rollout", help="the progressive rollout in progress on a key").add_subparsers(
        dest="rollout_command", required=True, metavar="status|abort|resume"
    )
    for name, text in (
        ("status", "the rollout record, its stage and each instance's revision"),
        ("abort", "revert the canaries to the document at KEY and end the rollout"),
        ("resume", "drive a rollout whose push died: the current stage again, then on"),
    ):
        p = rollout.add_parser(name, help=text)
        add_etcd(p)
        p.add_argument("--status-prefix", metavar="PREFIX", help="where instances report (default: KEY.status)")
        if name == "status":
            p.add_argument("--json", action="store_true")
        else:
            p.add_argument("--actor", help="who does it (default: $SELRELOAD_ACTOR or the login name)")
        p.set_defaults(func=cmd_rollout)


# --- fleet overrides and commands (`set|unset|status|rollback --etcd`) -----------------------


def _control(args: argparse.Namespace) -> tuple[Access, Any]:
    from ._fleet_overrides import FleetControl

    if not args.key:
        raise CliError("--etcd needs --key KEY (the key holding the fleet's document)")
    where = etcd_access(args)
    return where, FleetControl(where, args.key, timeout=min(args.timeout, 5.0), status_prefix=args.status_prefix)


def fleet_overrides(
    args: argparse.Namespace,
    out: TextIO,
    err: TextIO,
    *,
    values: dict[str, object],
    unset: tuple[str, ...],
    ttl: float | None,
) -> int:
    """`selreload set|unset ... --etcd URL --key KEY`: exit 0 every instance applied it, 1
    refused (nothing stays written), 3 not every instance answered in time."""
    where, control = _control(args)
    try:
        if args.schema:
            from ._cli_common import compile_schema

            if refused(control.check(compile_schema(load_schema(args.schema), args.policies), values, unset), err):
                return EXIT_FAIL
        answer = control.set_overrides(values, unset=unset, actor=actor(args), ttl=ttl, timeout=args.timeout)
    except (ConnectionError, TimeoutError, OSError) as exc:
        raise CliError(f"{args.command}: {_unreachable(where, exc)}") from None
    return _answered(args, answer, out, err, taken_back=bool(values))


def _answered(args: argparse.Namespace, answer: Any, out: TextIO, err: TextIO, *, taken_back: bool) -> int:
    reasons = [(row.instance, why) for row, why in answer.refused]
    return report_answer(args, answer, reasons, out, err, taken_back=taken_back)


def fleet_overrides_status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """`selreload status --etcd URL --key KEY`: the overrides in force (no values) and the fleet."""
    import time

    from ._fleet_overrides import brief, overrides_key
    from ._statedir import active_entries, parse_ts
    from ._text import table

    where, control = _control(args)
    try:
        record, _ = control.read(overrides_key(args.key))
        fleet = control.fleet()
    except (ConnectionError, TimeoutError, OSError) as exc:
        raise CliError(f"status: {_unreachable(where, exc)}") from None
    now = time.time()
    entries = [brief(e) for e in active_entries(record["entries"], now)]
    on_it = sum(1 for r in fleet.rows if r.overrides_seq >= record["seq"])
    if args.json:
        doc = {"overrides_seq": record["seq"], "overrides": entries, "on_overrides": on_it, **fleet.to_json()}
        print(json.dumps(doc, indent=2, default=str), file=out)
        return EXIT_OK
    if entries:
        rows = [("OVERRIDE", "BY", "SINCE", "UNTIL")]
        for e in entries:
            until = parse_ts(e.get("expires"))
            left = f"{e['expires']} (in {until - now:.0f}s)" if until is not None else "until unset"
            rows.append((str(e["path"]), str(e.get("actor") or "?"), str(e.get("ts") or "?"), left))
        print(table(rows), file=out)
    else:
        print(f"no fleet override in force on {args.key}", file=out)
    print(f"{on_it} of {len(fleet.rows)} instances read overrides #{record['seq']}", file=out)
    print(fleet.render(), file=out)
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """`selreload rollback VERSION|DIGEST --etcd URL --key KEY`: every instance returns to
    that config (exit 0), or says why not (1), or did not answer in time (3)."""
    from ._fleet_overrides import resolve_target

    where, control = _control(args)
    try:
        try:
            rows = control.fleet().rows if version_number(args.target) is not None else ()  # a digest needs none
            digest = resolve_target(rows, args.target, instance=args.instance)
        except ValueError as exc:
            raise CliError(f"rollback: {exc}") from None
        answer = control.rollback(digest, actor=actor(args), timeout=args.timeout)
    except (ConnectionError, TimeoutError, OSError) as exc:
        raise CliError(f"rollback: {_unreachable(where, exc)}") from None
    if not args.json:
        print(f"rollback to digest {digest[:16]} sent to every instance of {args.key}", file=out)
    return _answered(args, answer, out, err, taken_back=False)


def add_rollback_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "rollback", help="every instance of a fleet back to a config it ran (exit 0 all, 1 refused, 3 not all answered)"
    )
    p.add_argument("target", metavar="VERSION|DIGEST", help="a digest (8+ hex digits), or a version (see --instance)")
    add_etcd(p, timeout=False)
    p.add_argument("--instance", metavar="NAME", help="whose history a VERSION is read in (default: all that agree)")
    p.add_argument("--status-prefix", metavar="PREFIX", help="where instances report (default: KEY.status)")
    p.add_argument("--actor", help="who asks (default: $SELRELOAD_ACTOR or the login name)")
    p.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="wait for the instances")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_rollback)
