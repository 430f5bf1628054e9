"""The one masking policy: how a value is shown when its leaf is secret.

Every output that renders config values (repr, errors, logs, audit, plans, spans, HTTP,
CLI) goes through this module, so a secret is masked by one rule in one place.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs

from ._paths import join
from ._values import UNSET, EnvText, format_duration, ordered, scalar_to_plain

if TYPE_CHECKING:
    from ._schema import Schema

MASK: Final = "***"
"""What a secret value renders as, everywhere."""

_SCALARS: Final = frozenset({str, int, float, bool, type(None)})


def render(value: Any, *, secret: bool) -> str:
    """A leaf value for people (`'info'`, `15m`, `True`), or `***` for a secret.

    `UNSET` (no value on that side of a change) is shown as itself even for a secret:
    it says the key did not exist, which reveals nothing.
    """
    if value is UNSET:
        return "UNSET"
    if secret:
        return MASK
    if isinstance(value, datetime.timedelta):
        return format_duration(value)
    if isinstance(value, enum.Enum):
        return repr(value.value)
    return repr(value)


def masked_repr(_value: object) -> str:
    """The attrs `repr=` of a secret field: `Config(token=***)`."""
    return MASK


def show(value: Any, *, secret: bool) -> str:
    """A raw value as an error message quotes it: masked for secrets, cut when long."""
    if secret:
        return MASK
    text = repr(str(value) if isinstance(value, EnvText) else value)
    return text if len(text) <= 80 else text[:77] + "..."


def scrub(text: str, secrets: Iterable[Any]) -> str:
    """Replace every rendering of every secret value in `text` with `***`."""
    forms = {form for v in secrets if not (v is None or v == "" or isinstance(v, bool)) for form in (str(v), repr(v))}
    # Longest first: with secrets "abc" and "xabc", replacing "abc" first would leave "x***".
    for form in sorted(forms, key=len, reverse=True):
        if form:
            text = text.replace(form, MASK)
    return text


def secret_values(schema: Schema, *flats: Mapping[str, Any]) -> list[Any]:
    """The values of the secret leaves of flattened configs (`{path: value}`)."""
    return [v for flat in flats for p, v in flat.items() if schema.policy_of(p)[1]]


def scrubber(schema: Schema, *flats: Mapping[str, Any]) -> Callable[[str], str]:
    """`scrub` with the secret values of `flats`, collected on first use."""
    # Collected only when an error message needs scrubbing: a walk over every leaf is
    # most of the fixed cost of a small reload, and a successful one never needs it.
    found: list[list[Any]] = []

    def scrub_secrets(text: str) -> str:
        if not found:
            found.append(secret_values(schema, *flats))
        return scrub(text, found[0])

    return scrub_secrets


# --- JSON-ready data ----------------------------------------------------------------------


def plain(value: Any, *, secret: bool) -> Any:
    """One leaf value as JSON-ready data: `***` when secret, `UNSET` as `None`."""
    if value is UNSET:
        return None  # the mapping key did not exist on that side
    if secret:
        return MASK
    if type(value) in _SCALARS:
        return value  # most leaves: skip the walk's type checks (a third of an audit record's cost)
    return masked_plain(value)


def masked_plain(value: Any, *, schema: Schema | None = None) -> Any:
    """A config (or any value in one) as JSON-ready data with every secret masked: the
    leaves `schema` resolves as secret (declared or by policy file, mapping keys too) and
    the secret fields of any attrs instance inside, schema or not."""
    return _walk(value, schema, "")


def _walk(value: Any, schema: Schema | None, path: str) -> Any:
    if schema is not None and path and schema.policy_of(path)[1]:
        return MASK
    if attrs.has(type(value)):
        hidden = _secret_fields(type(value))
        return {
            a.name: MASK if a.name in hidden else _walk(getattr(value, a.name), schema, join(path, a.name))
            for a in attrs.fields(type(value))
        }
    if isinstance(value, Mapping):
        return {str(k): _walk(v, schema, join(path, k)) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        # Items share their list's path: the schema has leaves for lists, not for items.
        return [_walk(v, schema, path) for v in ordered(value)]
    return scalar_to_plain(value)


_SECRET_FIELDS: dict[type, frozenset[str]] = {}


def _secret_fields(cls: type) -> frozenset[str]:
    found = _SECRET_FIELDS.get(cls)
    if found is None:
        # Imported here: `_schema` imports this module (the repr of secret fields); the
        # cache makes the import and the field scan a once-per-class cost.
        from ._schema import is_secret_field

        found = frozenset(a.name for a in attrs.fields(cls) if is_secret_field(a))
        if len(_SECRET_FIELDS) < 1024:  # classes made at run time must not grow it forever
            _SECRET_FIELDS[cls] = found
    return found
