"""Fleet instances as a process: a Reloader on `sr.Etcd`, driven over stdin/stdout.

    python worker.py ENDPOINT KEY INSTANCE LEASE_TTL
    python worker.py ENDPOINT KEY INSTANCE LEASE_TTL --count N [--inline]

Prints `ready` once started (or `error: ...` and exits 2). Then, per line on stdin:
`current` prints the live config as JSON; `quit` (or end of input) stops and exits 0.

With `--count N` the process hosts N instances, `INSTANCE0` .. `INSTANCE{N-1}`, each a
full Reloader (its own schema structuring, applier, status key, lease and ACK) on the
process's one shared etcd client; they use the default health re-check, not the `sick`
flag; `--inline` gives them `applier_timeout=None` (appliers on the reloading thread).
`ready` then carries JSON: `{"start_s": seconds to start all N, "rss_base": RSS
in bytes before the first, "rss": after the last}`. More commands: `cpu` prints the
process's CPU seconds so far, `versions` prints `{instance: [version, digest]}`.

With `FLEET_AUDIT_DIR` set, each instance writes its audit log to `$FLEET_AUDIT_DIR/INSTANCE.jsonl`.
"""

from __future__ import annotations

import json
import os
import sys
import time

import attrs

import selreload as sr
from selreload._mask import masked_plain


@sr.config
class Server:
    port: int = 8080
    workers: int = 2


@sr.config
class App:
    server: Server = sr.restart_only(factory=Server)
    level: str = sr.hot(default="info", validator=attrs.validators.in_(["debug", "info", "warning", "error"]))
    limit: int = sr.hot(default=10)
    flags: dict[str, bool] = sr.hot(factory=dict)
    token: str = sr.secret(default="")


def rss_bytes() -> int:
    """This process's resident set size (Linux: `VmRSS` in /proc/self/status)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def capacity_check(changes: object, snapshot: object) -> None:
    # A limit of 10,000 or more passes validation (push accepts it) but fails to
    # apply on the instance: a NACK (rolled back).
    if snapshot.config.limit >= 10_000:  # type: ignore[attr-defined]
        raise RuntimeError("capacity exceeded")


def host(endpoint: str, key: str, prefix: str, ttl: int, count: int, *, inline: bool = False) -> int:
    """`count` instances in this process, each a full Reloader on the shared client."""
    rss_base = rss_bytes()
    t0 = time.perf_counter()
    reloaders: list[sr.Reloader[App]] = []
    try:
        for n in range(count):
            name = f"{prefix}{n}"
            source = sr.Etcd(endpoint, key, instance=name, lease_ttl=ttl)
            reloader = sr.Reloader(App, [source], name=name, **({"applier_timeout": None} if inline else {}))
            reloader.on("limit", capacity_check)
            reloader.start()
            reloaders.append(reloader)
    except sr.ConfigError as exc:
        print(f"error: {exc}", flush=True)
        return 2
    ready = {"start_s": time.perf_counter() - t0, "rss_base": rss_base, "rss": rss_bytes()}
    print(f"ready {json.dumps(ready)}", flush=True)
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "cpu":
                print(json.dumps(time.process_time()), flush=True)
            elif command == "versions":
                live = {r.name: [r.snapshot.version, r.snapshot.digest] for r in reloaders if r.snapshot}
                print(json.dumps(live), flush=True)
            elif command == "current":
                print(json.dumps(masked_plain(reloaders[0].current, schema=reloaders[0].schema)), flush=True)
            elif command == "quit":
                break
    finally:
        for reloader in reloaders:
            reloader.stop()
    return 0


def main(argv: list[str]) -> int:
    endpoint, key, instance, ttl = argv[1], argv[2], argv[3], int(argv[4])
    if len(argv) > 6 and argv[5] == "--count":
        return host(endpoint, key, instance, ttl, int(argv[6]), inline="--inline" in argv[7:])
    holder: list[sr.Reloader[App]] = []

    def health() -> tuple[bool, str]:
        # `flags.sick: true` in the document makes this instance report unhealthy.
        sick = bool(holder) and holder[0].current.flags.get("sick", False)
        return (not sick, "flags.sick is set")

    source = sr.Etcd(endpoint, key, instance=instance, lease_ttl=ttl, health=health, health_interval=0.2)
    audit_dir = os.environ.get("FLEET_AUDIT_DIR")  # each instance's audit log there, when set
    audit = sr.AuditLog(os.path.join(audit_dir, f"{instance}.jsonl")) if audit_dir else None
    reloader = sr.Reloader(App, [source], name=instance, audit=audit)
    holder.append(reloader)

    reloader.on("limit", capacity_check)

    try:
        reloader.start()
    except sr.ConfigError as exc:
        print(f"error: {exc}", flush=True)
        return 2
    print("ready", flush=True)
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "current":
                print(json.dumps(masked_plain(reloader.current, schema=reloader.schema)), flush=True)
            elif command == "quit":
                break
    finally:
        reloader.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
