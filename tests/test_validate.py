"""The attrs internals selreload relies on are still there, and validation reports all failures.

If a test here fails after an attrs upgrade, `selreload/_validate.py` reads something
attrs changed: fix the one small function named in the failure message.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest

import selreload as sr
from selreload._errors import Issue
from selreload._validate import _default, _in_options, _run_converter, collect_validation_issues


def test_in_validator_exposes_options() -> None:
    """`attrs.validators.in_` returns `_InValidator` with `options` (read by `_validate._in_options`)."""
    v = attrs.validators.in_(["a", "b"])
    if type(v).__name__ != "_InValidator" or not hasattr(v, "options"):
        pytest.fail(
            f"attrs changed in_(): got {type(v).__name__} without `options`; "
            "update selreload/_validate.py:_in_options, or 'must be one of ...' messages are lost"
        )
    assert _in_options(v) == ["a", "b"]


def test_and_validator_exposes_validators() -> None:
    """`attrs.validators.and_` (and a list of validators) keep theirs in `_validators`."""
    inner = attrs.validators.in_([1, 2])
    for combined in (attrs.validators.and_(attrs.validators.instance_of(int), inner), [inner]):

        @attrs.define
        class C:
            x: int = attrs.field(validator=combined)

        validator = attrs.fields(C).x.validator
        if not hasattr(validator, "_validators"):
            pytest.fail(
                f"attrs changed and_(): {type(validator).__name__} has no `_validators`; "
                "update selreload/_validate.py:_in_options"
            )
        assert _in_options(validator) == [1, 2]


@pytest.mark.parametrize(("takes_self", "takes_field"), [(False, False), (True, False), (False, True), (True, True)])
def test_attrs_converter_is_called_like_attrs_does(takes_self: bool, takes_field: bool) -> None:
    """An `attrs.Converter` converts exactly as attrs' own `__init__` does, whatever it takes."""

    def double(value: int, *extra: Any) -> int:
        assert len(extra) == takes_self + takes_field, "attrs.Converter call convention changed"
        return value * 2

    conv = attrs.Converter(double, takes_self=takes_self, takes_field=takes_field)

    @attrs.define
    class C:
        x: int = attrs.field(converter=conv)

    a = attrs.fields(C).x
    if not isinstance(a.converter, attrs.Converter):
        pytest.fail("attrs no longer keeps the Converter on the field: fix selreload/_validate.py:_run_converter")
    assert _run_converter(a, 2, object.__new__(C)) == C(2).x == 4


def test_factory_default_with_self() -> None:
    """`attrs.Factory(takes_self=True)` defaults see the half-built instance."""

    @attrs.define
    class C:
        a: int = 1
        b: int = attrs.field(default=attrs.Factory(lambda s: s.a + 1, takes_self=True))

    inst = object.__new__(C)
    object.__setattr__(inst, "a", 5)
    assert _default(attrs.fields(C).b, inst) == 6
    assert _default(attrs.fields(C).a, inst) == 1


def test_every_validator_failure_is_collected() -> None:
    """All failing validators of a class are reported, each once, `in_` with its options."""

    @sr.config
    class C:
        level: str = attrs.field(validator=attrs.validators.in_(["info", "debug"]))
        workers: int = attrs.field(validator=attrs.validators.ge(1))
        name: str = attrs.field(validator=attrs.validators.min_len(2))

    issues: list[Issue] = []
    collect_validation_issues(C, {"level": "loud", "workers": 0, "name": "x"}, "app", issues, {})
    assert [(i.path, i.message) for i in issues] == [
        ("app.level", "must be one of info, debug (got 'loud')"),
        ("app.workers", "must be >= 1: 0"),
        ("app.name", "Length of 'name' must be >= 2: 1"),
    ]
