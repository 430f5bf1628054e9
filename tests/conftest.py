"""Shared test helpers: real files in a temp dir, written the way tools write them."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable

import pytest


def write_atomic(path: pathlib.Path, text: str) -> None:
    """Write like an editor that saves safely: temp file, fsync, rename over."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


@pytest.fixture
def config_file(tmp_path: pathlib.Path) -> Callable[[str], pathlib.Path]:
    """Returns a writer: `config_file(text)` (re)writes tmp_path/config.yaml atomically."""
    path = tmp_path / "config.yaml"

    def write(text: str) -> pathlib.Path:
        write_atomic(path, text)
        return path

    return write
