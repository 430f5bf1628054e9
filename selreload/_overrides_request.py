"""Reading a request for runtime overrides: `POST /overrides` bodies and `selreload set` arguments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ._mask import show
from ._values import DURATION_FORMS, read_duration


@attrs.frozen
class OverrideRequest:
    """Set `values` (`{dotted path: value}`) for `ttl` seconds (None: until unset), or unset paths."""

    values: Mapping[str, Any] = attrs.field(factory=dict)
    unset: tuple[str, ...] = ()
    ttl: float | None = None
    actor: str | None = None


def parse_ttl(text: Any) -> float | None:
    """`"15m"`, `"2s"`, `90` -> seconds; None for None. Read as a config duration is
    (`_values.read_duration`): at most 100 years, finite. A JSON `1e999` (infinity) or a
    400-digit number reached the expiry's date arithmetic and raised `OverflowError` (a 500).

    Raises:
        ValueError: not a positive duration.
    """
    if text is None:
        return None
    td = read_duration(text) if not isinstance(text, bool) else f"expected {DURATION_FORMS}"
    if isinstance(td, str):
        raise ValueError(f"for: {td}, got {show(text, secret=False)}")
    seconds = td.total_seconds()
    if not seconds > 0:
        raise ValueError(f"for: must be positive, got {show(text, secret=False)}")
    return seconds


def parse_value(text: str) -> Any:
    """A value as YAML reads it: `5` an int, `true` a bool, `[a, b]` a list, `debug` text.

    Raises:
        ValueError: nested too deeply. The depth check the files get comes first: 100,000
            `[` (or 40,000 `? `) crashed the C loader with a segmentation fault.
    """
    from ._errors import ConfigError
    from ._guard import prescan
    from ._yaml import safe_yaml

    try:
        prescan(text, "")
    except ConfigError as exc:
        raise ValueError(exc.issues[0].message) from None
    try:
        return safe_yaml().load(text) if text.strip() else ""
    except Exception:  # noqa: BLE001 - not YAML: the text as it is
        return text


def parse_assignments(items: Sequence[str]) -> dict[str, Any]:
    """`["logging.level=debug", "limits.rps=50"]` -> `{"logging.level": "debug", "limits.rps": 50}`.

    Raises:
        ValueError: an item without `=`, or with an empty path.
    """
    out: dict[str, Any] = {}
    for item in items:
        path, eq, value = item.partition("=")
        if not eq or not path.strip():
            raise ValueError(f"expected PATH=VALUE, got {item!r}")
        try:
            out[path.strip()] = parse_value(value)
        except ValueError as exc:
            raise ValueError(f"{path.strip()}: {exc}") from None
    return out


def parse_override_request(body: Any) -> OverrideRequest:
    """`{"set": {path: value}, "for": "15m", "actor": "alice"}` or `{"unset": [paths]}`;
    `{"path": p, "value": v}` is a one-entry `set`.

    Raises:
        ValueError: anything else (the message says what was expected).
    """
    if not isinstance(body, dict):
        raise ValueError('expected a JSON object like {"set": {"logging.level": "debug"}, "for": "15m"}')
    values = body.get("set", {})
    if "path" in body:
        values = {body["path"]: body.get("value")}
    unset = body.get("unset", [])
    if not isinstance(values, dict) or not all(isinstance(k, str) and k for k in values):
        raise ValueError('"set" must be an object of {dotted path: value}')
    if not isinstance(unset, list) or not all(isinstance(p, str) and p for p in unset):
        raise ValueError('"unset" must be a list of dotted paths')
    if bool(values) == bool(unset):
        raise ValueError('give either "set" or "unset", not both, not neither')
    actor = body.get("actor")
    if actor is not None and not (isinstance(actor, str) and actor.isprintable()):
        # It reaches every worker's log line and audit record of the change.
        raise ValueError('"actor" must be a string of printable text (no newline or control character)')
    return OverrideRequest(values, tuple(unset), parse_ttl(body.get("for")), actor)
