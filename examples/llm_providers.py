"""A list of LLM providers changed live; a bad edit keeps the old list.

A router holds one client per provider. Editing `model_name` in the file and reloading
rebuilds the router's clients; a subscriber is told the old and the new list; an edit
that fails validation (an unknown provider, a duplicate name) is refused with the file,
line and column, and the router keeps serving the old list.

    python examples/llm_providers.py [DIR]      # DIR defaults to a temporary directory
"""

from __future__ import annotations

import logging
import pathlib
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import attrs

import selreload as sr

PROVIDERS = ("openai", "anthropic", "azure_openai", "vertex", "ollama")


def _unique_names(_inst: object, _attr: attrs.Attribute[Any], providers: Sequence[Provider]) -> None:
    names = [p.name for p in providers]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"provider names must be unique, {', '.join(duplicates)} appears twice")


@sr.config
class Provider:
    name: str = sr.field(validator=attrs.validators.min_len(1))
    provider: str = sr.field(validator=attrs.validators.in_(PROVIDERS))
    model_name: str = sr.field(validator=attrs.validators.min_len(1))


@sr.config
class LlmConfig:
    """Lists diff as whole values: any provider edit is one change of `providers`."""

    providers: list[Provider] = sr.hot(factory=list, validator=_unique_names)


@attrs.frozen
class Client:
    """Stands in for an SDK client: built from one provider entry."""

    provider: str
    model_name: str


class Router:
    """Routes a request to the client of a named provider."""

    def __init__(self) -> None:
        self.clients: dict[str, Client] = {}

    def update(self, changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        """A function applier: idempotent, so undoing it is calling it with old and new swapped."""
        (change,) = changes
        # Build the new dict first and assign it once: a request never sees half of it.
        self.clients = {p.name: Client(p.provider, p.model_name) for p in change.new}

    def complete(self, name: str, prompt: str) -> str:
        client = self.clients[name]
        return f"[{client.provider}:{client.model_name}] {prompt}"


INITIAL = """\
providers:
  - name: chat
    provider: openai
    model_name: gpt-4o
  - name: summarize
    provider: anthropic
    model_name: claude-3-5-haiku
"""
MODEL_CHANGED = INITIAL.replace("gpt-4o", "gpt-4.1")
INVALID = MODEL_CHANGED.replace("provider: anthropic", "provider: antrhopic")


@attrs.define
class Observed:
    """What the run saw, for the test and for people."""

    reloader: sr.Reloader[LlmConfig]
    router: Router
    results: list[sr.ReloadResult] = attrs.field(factory=list)
    notified: list[tuple[Any, Any]] = attrs.field(factory=list)
    answers: list[str] = attrs.field(factory=list)


def run(directory: pathlib.Path, *, say: Callable[[str], None] = print, schema: type[Any] = LlmConfig) -> Observed:
    """Start on INITIAL, apply a model change live, then refuse an invalid edit (`schema`:
    `LlmConfig`, or its pydantic twin `examples.pydantic_models.LlmConfig`)."""
    path = directory / "llm.yaml"
    path.write_text(INITIAL, encoding="utf-8")
    # watch=False: the example reloads explicitly; a service would let the file watcher do it.
    reloader = sr.Reloader(schema, [sr.YamlFile(path, watch=False)], name="llm")
    router = Router()
    reloader.on("providers", router.update)
    seen = Observed(reloader, router)

    @reloader.subscribe
    def on_reload(result: sr.ReloadResult) -> None:
        for change in result.applied:
            seen.notified.append((change.old, change.new))
            before = [p.model_name for p in change.old]
            after = [p.model_name for p in change.new]
            say(f"subscriber: {change.path} models {before} -> {after}")

    with reloader:
        seen.answers.append(router.complete("chat", "hello"))
        say(seen.answers[-1])

        path.write_text(MODEL_CHANGED, encoding="utf-8")
        seen.results.append(reloader.reload(trigger="edit"))
        seen.answers.append(router.complete("chat", "hello"))
        say(f"{seen.results[-1].outcome.value}: {seen.answers[-1]}")

        path.write_text(INVALID, encoding="utf-8")
        seen.results.append(reloader.reload(trigger="edit"))
        say(f"{seen.results[-1].outcome.value}, still serving the old list:")
        for issue in seen.results[-1].errors:
            say(f"  {issue}")
        seen.answers.append(router.complete("summarize", "hello"))
        say(seen.answers[-1])
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
