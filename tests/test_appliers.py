"""The built-in appliers: what they set, what they refuse, exact rollback, concurrent readers."""

from __future__ import annotations

import datetime
import logging
import pathlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider, sampling
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

import selreload as sr
from selreload import appliers

H24 = datetime.timedelta(hours=24)


@sr.config
class SamplerSection:
    type: str = "always_on"
    ratio: float = 1.0


@sr.config
class Telemetry:
    sampler: SamplerSection = sr.field(factory=SamplerSection)


@sr.config
class Svc:
    """No validators on purpose: the appliers' own checks are what is under test."""

    level: str = sr.hot(default="info")
    levels: dict[str, str] = sr.hot(factory=dict)
    feature_flags: dict[str, bool] = sr.hot(factory=dict)
    v2_enabled: bool = sr.hot(default=False)
    telemetry: Telemetry = sr.hot(factory=Telemetry)
    jwt_ttl: datetime.timedelta = sr.hot(default=H24)


class Service:
    """A real YAML file and a real Reloader over it."""

    def __init__(self, tmp_path: pathlib.Path, text: str) -> None:
        self.path = tmp_path / "config.yaml"
        self.path.write_text(text)
        self.reloader = sr.Reloader(Svc, [sr.YamlFile(self.path, watch=False)], registry=CollectorRegistry())

    def reload(self, text: str) -> sr.ReloadResult:
        self.path.write_text(text)
        return self.reloader.reload()


@pytest.fixture
def service(tmp_path: pathlib.Path) -> Callable[[str], Service]:
    return lambda text: Service(tmp_path, text)


@pytest.fixture
def logger_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh logger name per test, its level reset afterwards."""
    name = f"selreload-test.{request.node.name}"
    yield name
    logging.getLogger(name).setLevel(logging.NOTSET)


@pytest.fixture
def root_level() -> Iterator[None]:
    root = logging.getLogger()
    before = root.level
    yield
    root.setLevel(before)


def fail_on_reload(changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
    """A later applier that fails on any reload (not at start): a fault we cannot cause."""
    if any(c.old is not sr.UNSET for c in changes) and any(c.new is not c.old for c in changes):
        raise RuntimeError("downstream refused")


def snap(config: Any) -> sr.Snapshot[Any]:
    return sr.Snapshot(config, 1, "test", datetime.datetime.now(datetime.UTC))


# --- LogLevel ---------------------------------------------------------------------------


def test_log_level_sets_named_logger_by_name_any_case_or_int(
    service: Callable[[str], Service], logger_name: str
) -> None:
    """LogLevel(name) sets that logger from `DEBUG`, `warning` or an int, at start and on reload."""
    svc = service("level: DEBUG\n")
    svc.reloader.on("level", appliers.LogLevel(logger_name))
    svc.reloader.start()
    log = logging.getLogger(logger_name)
    assert log.level == logging.DEBUG
    assert svc.reload("level: warning\n").outcome is sr.Outcome.APPLIED
    assert log.level == logging.WARNING
    lvl = appliers.LogLevel(logger_name)
    lvl.apply([sr.Change("level", "warning", 35)], snap(Svc()))
    assert log.level == 35


def test_log_level_defaults_to_root(service: Callable[[str], Service], root_level: None) -> None:
    """LogLevel() with no logger name sets the root logger."""
    svc = service("level: error\n")
    svc.reloader.on("level", appliers.LogLevel())
    svc.reloader.start()
    assert logging.getLogger().level == logging.ERROR


@pytest.mark.parametrize("bad", ["verbose", "", True, -1, 2.5, None])
def test_log_level_refuses_bad_levels_and_changes_nothing(bad: Any, logger_name: str) -> None:
    """An unknown name, a bool, a negative or non-int number raises ValueError naming the path."""
    log = logging.getLogger(logger_name)
    log.setLevel(logging.INFO)
    with pytest.raises(ValueError, match=r"^level: "):
        appliers.LogLevel(logger_name).apply([sr.Change("level", "info", bad)], snap(Svc()))
    assert log.level == logging.INFO


def test_log_level_rollback_restores_level_captured_at_apply(logger_name: str) -> None:
    """Rollback gives back the level the logger had when apply ran (NOTSET too), not `change.old`."""
    log = logging.getLogger(logger_name)
    assert log.level == logging.NOTSET
    lvl = appliers.LogLevel(logger_name)
    changes = [sr.Change("level", "info", "debug")]
    lvl.apply(changes, snap(Svc()))
    assert log.level == logging.DEBUG
    lvl.rollback(changes, snap(Svc()))
    assert log.level == logging.NOTSET  # not INFO, which `old` claims


def test_log_level_mapping_sets_each_logger_and_restores_removed_ones(
    service: Callable[[str], Service], logger_name: str, root_level: None
) -> None:
    """At a mapping field each key is a logger (dotted names, `root`); a removed key restores the original level."""
    other = logger_name + ".db"
    logging.getLogger(other).setLevel(logging.CRITICAL)  # set by the app before selreload
    svc = service(f"levels:\n  root: warning\n  {logger_name}: debug\n")
    svc.reloader.on("levels", appliers.LogLevel())
    svc.reloader.start()
    assert logging.getLogger().level == logging.WARNING
    assert logging.getLogger(logger_name).level == logging.DEBUG
    assert svc.reload(f"levels:\n  root: warning\n  {logger_name}: info\n  {other}: error\n").ok
    assert logging.getLogger(logger_name).level == logging.INFO
    assert logging.getLogger(other).level == logging.ERROR
    assert svc.reload("levels:\n  root: warning\n").ok
    assert logging.getLogger(logger_name).level == logging.NOTSET
    assert logging.getLogger(other).level == logging.CRITICAL
    logging.getLogger(other).setLevel(logging.NOTSET)


def test_log_level_refuses_several_plain_fields(logger_name: str) -> None:
    """Registered over two plain level fields it cannot tell which logger is meant: ValueError."""
    changes = [sr.Change("level", "info", "debug"), sr.Change("jwt_ttl", H24, H24 * 2)]
    with pytest.raises(ValueError, match="got 2 level fields"):
        appliers.LogLevel(logger_name).apply(changes, snap(Svc()))


def test_log_level_repr_and_name() -> None:
    """The name says which logger; the repr shows it."""
    assert appliers.LogLevel().name == "LogLevel(root)"
    assert appliers.LogLevel("myapp").name == "LogLevel(myapp)"
    assert "myapp" in repr(appliers.LogLevel("myapp"))
    assert appliers.LogLevel(name="lv").name == "lv"


# --- FeatureFlags -----------------------------------------------------------------------


def test_feature_flags_applied_per_key(service: Callable[[str], Service]) -> None:
    """Flags follow the mapping key by key; unknown flags take the default; removed keys vanish."""
    svc = service("feature_flags: {new_checkout: true, dark_mode: false}\n")
    flags = svc.reloader.on("feature_flags", appliers.FeatureFlags())
    svc.reloader.start()
    assert flags.enabled("new_checkout") and not flags.enabled("dark_mode")
    assert not flags.enabled("nope") and flags.enabled("nope", default=True)
    result = svc.reload("feature_flags: {dark_mode: true}\n")
    assert [c.path for c in result.applied] == ["feature_flags.dark_mode", "feature_flags.new_checkout"]
    assert dict(flags.snapshot()) == {"dark_mode": True}


def test_feature_flags_snapshot_is_immutable_and_stable() -> None:
    """snapshot() cannot be modified and does not change under a later apply."""
    flags = appliers.FeatureFlags()
    flags.apply([sr.Change("feature_flags.a", sr.UNSET, True)], snap(Svc(feature_flags={"a": True})))
    before = flags.snapshot()
    with pytest.raises(TypeError):
        before["a"] = False  # type: ignore[index]
    flags.apply([sr.Change("feature_flags.a", True, False)], snap(Svc(feature_flags={"a": False})))
    assert dict(before) == {"a": True} and dict(flags.snapshot()) == {"a": False}


def test_feature_flags_plain_bool_field_named_by_path(service: Callable[[str], Service]) -> None:
    """On a plain bool field the flag's name is the field's path."""
    svc = service("v2_enabled: true\n")
    flags = svc.reloader.on("v2_enabled", appliers.FeatureFlags())
    svc.reloader.start()
    assert flags.enabled("v2_enabled")
    svc.reload("v2_enabled: false\n")
    assert flags.enabled("v2_enabled", default=True) is False


def test_feature_flags_refuse_non_bool_and_change_nothing() -> None:
    """A value that is not true/false raises ValueError; not even the valid keys of that call apply."""
    flags = appliers.FeatureFlags()
    config = Svc(feature_flags={"a": True})
    with pytest.raises(ValueError, match=r"feature_flags\.b: a feature flag is true or false"):
        flags.apply(
            [sr.Change("feature_flags.a", sr.UNSET, True), sr.Change("feature_flags.b", sr.UNSET, "yes")], snap(config)
        )
    assert dict(flags.snapshot()) == {}
    assert "FeatureFlags" in repr(flags) and flags.name == "FeatureFlags"


# --- Sampler ----------------------------------------------------------------------------


def traced(sampler: appliers.Sampler) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def sampled(provider: TracerProvider, exporter: InMemorySpanExporter, n: int = 50) -> int:
    exporter.clear()
    tracer = provider.get_tracer("test")
    for i in range(n):
        with tracer.start_as_current_span(f"request-{i}"):
            pass
    return len(exporter.get_finished_spans())


def test_sampler_reload_changes_sampling_of_new_spans(service: Callable[[str], Service]) -> None:
    """With a real TracerProvider: after a reload to traceidratio 0 no new span is sampled; after always_on all are."""
    sampler = appliers.Sampler()
    provider, exporter = traced(sampler)
    svc = service("telemetry: {sampler: {type: always_on, ratio: 1.0}}\n")
    svc.reloader.on("telemetry.sampler", sampler)
    svc.reloader.start()
    assert sampled(provider, exporter) == 50
    assert svc.reload("telemetry: {sampler: {type: traceidratio, ratio: 0.0}}\n").outcome is sr.Outcome.APPLIED
    assert sampled(provider, exporter) == 0
    assert sampler.get_description() == "TraceIdRatioBased{0.0}"
    assert svc.reload("telemetry: {sampler: {type: always_on, ratio: 0.0}}\n").outcome is sr.Outcome.APPLIED
    assert sampled(provider, exporter) == 50
    provider.shutdown()


def test_sampler_gets_type_and_ratio_together_and_reads_the_unchanged_one(service: Callable[[str], Service]) -> None:
    """One call carries both fields; when only the ratio changes the type comes from the new snapshot."""
    sampler = appliers.Sampler()
    calls: list[list[str]] = []
    svc = service("telemetry: {sampler: {type: parentbased_traceidratio, ratio: 1.0}}\n")
    svc.reloader.on("telemetry.sampler", sampler)
    svc.reloader.on("telemetry.sampler", lambda changes, _s: calls.append([c.path for c in changes]))
    svc.reloader.start()
    assert calls == [["telemetry.sampler.type", "telemetry.sampler.ratio"]]
    svc.reload("telemetry: {sampler: {type: parentbased_traceidratio, ratio: 0.25}}\n")
    assert calls[-1] == ["telemetry.sampler.ratio"]
    assert sampler.get_description().startswith("ParentBased{root:TraceIdRatioBased{0.25},")
    assert "parentbased_traceidratio" in repr(sampler) and sampler.name == "Sampler"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{type: sometimes, ratio: 0.5}", "unknown sampler type 'sometimes'"),
        ("{type: traceidratio, ratio: 1.5}", "must be between 0 and 1"),
        ("{type: traceidratio, ratio: -0.1}", "must be between 0 and 1"),
    ],
)
def test_sampler_refuses_bad_type_or_ratio_and_reload_rolls_back(
    service: Callable[[str], Service], text: str, message: str
) -> None:
    """An unknown type or a ratio outside [0, 1] raises in the applier: ROLLED_BACK, same inner sampler."""
    sampler = appliers.Sampler()
    svc = service("telemetry: {sampler: {type: traceidratio, ratio: 0.5}}\n")
    svc.reloader.on("telemetry.sampler", sampler)
    svc.reloader.start()
    inner = sampler.inner
    result = svc.reload(f"telemetry: {{sampler: {text}}}\n")
    assert result.outcome is sr.Outcome.ROLLED_BACK
    assert message in str(result.errors[0])
    assert sampler.inner is inner


def test_sampler_default_until_applied() -> None:
    """Before any apply it samples with its default (ParentBased(ALWAYS_ON) unless given)."""
    assert appliers.Sampler().get_description().startswith("ParentBased{root:AlwaysOnSampler")
    assert appliers.Sampler(sampling.ALWAYS_OFF).inner is sampling.ALWAYS_OFF


# --- JwtTtl -----------------------------------------------------------------------------


class Issuer:
    """A tiny token issuer that reads the TTL holder when it issues."""

    def __init__(self, ttl: appliers.JwtTtl) -> None:
        self.ttl = ttl

    def issue(self, now: datetime.datetime) -> dict[str, datetime.datetime]:
        return {"iat": now, "exp": now + self.ttl.ttl}


def test_jwt_ttl_affects_tokens_issued_afterwards_only(service: Callable[[str], Service]) -> None:
    """A TTL change leaves issued tokens' expiry alone and applies to the next token."""
    holder = appliers.JwtTtl()
    issuer = Issuer(holder)
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    svc = service("jwt_ttl: 1h\n")
    svc.reloader.on("jwt_ttl", holder)
    svc.reloader.start()
    before = issuer.issue(now)
    assert svc.reload("jwt_ttl: 15m\n").outcome is sr.Outcome.APPLIED
    after = issuer.issue(now)
    assert before["exp"] - now == datetime.timedelta(hours=1)
    assert after["exp"] - now == datetime.timedelta(minutes=15)
    assert repr(holder) == "<JwtTtl 'JwtTtl' ttl=15m>"


@pytest.mark.parametrize("bad", [datetime.timedelta(0), datetime.timedelta(seconds=-1), 900, "15m", sr.UNSET])
def test_jwt_ttl_refuses_non_positive_or_non_duration(bad: Any) -> None:
    """Only a positive timedelta is a token lifetime; anything else raises and keeps the TTL."""
    holder = appliers.JwtTtl()
    with pytest.raises(ValueError, match=r"^jwt_ttl: a token lifetime"):
        holder.apply([sr.Change("jwt_ttl", H24, bad)], snap(Svc()))
    assert holder.ttl == H24


def test_jwt_ttl_needs_exactly_one_field() -> None:
    """Registered over several fields it refuses rather than guess."""
    with pytest.raises(ValueError, match="expected one duration field"):
        appliers.JwtTtl().apply([sr.Change("a", 1, 2), sr.Change("b", 1, 2)], snap(Svc()))


# --- every applier: rollback after a later applier fails, concurrency --------------------

BASE = """\
level: info
levels: {"selreload-test.rb": warning}
feature_flags: {a: true, b: false}
telemetry: {sampler: {type: traceidratio, ratio: 0.5}}
jwt_ttl: 1h
"""
CHANGED = """\
level: debug
levels: {"selreload-test.rb": error, "selreload-test.rb2": debug}
feature_flags: {b: true, c: true}
telemetry: {sampler: {type: always_off, ratio: 0.0}}
jwt_ttl: 5m
"""


def state_of(name: str, applier: Any) -> Any:
    if name == "level":
        return logging.getLogger("selreload-test.rb-plain").level
    if name == "levels":
        return (logging.getLogger("selreload-test.rb").level, logging.getLogger("selreload-test.rb2").level)
    if name == "feature_flags":
        return applier.snapshot()  # compared by identity: the very same mapping object
    if name == "telemetry.sampler":
        return applier.inner
    return applier.ttl


@pytest.mark.parametrize(
    ("path", "make"),
    [
        ("level", lambda: appliers.LogLevel("selreload-test.rb-plain")),
        ("levels", appliers.LogLevel),
        ("feature_flags", appliers.FeatureFlags),
        ("telemetry.sampler", appliers.Sampler),
        ("jwt_ttl", appliers.JwtTtl),
    ],
)
def test_rollback_after_a_later_applier_fails_restores_exact_state(
    service: Callable[[str], Service], path: str, make: Callable[[], Any]
) -> None:
    """Registered before an applier that raises, each built-in is rolled back to exactly its previous state."""
    loggers = ["selreload-test.rb-plain", "selreload-test.rb", "selreload-test.rb2"]
    try:
        svc = service(BASE)
        applier = svc.reloader.on(path, make())
        svc.reloader.on(path, fail_on_reload)
        svc.reloader.start()
        before = state_of(path, applier)
        result = svc.reload(CHANGED)
        assert result.outcome is sr.Outcome.ROLLED_BACK, result
        after = state_of(path, applier)
        assert after is before if path in ("feature_flags", "telemetry.sampler") else after == before
        assert svc.reloader.snapshot is not None and svc.reloader.snapshot.version == 1
    finally:
        for name in loggers:
            logging.getLogger(name).setLevel(logging.NOTSET)


def test_failed_start_rolls_back_log_level(tmp_path: pathlib.Path, logger_name: str) -> None:
    """An applier failing at start() undoes an earlier LogLevel: the logger keeps its pre-start level."""
    path = tmp_path / "config.yaml"
    path.write_text("level: debug\n")
    reloader = sr.Reloader(Svc, [sr.YamlFile(path, watch=False)], registry=CollectorRegistry())
    reloader.on("level", appliers.LogLevel(logger_name))

    @reloader.on("level")
    def refuse(changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        raise RuntimeError("no")

    with pytest.raises(sr.ApplyError):
        reloader.start()
    assert logging.getLogger(logger_name).level == logging.NOTSET


def test_readers_never_see_a_half_applied_reload(service: Callable[[str], Service], logger_name: str) -> None:
    """Reader threads read flags, sampler, TTL and level while reloads flip them: each read is one whole state."""
    flags, sampler, ttl = appliers.FeatureFlags(), appliers.Sampler(), appliers.JwtTtl()
    texts = [
        "level: debug\nfeature_flags: {x: true, y: true}\ntelemetry: {sampler: {type: always_on}}\njwt_ttl: 1h\n",
        "level: error\nfeature_flags: {x: false, y: false}\ntelemetry: {sampler: {type: always_off}}\njwt_ttl: 2h\n",
    ]
    svc = service(texts[0])
    svc.reloader.on("level", appliers.LogLevel(logger_name))
    svc.reloader.on("feature_flags", flags)
    svc.reloader.on("telemetry.sampler", sampler)
    svc.reloader.on("jwt_ttl", ttl)
    svc.reloader.start()
    provider, exporter = traced(sampler)
    tracer = provider.get_tracer("readers")
    stop = threading.Event()
    problems: list[str] = []
    reads = [0]

    def reader() -> None:
        log = logging.getLogger(logger_name)
        for _ in range(100_000):  # bounded; normally ended by `stop`
            if stop.is_set():
                break
            snapshot = flags.snapshot()
            if snapshot["x"] != snapshot["y"]:
                problems.append(f"torn flags {dict(snapshot)}")
            if ttl.ttl not in (datetime.timedelta(hours=1), datetime.timedelta(hours=2)):
                problems.append(f"ttl {ttl.ttl}")
            if log.getEffectiveLevel() not in (logging.DEBUG, logging.ERROR):
                problems.append(f"level {log.getEffectiveLevel()}")
            with tracer.start_as_current_span("r"):
                pass
            reads[0] += 1

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(30):
            assert svc.reload(texts[(i + 1) % 2]).outcome is sr.Outcome.APPLIED
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    provider.shutdown()
    assert not problems, problems[:5]
    assert reads[0] > 0
    assert 0 < len(exporter.get_finished_spans()) < reads[0]
