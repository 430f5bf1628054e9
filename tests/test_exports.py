"""The public API is exactly `__all__`, sorted, and every name in it exists."""

from __future__ import annotations

import selreload as sr


def test_all_is_sorted_and_unique() -> None:
    """`__all__` is sorted (constants first, as ruff sorts them) and has no duplicates."""
    assert len(set(sr.__all__)) == len(sr.__all__)
    assert sr.__all__ == sorted(sr.__all__, key=lambda n: (not n.isupper(), n))


def test_every_public_name_exists() -> None:
    """Every name in `__all__` is importable from the package."""
    for name in sr.__all__:
        assert getattr(sr, name) is not None, name


def test_no_public_name_outside_all() -> None:
    """Public attributes of the package are listed in `__all__` (modules excepted)."""
    import types

    public = {n for n, v in vars(sr).items() if not n.startswith("_") and not isinstance(v, types.ModuleType)}
    assert public - {"annotations"} == set(sr.__all__)


def test_typing_exports_exactly_the_extension_types() -> None:
    """`selreload.typing.__all__` is exactly the types for writing sources, appliers and recorders, sorted."""
    import selreload.typing

    expected = ["Applier", "ApplierFunc", "Layer", "Live", "NotifyFn", "Recorder", "Reporter", "Source", "Watcher"]
    assert selreload.typing.__all__ == expected
    assert selreload.typing.__all__ == sorted(selreload.typing.__all__)
    for name in expected:
        assert getattr(selreload.typing, name) is not None, name


def test_optional_integrations_are_not_imported_by_the_core() -> None:
    """`import selreload` and `import selreload.appliers` import none of openfeature,
    structlog, loguru or flask (each is an optional extra)."""
    import subprocess
    import sys

    code = (
        "import sys, selreload, selreload.appliers, selreload.wsgi, selreload.asgi\n"
        "print(sorted(m for m in ('openfeature', 'structlog', 'loguru', 'flask') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_appliers_exports_every_builtin_applier() -> None:
    """`selreload.appliers.__all__` is sorted, and the lazy `OpenFeatureProvider` resolves."""
    from selreload import appliers

    assert appliers.__all__ == sorted(appliers.__all__)
    for name in appliers.__all__:
        assert getattr(appliers, name) is not None, name
