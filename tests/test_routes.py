"""Routes: which applier gets which change, matched once per reload, in registration order."""

from __future__ import annotations

import fnmatch

from hypothesis import given
from hypothesis import strategies as st

from selreload._change import Change
from selreload._routes import Routes, applier_name


def change(path: str) -> Change:
    return Change(path, 1, 2)


def test_an_exact_pattern_covers_its_path_and_everything_under_it() -> None:
    """`telemetry.sampler` gets `telemetry.sampler.type` and `.ratio` in one batch, not
    `telemetry.samplerx`."""
    routes = Routes()
    routes.add("telemetry.sampler", object(), "sampler")
    batches = routes.batches(
        [change(p) for p in ("telemetry.sampler.type", "telemetry.samplerx", "telemetry.sampler.ratio")]
    )
    assert [(r.name, [c.path for c in cs]) for r, cs in batches] == [
        ("sampler", ["telemetry.sampler.type", "telemetry.sampler.ratio"])
    ]


def test_batches_come_in_registration_order_whatever_the_change_order() -> None:
    """Appliers run in the order they were registered, exact and glob mixed."""
    routes = Routes()
    routes.add("b", object(), "first")
    routes.add("a.*", object(), "second")
    routes.add("a", object(), "third")
    batches = routes.batches([change("a.x"), change("b")])
    assert [r.name for r, _ in batches] == ["first", "second", "third"]
    assert routes.names("a.x") == ("second", "third")


def test_batches_are_immutable() -> None:
    """An applier cannot change what its own rollback (or the next applier) receives."""
    routes = Routes()
    routes.add("a", object(), "a")
    ((_, changes),) = routes.batches([change("a")])
    assert isinstance(changes, tuple)


def test_unmatched_changes_go_nowhere() -> None:
    """A change no route covers yields no batch and no names."""
    routes = Routes()
    routes.add("a", object(), "a")
    assert routes.batches([change("b")]) == []
    assert routes.route([change("b")])[1] == {"b": ()}


def test_applier_names() -> None:
    """A `name` attribute wins, then the qualified name, then the type name."""

    class Named:
        name = "mine"

    def fn() -> None: ...

    assert applier_name(Named()) == "mine"
    assert applier_name(fn).endswith("fn")
    assert applier_name(object()) == "object"


segments = st.sampled_from(["a", "b", "c", "ab"])
paths = st.lists(segments, min_size=1, max_size=4).map(".".join)
patterns = st.one_of(paths, paths.map(lambda p: p + ".*"), paths.map(lambda p: p.replace("b", "?")))


def naive(pattern: str, path: str) -> bool:
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, pattern + ".*")
    return path == pattern or path.startswith(pattern + ".")


@given(st.lists(patterns, max_size=8), st.lists(paths, max_size=12, unique=True))
def test_routing_agrees_with_matching_each_pair(pats: list[str], changed: list[str]) -> None:
    """The indexed routing gives exactly what testing every pattern against every path
    gives, in registration order."""
    routes = Routes()
    for i, p in enumerate(pats):
        routes.add(p, object(), f"r{i}")
    batches = routes.batches([change(p) for p in changed])
    expected = [
        (f"r{i}", [c for c in changed if naive(p, c)]) for i, p in enumerate(pats) if any(naive(p, c) for c in changed)
    ]
    assert [(r.name, [c.path for c in cs]) for r, cs in batches] == expected


words = st.sampled_from(["a", "b", "ab", "a1", "x.y"])
deep_paths = st.lists(words, min_size=1, max_size=4).map(".".join)
globs = st.one_of(
    deep_paths.map(lambda p: p + "*"),  # found by its prefix alone
    deep_paths.map(lambda p: p + ".*"),
    deep_paths.map(lambda p: "*." + p),  # no literal prefix: every path tries it
    deep_paths.map(lambda p: p.replace("b", "?", 1)),
    deep_paths.map(lambda p: p.replace("a", "[ab]", 1)),
    st.sampled_from(["*", "a*b", "?", "a.*.b"]),
)


@given(
    st.lists(st.one_of(deep_paths, globs), max_size=12),
    st.lists(st.one_of(deep_paths, globs), max_size=4),
    st.lists(deep_paths, max_size=15, unique=True),
)
def test_indexed_routing_agrees_with_a_naive_router(first: list[str], later: list[str], changed: list[str]) -> None:
    """Exact patterns found by ancestor, globs by literal prefix, results remembered per
    path: the batches (registration order, each applier once, its changes in change
    order) and the names per path are what testing every pattern on every path gives,
    before and after more routes are added, and on a second call."""
    routes = Routes()
    patterns: list[str] = []

    def expect() -> tuple[list[tuple[str, list[str]]], dict[str, tuple[str, ...]]]:
        batches = [
            (f"r{i}", [c for c in changed if naive(p, c)])
            for i, p in enumerate(patterns)
            if any(naive(p, c) for c in changed)
        ]
        names = {c: tuple(f"r{i}" for i, p in enumerate(patterns) if naive(p, c)) for c in changed}
        return batches, names

    for group in (first, later):
        for p in group:
            routes.add(p, object(), f"r{len(patterns)}")
            patterns.append(p)
        for _ in range(2):  # the second call reads what the first remembered
            batches, names = routes.route([change(p) for p in changed])
            assert ([(r.name, [c.path for c in cs]) for r, cs in batches], names) == expect()
            assert all(routes.names(c) == names[c] for c in changed)
