"""`appliers.OpenFeatureProvider` through the real OpenFeature SDK: typed values, reasons and
provider events across reloads."""

from __future__ import annotations

import pathlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import write_atomic
from openfeature import api
from openfeature.event import EventDetails, ProviderEvent
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason
from openfeature.provider import ProviderStatus
from prometheus_client import CollectorRegistry

import selreload as sr
from selreload import appliers


@sr.config
class App:
    flags: dict[str, Any] = sr.hot(factory=dict)
    port: int = sr.restart_only(default=8080)


FLAGS = """\
flags:
  new_checkout: false
  banner: "hello"
  max_items: 10
  ratio: 0.25
  theme: {color: blue, sizes: [1, 2]}
"""


@pytest.fixture
def wired(tmp_path: pathlib.Path) -> Iterator[tuple[sr.Reloader[App], pathlib.Path, list[tuple[str, EventDetails]]]]:
    cfg = tmp_path / "c.yaml"
    write_atomic(cfg, FLAGS)
    provider = appliers.OpenFeatureProvider()
    reloader = sr.Reloader(
        App, sources=[sr.YamlFile(cfg, watch=False)], registry=CollectorRegistry(), recorders=[provider]
    )
    reloader.on("flags", provider)
    events: list[tuple[str, EventDetails]] = []
    lock = threading.Lock()

    def handler(kind: str) -> Any:
        def on(details: EventDetails) -> None:
            with lock:
                events.append((kind, details))

        return on

    api.set_provider_and_wait(provider, domain="selreload-test")
    client = api.get_client("selreload-test")
    for ev in (
        ProviderEvent.PROVIDER_CONFIGURATION_CHANGED,
        ProviderEvent.PROVIDER_STALE,
        ProviderEvent.PROVIDER_READY,
        ProviderEvent.PROVIDER_ERROR,
    ):
        client.add_handler(ev, handler(ev.name))
    try:
        with reloader:
            # READY (replayed to handlers added after it) and the start's own announcement.
            assert sorted(wait_for(events, 2)) == ["PROVIDER_CONFIGURATION_CHANGED", "PROVIDER_READY"]
            events.clear()
            yield reloader, cfg, events
    finally:
        api.clear_providers()


def wait_for(events: list[tuple[str, EventDetails]], n: int) -> list[str]:
    """The kinds of the events once `n` arrived (the SDK runs handlers on a thread pool, in
    no set order), after a moment for any extra one to show up."""
    deadline = time.monotonic() + 5
    while len(events) < n and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.05)
    return [k for k, _ in events]


def test_typed_values_and_reasons_through_the_sdk(wired: Any) -> None:
    """bool, string, int, float and object flags resolve STATIC with the config version;
    a missing key is FLAG_NOT_FOUND, a wrong type TYPE_MISMATCH, each with the default."""
    client = api.get_client("selreload-test")
    assert client.get_boolean_value("new_checkout", True) is False
    assert client.get_string_value("banner", "") == "hello"
    assert client.get_integer_value("max_items", 0) == 10
    assert client.get_float_value("ratio", 0.0) == 0.25
    assert client.get_float_value("max_items", 0.0) == 10.0  # an int serves a float
    theme = client.get_object_value("theme", {})
    assert theme == {"color": "blue", "sizes": [1, 2]}
    theme["color"] = "mutated"  # a caller's copy: the provider's flags are immutable
    assert client.get_object_value("theme", {})["color"] == "blue"
    details = client.get_boolean_details("new_checkout", True)
    assert details.reason == Reason.STATIC and details.flag_metadata == {"config_version": 1}
    missing = client.get_boolean_details("nope", True)
    assert missing.value is True and missing.error_code == ErrorCode.FLAG_NOT_FOUND and missing.reason == Reason.ERROR
    mismatch = client.get_integer_details("new_checkout", 7)
    assert mismatch.value == 7 and mismatch.error_code == ErrorCode.TYPE_MISMATCH


def test_a_reload_changes_values_and_emits_configuration_changed(wired: Any) -> None:
    """After a reload the SDK reads the new flags; handlers get CONFIGURATION_CHANGED
    naming exactly the flags that changed, added or removed."""
    reloader, cfg, events = wired
    client = api.get_client("selreload-test")
    write_atomic(
        cfg, FLAGS.replace("new_checkout: false", "new_checkout: true").replace("  ratio: 0.25\n", "  fresh: x\n")
    )
    assert reloader.reload().outcome is sr.Outcome.APPLIED
    assert client.get_boolean_value("new_checkout", False) is True
    assert client.get_string_value("fresh", "") == "x"
    assert client.get_float_details("ratio", 9.0).error_code == ErrorCode.FLAG_NOT_FOUND
    assert client.get_boolean_details("new_checkout", False).flag_metadata == {"config_version": 2}
    assert wait_for(events, 1) == ["PROVIDER_CONFIGURATION_CHANGED"]
    ((_, details),) = events
    assert details.flags_changed == ["fresh", "new_checkout", "ratio"] and details.metadata == {"config_version": 2}


def test_invalid_then_good_reload_goes_stale_then_ready(wired: Any) -> None:
    """An invalid document keeps the last good flags and emits STALE (SDK status STALE); the
    next good reload emits READY and CONFIGURATION_CHANGED."""
    reloader, cfg, events = wired
    client = api.get_client("selreload-test")
    write_atomic(cfg, FLAGS + "bogus: 1\n")
    assert reloader.reload().outcome is sr.Outcome.INVALID
    assert client.get_boolean_value("new_checkout", True) is False
    assert wait_for(events, 1) == ["PROVIDER_STALE"]
    assert client.get_provider_status() is ProviderStatus.STALE
    write_atomic(cfg, FLAGS.replace('banner: "hello"', 'banner: "bye"'))
    assert reloader.reload().outcome is sr.Outcome.APPLIED
    assert sorted(wait_for(events, 3)[1:]) == ["PROVIDER_CONFIGURATION_CHANGED", "PROVIDER_READY"]
    assert client.get_provider_status() is ProviderStatus.READY
    assert client.get_string_value("banner", "") == "bye"


def test_a_rolled_back_reload_announces_no_change_and_keeps_the_exact_flags(wired: Any) -> None:
    """A later applier failing rolls the provider back to the very mapping it had; the
    event is STALE, never CONFIGURATION_CHANGED."""
    reloader, cfg, events = wired
    provider = api.get_client("selreload-test").provider
    before = provider.flags()

    @reloader.on("flags")
    def refuse(changes: list[sr.Change], snapshot: object) -> None:
        if any(c.new == 11 for c in changes):
            raise RuntimeError("downstream refuses")

    write_atomic(cfg, FLAGS.replace("max_items: 10", "max_items: 11"))
    assert reloader.reload().outcome is sr.Outcome.ROLLED_BACK
    assert provider.flags() is before
    assert wait_for(events, 1) == ["PROVIDER_STALE"]


def test_bad_flag_values_are_refused(tmp_path: pathlib.Path) -> None:
    """A value that is not an OpenFeature flag value (a timedelta, a non-finite float) fails apply."""
    provider = appliers.OpenFeatureProvider()
    with pytest.raises(ValueError, match="finite"):
        provider.apply([sr.Change("flags.x", sr.UNSET, float("inf"))], _snap())
    with pytest.raises(ValueError, match="a flag is a bool"):
        provider.apply([sr.Change("flags.x", sr.UNSET, object())], _snap())
    assert dict(provider.flags()) == {}


def _snap() -> sr.Snapshot[App]:
    import datetime

    return sr.Snapshot(App(flags={"x": 1}), 1, "", datetime.datetime.now(datetime.UTC))
