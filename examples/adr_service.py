"""A web service whose hot fields come from a policy file, the shipped web-service.yaml.

Each hot field changes live through its applier: `logging.level` (LogLevel),
`api.v2_enabled` (FeatureFlags), `telemetry.sampler.type` + `ratio` (Sampler, fed to a
real OpenTelemetry TracerProvider), `auth.jwt.ttl` (JwtTtl). Each restart-only field is
rejected, audited and reported as restart pending; the secrets are never printed.

The schema ships with the package as `selreload.demo.AdrConfig` and is re-exported here,
so both `selreload.demo:AdrConfig` and `examples.adr_service:AdrConfig` name it.

    python examples/adr_service.py [DIR]      # DIR defaults to a temporary directory
"""

from __future__ import annotations

import importlib.resources
import logging
import pathlib
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

import selreload as sr
from selreload import appliers
from selreload.demo import ADR_POLICY, AdrConfig

__all__ = ["AdrConfig", "Service", "build", "main", "run"]

# The policy file shipped inside the package (`selreload policies --list`); ADR_POLICY
# states the same globs in code.
_FILE = pathlib.Path(str(importlib.resources.files("selreload") / "policies" / "web-service.yaml"))
POLICY: sr.PolicySet | pathlib.Path = _FILE if _FILE.exists() else ADR_POLICY

LOGGER = "adr_service"

INITIAL = """\
server: {host: 127.0.0.1, port: 8080}
database: {url: "postgresql://db.internal/app", pool_size: 10}
logging: {level: info}
api: {v2_enabled: false}
telemetry: {sampler: {type: parentbased_always_on, ratio: 1.0}}
auth:
  jwt: {ttl: 24h}
  jwt_secret: first-signing-key
  admin_master_password: first-admin-password
"""

# (path, the edit) applied one after another, each on top of the previous text.
HOT_EDITS = [
    ("logging.level", ("logging: {level: info}", "logging: {level: debug}")),
    ("api.v2_enabled", ("api: {v2_enabled: false}", "api: {v2_enabled: true}")),
    ("telemetry.sampler.type", ("type: parentbased_always_on, ratio: 1.0", "type: traceidratio, ratio: 1.0")),
    ("telemetry.sampler.ratio", ("type: traceidratio, ratio: 1.0", "type: traceidratio, ratio: 0.0")),
    ("auth.jwt.ttl", ("ttl: 24h", "ttl: 15m")),
]
RESTART_EDITS = [
    ("server.host", ("host: 127.0.0.1", "host: 0.0.0.0")),
    ("server.port", ("port: 8080", "port: 9090")),
    ("database.url", ("db.internal/app", "db-replica.internal/app")),
    ("database.pool_size", ("pool_size: 10", "pool_size: 50")),
    ("auth.jwt_secret", ("first-signing-key", "second-signing-key")),
    ("auth.admin_master_password", ("first-admin-password", "second-admin-password")),
]


@attrs.define
class Service:
    """The service's live side effects, each driven by one applier."""

    reloader: sr.Reloader[AdrConfig]
    log_level: appliers.LogLevel
    flags: appliers.FeatureFlags
    sampler: appliers.Sampler
    jwt_ttl: appliers.JwtTtl
    tracer_provider: TracerProvider
    exporter: InMemorySpanExporter

    def sampled(self, n: int = 20) -> int:
        """How many of `n` new root spans the current sampler keeps."""
        self.exporter.clear()
        tracer = self.tracer_provider.get_tracer(LOGGER)
        for i in range(n):
            with tracer.start_as_current_span(f"GET /items/{i}"):
                pass
        return len(self.exporter.get_finished_spans())

    def state(self) -> dict[str, Any]:
        """What each applier holds now, as the running service sees it."""
        return {
            "logging.level": logging.getLevelName(logging.getLogger(LOGGER).level).lower(),
            "api.v2_enabled": self.flags.enabled("api.v2_enabled"),
            "telemetry.sampler": self.sampler.get_description().split("{")[0],
            "sampled_of_20": self.sampled(),
            "auth.jwt.ttl": str(self.jwt_ttl.ttl),
        }


def build(path: pathlib.Path, *, registry: CollectorRegistry | None = None, schema: type[Any] = AdrConfig) -> Service:
    """A Reloader over `path` with the web-service policy and the four built-in appliers
    (`schema`: `AdrConfig`, or its pydantic twin `examples.pydantic_models.AdrConfig`)."""
    reloader = sr.Reloader(
        schema,
        [sr.YamlFile(path, watch=False)],  # the example reloads explicitly
        policies=POLICY,
        registry=registry if registry is not None else CollectorRegistry(),
        name="adr",
    )
    sampler = appliers.Sampler()
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    service = Service(
        reloader,
        reloader.on("logging.level", appliers.LogLevel(LOGGER)),
        reloader.on("api.v2_enabled", appliers.FeatureFlags()),
        reloader.on("telemetry.sampler", sampler),
        reloader.on("auth.jwt.ttl", appliers.JwtTtl()),
        provider,
        exporter,
    )
    return service


@attrs.define
class Observed:
    service: Service
    hot: dict[str, sr.ReloadResult] = attrs.field(factory=dict)
    states: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    restart: dict[str, sr.ReloadResult] = attrs.field(factory=dict)
    pending: dict[str, list[str]] = attrs.field(factory=dict)


def run(directory: pathlib.Path, *, say: Callable[[str], None] = print, schema: type[Any] = AdrConfig) -> Observed:
    """Change every hot field live, then try every restart-only one."""
    path = directory / "config.yaml"
    text = INITIAL
    path.write_text(text, encoding="utf-8")
    service = build(path, schema=schema)
    reloader = service.reloader
    seen = Observed(service)
    try:
        with reloader:
            seen.states["start"] = service.state()
            say(f"start: {seen.states['start']}")
            for leaf, (old, new) in HOT_EDITS:
                text = text.replace(old, new)
                path.write_text(text, encoding="utf-8")
                seen.hot[leaf] = result = reloader.reload(trigger="edit")
                seen.states[leaf] = service.state()
                say(f"{leaf}: {result.outcome.value} {list(result.applied)} -> {seen.states[leaf]}")
            for leaf, (old, new) in RESTART_EDITS:
                text = text.replace(old, new)
                path.write_text(text, encoding="utf-8")
                seen.restart[leaf] = result = reloader.reload(trigger="edit")
                seen.pending[leaf] = reloader.status()["restart_pending"]
                say(f"{leaf}: {result.outcome.value}, restart pending: {seen.pending[leaf]}")
            say(f"live config: {reloader.current}")
            say("plan against the file (what a restart would bring):")
            say(str(reloader.plan()))
    finally:
        service.tracer_provider.shutdown()
        logging.getLogger(LOGGER).setLevel(logging.NOTSET)
    return seen


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = list(sys.argv[1:] if argv is None else argv)
    if args:
        run(pathlib.Path(args[0]))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        run(pathlib.Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
