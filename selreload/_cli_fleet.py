"""The fleet commands on etcd: `fleet status`, `push` (with `--canary`), `rollout status|abort|resume`."""

from __future__ import annotations

import argparse
import getpass
import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from ._cli_common import EXIT_OK, CliError, etcd_spec, existing, load_schema
from ._errors import PolicyError

if TYPE_CHECKING:
    from ._etcd_access import Access


def add_etcd(p: argparse.ArgumentParser) -> None:
    """--etcd, --key and how to reach etcd (TLS, user), each defaulting as etcdctl's."""
    p.add_argument(
        "--etcd", required=True, type=etcd_spec, metavar="URL", help="e.g. https://10.0.0.1:2379 (comma-separated)"
    )
    p.add_argument("--key", required=True, help="the key holding the document")
    g = p.add_argument_group("TLS and authentication (default: $ETCDCTL_CACERT, _CERT, _KEY, _USER, _PASSWORD)")
    g.add_argument("--cacert", metavar="FILE", help="CA bundle to verify etcd with")
    g.add_argument("--cert", metavar="FILE", help="client certificate")
    g.add_argument("--cert-key", metavar="FILE", help="the client certificate's key")
    g.add_argument("--server-name", metavar="NAME", help="the name in etcd's certificate, if not the host's")
    g.add_argument("--user", metavar="USER[:PASSWORD]", help="etcd user (password: after ':' or $ETCDCTL_PASSWORD)")
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


def _actor(args: argparse.Namespace) -> str:
    return getattr(args, "actor", None) or os.environ.get("SELRELOAD_ACTOR") or getpass.getuser()


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
        result = rollout.start(planned, stages=stages, bake=bake, stage_timeout=stage_timeout, actor=_actor(args))
    except (ConnectionError, TimeoutError, OSError) as exc:
        raise CliError(f"push: {_unreachable(where, exc)}") from None
    except PolicyError as exc:
        raise CliError(str(exc)) from None
    print(result.message, file=out if result.exit_code == 0 else err)
    return result.exit_code


def _say(out: TextIO) -> Callable[[str], None]:
    def say(line: str) -> None:
        print(line, file=out, flush=True)

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
        result = rollout.abort() if args.rollout_command == "abort" else rollout.resume(actor=_actor(args))
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
