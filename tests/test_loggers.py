"""`StructlogLevel` and `LoguruLevel`: structlog's filtering logger and loguru handlers change
level live through a reload, and roll back exactly."""

from __future__ import annotations

import io
import pathlib
from collections.abc import Iterator

import attrs
import pytest
import structlog
from conftest import write_atomic
from loguru import logger
from prometheus_client import CollectorRegistry

import selreload as sr
from selreload import appliers


@sr.config
class Logging:
    level: str = sr.hot(default="info")


@sr.config
class App:
    logging: Logging = sr.field(factory=Logging)


def make(tmp_path: pathlib.Path, level: str) -> tuple[sr.Reloader[App], pathlib.Path]:
    cfg = tmp_path / "c.yaml"
    write_atomic(cfg, f"logging: {{level: {level}}}\n")
    return sr.Reloader(App, sources=[sr.YamlFile(cfg, watch=False)], registry=CollectorRegistry()), cfg


@pytest.fixture
def structlog_out() -> Iterator[io.StringIO]:
    out = io.StringIO()
    saved = structlog.get_config()
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.KeyValueRenderer(key_order=["event"])],
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    yield out
    structlog.configure(**saved)


def test_structlog_level_changes_live_for_loggers_already_made(
    tmp_path: pathlib.Path, structlog_out: io.StringIO
) -> None:
    """A logger obtained before the reload filters at the new level after it."""
    log = structlog.get_logger("svc")
    reloader, cfg = make(tmp_path, "warning")
    reloader.on("logging.level", appliers.StructlogLevel())
    with reloader:
        log.info("hidden-1")
        log.warning("shown-1")
        write_atomic(cfg, "logging: {level: debug}\n")
        assert reloader.reload().outcome is sr.Outcome.APPLIED
        log.debug("shown-2")
    text = structlog_out.getvalue()
    assert "hidden-1" not in text and "shown-1" in text and "shown-2" in text


def test_structlog_bad_level_and_rollback_restore_the_exact_wrapper(
    tmp_path: pathlib.Path, structlog_out: io.StringIO
) -> None:
    """An unknown level rolls back; a later failure puts back the very wrapper_class."""
    reloader, cfg = make(tmp_path, "info")
    reloader.on("logging.level", appliers.StructlogLevel())

    @reloader.on("logging.level")
    def refuse_error(changes: list[sr.Change], snapshot: object) -> None:
        if changes[0].new == "error":
            raise RuntimeError("no")

    with reloader:
        wrapper = structlog.get_config()["wrapper_class"]
        write_atomic(cfg, "logging: {level: loud}\n")
        result = reloader.reload()
        assert result.outcome is sr.Outcome.ROLLED_BACK and "unknown log level 'loud'" in str(result.errors[0])
        write_atomic(cfg, "logging: {level: error}\n")
        assert reloader.reload().outcome is sr.Outcome.ROLLED_BACK
        assert structlog.get_config()["wrapper_class"] is wrapper


def test_loguru_level_changes_live_through_the_handler_filter(tmp_path: pathlib.Path) -> None:
    """A loguru handler added with `filter=levels.filter` follows the configured level,
    loguru's own names (SUCCESS, TRACE) included; a bad name rolls back."""
    out = io.StringIO()
    levels = appliers.LoguruLevel()
    handler = logger.add(out, level=0, filter=levels.filter, format="{level} {message}")
    try:
        reloader, cfg = make(tmp_path, "warning")
        reloader.on("logging.level", levels)
        with reloader:
            logger.info("hidden-1")
            logger.warning("shown-1")
            write_atomic(cfg, "logging: {level: trace}\n")
            assert reloader.reload().outcome is sr.Outcome.APPLIED
            logger.trace("shown-2")
            write_atomic(cfg, "logging: {level: success}\n")
            reloader.reload()
            logger.info("hidden-2")
            logger.success("shown-3")
            write_atomic(cfg, "logging: {level: chatty}\n")
            result = reloader.reload()
            assert result.outcome is sr.Outcome.ROLLED_BACK and "unknown loguru level" in str(result.errors[0])
            assert levels.no == logger.level("SUCCESS").no
    finally:
        logger.remove(handler)
    text = out.getvalue()
    assert "hidden" not in text
    assert all(f"shown-{i}" in text for i in (1, 2, 3))


def test_validator_agrees_with_the_schema() -> None:
    """The appliers take the same level spelling the docs show (attrs validators stay the user's)."""
    assert attrs.has(App)
    assert appliers.LoguruLevel("info").no == logger.level("INFO").no
