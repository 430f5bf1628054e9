"""The one masking policy: how a value is shown when its leaf is secret.

Every output that renders config values (repr, errors, logs, audit, plans, spans, HTTP,
CLI) goes through this module, so a secret is masked by one rule in one place.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

MASK: Final = "***"
"""What a secret value renders as, everywhere."""


def render(value: Any, *, secret: bool) -> str:
    """A leaf value for people (`'info'`, `15m`, `True`), or `***` for a secret.

    `UNSET` (no value on that side of a change) is shown as itself even for a secret:
    it says the key did not exist, which reveals nothing.
    """
    from ._change import UNSET, format_duration

    if value is UNSET:
        return "UNSET"
    if secret:
        return MASK
    if isinstance(value, datetime.timedelta):
        return format_duration(value)
    if isinstance(value, enum.Enum):
        return repr(value.value)
    return repr(value)


def scrub(text: str, secrets: Iterable[Any]) -> str:
    """Replace every rendering of every secret value in `text` with `***`."""
    forms = {form for v in secrets if not (v is None or v == "" or isinstance(v, bool)) for form in (str(v), repr(v))}
    # Longest first: with secrets "abc" and "xabc", replacing "abc" first would leave "x***".
    for form in sorted(forms, key=len, reverse=True):
        if form:
            text = text.replace(form, MASK)
    return text


def secret_values(schema: Any, *flats: Mapping[str, Any]) -> list[Any]:
    """The values of every secret leaf in flattened configs (`{path: value}`)."""
    policy_of = schema.policy_of
    return [v for flat in flats for p, v in flat.items() if policy_of(p)[1]]


def scrubber(schema: Any, *flats: Mapping[str, Any]) -> Callable[[str], str]:
    """`scrub` bound to the secrets of `flats`, collected only when first needed: a walk
    over every leaf is most of the fixed cost of a small reload, and a successful one
    never needs it."""
    found: list[list[Any]] = []

    def scrub_secrets(text: str) -> str:
        if not found:
            found.append(secret_values(schema, *flats))
        return scrub(text, found[0])

    return scrub_secrets
