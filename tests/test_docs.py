"""Every Python block in README.md and docs/*.md runs, and the reference names every public name.

Conventions for doc writers (see docs/reference.md, "Docs conventions"):
- every ```python block is executed, in order, in one namespace per file, in a fresh
  temp directory (the current directory while it runs);
- `<!-- file: NAME -->` right before a fenced block (yaml, json, toml, ...) writes the
  block's text to NAME first, so the Python after it can read that file;
- `<!-- python ... -->` is hidden setup code, run in order with the visible blocks;
- shell blocks (```sh, ```console) are not run.
"""

from __future__ import annotations

import logging
import os
import pathlib
import re
import sys
import types
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

import selreload as sr

ROOT = pathlib.Path(__file__).parent.parent
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])

_BLOCK = re.compile(
    r"(?P<file><!--\s*file:\s*(?P<name>[^\s>]+)\s*-->\s*\n)?"
    r"^```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^```\s*$"
    r"|<!--\s*python\s*\n(?P<hidden>.*?)-->",
    re.S | re.M,
)


def blocks(text: str) -> Iterator[tuple[int, str, str | None, str]]:
    """(line, kind, file name, code) for each step: kind is `python`, `file` or `skip`."""
    for m in _BLOCK.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        if m.group("hidden") is not None:
            yield line, "python", None, m.group("hidden")
        elif m.group("name"):
            yield line, "file", m.group("name"), m.group("body")
        elif m.group("lang") == "python":
            yield line, "python", None, m.group("body")
        else:
            yield line, "skip", None, m.group("body")


def run_blocks(doc: pathlib.Path, namespace: dict[str, object], tmp: pathlib.Path) -> int:
    """Write the files and run the Python of `doc` in order; returns how many blocks ran."""
    ran = 0
    for line, kind, name, code in blocks(doc.read_text(encoding="utf-8")):
        if kind == "file" and name is not None:
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(code, encoding="utf-8")
        elif kind == "python":
            try:
                exec(compile(code, f"{doc.relative_to(ROOT)}:{line}", "exec"), namespace)
            except BaseException as exc:
                raise AssertionError(f"{doc.relative_to(ROOT)}:{line}: block failed: {exc!r}") from exc
            ran += 1
    return ran


@pytest.fixture
def in_tmp(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield tmp_path
    finally:
        os.chdir(cwd)
        # A doc may call logging.basicConfig or set levels: leave the process as it was.
        for h in root.handlers[:]:
            if h not in handlers:
                root.removeHandler(h)
        root.setLevel(level)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_run(doc: pathlib.Path, in_tmp: pathlib.Path) -> None:
    """Each Python block of the document runs without error (files it needs written first)."""
    # A real module: attrs resolves a config class's annotations in its module's globals.
    module = types.ModuleType(f"doc_{doc.stem.replace('-', '_').replace('.', '_')}")
    sys.modules[module.__name__] = module
    namespace: dict[str, object] = module.__dict__
    try:
        ran = run_blocks(doc, namespace, in_tmp)
    finally:
        del sys.modules[module.__name__]
    if doc.name in ("README.md", "getting-started.md", "concepts.md"):
        assert ran, f"{doc.name} should show runnable Python"


def test_readme_shows_the_two_setup_commands_first() -> None:
    """The README's first command block is `make demo` and `make test`, before any code."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first = next(code for _, kind, _, code in blocks(text) if kind != "file")
    assert first.split() == ["make", "demo", "make", "test"]


def test_reference_names_every_public_name() -> None:
    """docs/reference.md documents every name in `selreload.__all__`, every CLI command and
    every metric."""
    text = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    missing = [n for n in sr.__all__ if f"`sr.{n}" not in text and f"`{n}`" not in text]
    assert not missing, f"not in docs/reference.md: {missing}"
    for command in (
        "check",
        "plan",
        "explain",
        "policies",
        "audit verify",
        "audit show",
        "demo",
        "fleet status",
        "push",
    ):
        assert f"selreload {command}" in text, command
    metrics = {m.name for m in REGISTRY.collect() if m.name.startswith("selreload_")}
    for name in (
        "selreload_reloads_total",
        "selreload_reload_duration_seconds",
        "selreload_config_version",
        "selreload_last_success_timestamp_seconds",
        "selreload_restart_pending",
        "selreload_applier_failures_total",
        *(m + "_total" if m in ("selreload_reloads", "selreload_applier_failures") else m for m in metrics),
    ):
        assert name in text, name


# Linked from docs/index.md, written on another branch (multi-worker control layer):
# drop this once it is merged.
PENDING = {"docs/workers.md"}


def test_docs_link_to_files_that_exist() -> None:
    """Relative links in README.md and docs/ point at files in the repository."""
    broken = []
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            if (doc.parent / target).resolve().relative_to(ROOT).as_posix() in PENDING:
                continue
            if not (doc.parent / target).exists():
                broken.append(f"{doc.relative_to(ROOT)} -> {target}")
    assert not broken, broken
