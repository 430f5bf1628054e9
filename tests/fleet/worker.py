"""One fleet instance as its own process: a Reloader on `sr.Etcd`, driven over stdin/stdout.

    python worker.py ENDPOINT KEY INSTANCE LEASE_TTL

Prints `ready` once started (or `error: ...` and exits 2). Then, per line on stdin:
`current` prints the live config as JSON; `quit` (or end of input) stops and exits 0.
With `FLEET_AUDIT_DIR` set, each instance writes its audit log to `$FLEET_AUDIT_DIR/INSTANCE.jsonl`.
"""

from __future__ import annotations

import json
import os
import sys

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


def main(argv: list[str]) -> int:
    endpoint, key, instance, ttl = argv[1], argv[2], argv[3], int(argv[4])
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

    @reloader.on("limit")
    def check_capacity(changes: object, snapshot: object) -> None:
        # A limit of 10,000 or more passes validation (push accepts it) but fails to
        # apply on the instance: a NACK (rolled back).
        if snapshot.config.limit >= 10_000:  # type: ignore[attr-defined]
            raise RuntimeError("capacity exceeded")

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
