"""The one dotted-path grammar: `a.b`, list items `a.b[0]`, mapping keys, globs.

A path names a leaf the way people write it: attribute names joined by `.`, list items
as `[n]`, and the keys of a mapping field appended like attributes
(`feature_flags.new_checkout`). A mapping key may hold dots itself
(`logging.levels.com.example.db` is key `com.example.db` of `logging.levels`), so
splitting a path back into parts needs to know where mapping fields are: `split()` takes
them as `mapping_roots`.

A pattern (registrations, policy files, `explain PATH`) is a path or a glob
(`feature_flags.*`, `logging.*`); a pattern covers the paths it names and every path
under them.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import re
from collections.abc import Callable, Collection, Iterable, Sequence

Part = str | int

_GLOB_CHARS = frozenset("*?[")
_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def join(path: str, key: object) -> str:
    """`join("a", "b")` -> `"a.b"`; `join("", "a")` -> `"a"`."""
    return f"{path}.{key}" if path else str(key)


def item(path: str, index: int) -> str:
    """`item("a.b", 0)` -> `"a.b[0]"`."""
    return f"{path}[{index}]"


def render(parts: Iterable[Part]) -> str:
    """`["providers", 1, "name"]` -> `"providers[1].name"`."""
    out = ""
    for part in parts:
        out = item(out, part) if isinstance(part, int) else join(out, part)
    return out


def split(path: str, mapping_roots: Collection[str] = ()) -> list[Part]:
    """`"providers[1].name"` -> `["providers", 1, "name"]`.

    Whatever follows a mapping root in `mapping_roots` is one key, dots and all:
    `split("levels.com.example", {"levels"})` -> `["levels", "com.example"]`.
    """
    for root in mapping_roots:
        if path.startswith(root + ".") and len(path) > len(root) + 1:
            return [*split(root), path[len(root) + 1 :]]
    return [int(i) if i else k for k, i in _PART.findall(path)]


def ancestors(path: str) -> Iterable[str]:
    """The path itself, then every dotted prefix, longest first: `a.b.c`, `a.b`, `a`."""
    yield path
    while "." in path:
        path = path.rpartition(".")[0]
        yield path


def is_under(path: str, prefix: str) -> bool:
    """`path` is `prefix` or a path below it (`a.b` and `a.b.c` are under `a.b`; `a.bc` is not)."""
    return path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "[")


def is_glob(pattern: str) -> bool:
    return not _GLOB_CHARS.isdisjoint(pattern)


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str) -> Callable[[str], re.Match[str] | None]:
    # `fnmatch.translate` once per pattern; matching a compiled regex is ~10x faster than
    # `fnmatchcase`, which re-checks its own cache on every call.
    here = fnmatch.translate(_closed(pattern))
    below = fnmatch.translate(_closed(pattern + ".*"))
    return re.compile(f"(?:{here})|(?:{below})").match


def _closed(pattern: str) -> str:
    """`pattern` with each `[` that no `]` closes written `[[]`: the same glob (fnmatch
    reads an unclosed `[` as a literal `[`, and `[[]` matches just that), but fnmatch
    scans to the end of the pattern for every unclosed `[`, so 4,000 of them took 2.4 s
    to translate. Only a `[` after the last `]` can be unclosed (`[]` and `[!]` at the
    very end aside: one scan each)."""
    last = pattern.rfind("]")
    if "[" not in pattern[last + 1 :]:
        return pattern
    return pattern[: last + 1] + pattern[last + 1 :].replace("[", "[[]")


def matcher(pattern: str) -> Callable[[str], object]:
    """`matches` with the pattern fixed, compiled once: true (a match) for covered paths."""
    if is_glob(pattern):
        return _compiled(pattern)
    return functools.partial(is_under, prefix=pattern)


def matches(pattern: str, path: str) -> bool:
    """A pattern covers the paths it names or globs, and every path under them."""
    if is_glob(pattern):
        return _compiled(pattern)(path) is not None
    return is_under(path, pattern)


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to a misspelt name, if any is close."""
    found = difflib.get_close_matches(word, list(candidates), n=1)
    return found[0] if found else None


def hint(word: str, candidates: Sequence[str] | Iterable[str], *, otherwise: str = "") -> str:
    """`"; did you mean 'x'?"` for error messages, or `otherwise` when nothing is close."""
    found = did_you_mean(word, candidates)
    return f"; did you mean {found!r}?" if found else otherwise
