"""The one masking policy: how a value is shown when its leaf is secret.

Every output that renders config values (repr, errors, logs, audit, plans, spans, HTTP,
CLI) goes through this module, so a secret is masked by one rule in one place.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Iterable
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
