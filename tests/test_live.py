"""`Live.evolve`: the copy specialised to Live's fields is `attrs.evolve`, field for field."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from selreload._live import Live, State

NAMES = [f.name for f in attrs.fields(Live)]


@given(st.sets(st.sampled_from(NAMES)), st.sampled_from(list(State)))
def test_evolve_is_attrs_evolve(changed: set[str], state: State) -> None:
    base = Live(state=State.RUNNING, last_error="before", inputs=("a",))
    values = {name: (state if name == "state" else object()) for name in changed}
    ours, theirs = base.evolve(**values), attrs.evolve(base, **values)
    assert type(ours) is Live
    for name in NAMES:
        assert getattr(ours, name) is getattr(theirs, name), name
    # The original is untouched, and the copy is as frozen as any Live.
    assert base.state is State.RUNNING and base.last_error == "before"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ours.last_error = "after"  # type: ignore[misc]


def test_evolve_refuses_a_field_live_does_not_have() -> None:
    with pytest.raises(TypeError, match="nope"):
        Live().evolve(nope=1)
