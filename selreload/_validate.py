"""Running attrs converters and validators one by one: the only module that knows attrs internals.

attrs stops at the first failing validator and says nothing about `in_` options in a
way people read, so selreload runs each converter and validator itself. That needs three
things attrs does not document as API; each is read in one small function below, and
`tests/test_validate.py` fails loudly when an attrs release changes one of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ._errors import Issue
from ._mask import WITHHELD_SECRET, Guard, hidden, secrets_inside, show
from ._paths import join


def _in_options(validator: Any) -> list[Any] | None:
    """The options of an `attrs.validators.in_` validator, alone or inside `and_`."""
    # attrs internals: `in_` returns a private `_InValidator` with an `options` attribute,
    # `and_` (and a list given as `validator=`) a private `_AndValidator` holding `_validators`.
    if type(validator).__name__ == "_InValidator" and hasattr(validator, "options"):
        return list(validator.options)
    for sub in getattr(validator, "_validators", None) or ():
        found = _in_options(sub)
        if found is not None:
            return found
    return None


def validator_bounds(validator: Any) -> dict[str, Any]:
    """What a field's validators say about its values, for a JSON Schema: `enum` (from
    `in_`), `>=`/`>`/`<=`/`<` bounds (from `ge`, `gt`, `le`, `lt`) and `min_len`/`max_len`,
    found alone, inside `and_` (or a list) and inside `optional`. Other validators say
    nothing (they still run)."""
    found: dict[str, Any] = {}
    stack = [validator]
    while stack:
        v = stack.pop()
        # attrs internals: `ge`/`gt`/`le`/`lt` return a private `_NumberValidator` with
        # `bound` and `compare_op`; `min_len`/`max_len` ones with `min_length`/`max_length`;
        # `optional` an `_OptionalValidator` holding `validator`.
        name = type(v).__name__
        if name == "_InValidator" and hasattr(v, "options"):  # as `_in_options` reads it
            found.setdefault("enum", list(v.options))
        elif name == "_NumberValidator" and getattr(v, "compare_op", None) in (">=", ">", "<=", "<"):
            found.setdefault(v.compare_op, v.bound)
        elif name == "_MinLengthValidator" and hasattr(v, "min_length"):
            found.setdefault("min_len", v.min_length)
        elif name == "_MaxLengthValidator" and hasattr(v, "max_length"):
            found.setdefault("max_len", v.max_length)
        elif name == "_OptionalValidator" and hasattr(v, "validator"):
            inner = v.validator
            stack.extend(inner if isinstance(inner, list | tuple) else [inner])
        stack.extend(reversed(getattr(v, "_validators", None) or ()))
    return found


def _run_converter(a: attrs.Attribute[Any], value: Any, inst: Any) -> Any:
    """The value of field `a` after its converter, as attrs' generated `__init__` computes it."""
    conv = a.converter
    # attrs internals: since attrs 24.1 a converter may be an `attrs.Converter`, which the
    # generated `__init__` calls as `conv(value, self, field)` (its `__call__` drops the
    # arguments the wrapped function does not take); a plain callable takes the value.
    if isinstance(conv, attrs.Converter):
        return conv(value, inst, a)  # type: ignore[call-arg, operator]
    return conv(value)  # type: ignore[misc]


def _default(a: attrs.Attribute[Any], inst: Any) -> Any:
    """The default of field `a`, calling its factory (with the half-built instance if asked)."""
    fac: Any = a.default
    if isinstance(fac, attrs.Factory):  # type: ignore[arg-type]
        return fac.factory(inst) if fac.takes_self else fac.factory()
    return fac


def describe_validation(
    exc: BaseException, a: attrs.Attribute[Any], value: Any, secret: bool, guard: Guard, *, what: str = "validator"
) -> str:
    """A validator (or converter) failure as one line that does not repeat the field name.

    A secret field's own validator message is never shown; any other is shown whole, or
    withheld whole when it quotes a secret in scope (`_mask.Guard`).
    """
    options = _in_options(a.validator) if what == "validator" else None
    if options is not None and isinstance(exc, ValueError) and value not in options:
        return f"must be one of {', '.join(str(o) for o in options)} (got {show(value, secret=secret)})"
    if secret:
        return WITHHELD_SECRET.format(what=what)
    text = str(exc.args[0]) if exc.args and isinstance(exc.args[0], str) else str(exc)
    text = text or type(exc).__name__
    for prefix in (f"'{a.name}' ", f"'{a.alias}' "):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    return guard.text(text, what=f"the {what} failed", exc=exc)


def collect_validation_issues(
    cls: type[Any],
    kwargs: Mapping[str, Any],
    path: str,
    issues: list[Issue],
    secrets: Mapping[str, bool],
    *,
    partial: bool = False,
) -> None:
    """Run every converter and validator of `cls` one by one, keeping each failure.

    attrs stops at the first failing validator; people fixing a config want them all.
    The half-built instance lets cross-field validators read their siblings. With
    `partial`, other fields already failed: only the fields in `kwargs` are validated.
    """
    before = len(issues)
    inst = object.__new__(cls)
    # A message may quote a sibling (`must differ from password 'x'`) or a nested secret.
    guard = Guard(lambda: _secrets_in_scope(cls, kwargs, secrets))
    for a in attrs.fields(cls):
        alias = a.alias or a.name
        value = kwargs[alias] if alias in kwargs else _default(a, inst)
        if a.converter is not None and alias in kwargs:
            try:
                value = _run_converter(a, value, inst)
            except Exception as exc:  # noqa: BLE001
                message = describe_validation(exc, a, value, secrets.get(a.name, False), guard, what="converter")
                issues.append(Issue(join(path, a.name), message))
                continue
        object.__setattr__(inst, a.name, value)
    for a in attrs.fields(cls):
        if a.validator is None or not hasattr(inst, a.name):
            continue
        if partial and (a.alias or a.name) not in kwargs:
            continue
        value = getattr(inst, a.name)
        try:
            a.validator(inst, a, value)
        except Exception as exc:  # noqa: BLE001
            message = describe_validation(exc, a, value, secrets.get(a.name, False), guard)
            issues.append(Issue(join(path, a.name), message))
    if len(issues) > before or partial:
        return
    post_init = getattr(cls, "__attrs_post_init__", None)
    try:
        if post_init is not None:
            post_init(inst)
        cls(**kwargs)
    except Exception as exc:  # noqa: BLE001
        what = f"{cls.__qualname__}.__attrs_post_init__" if post_init is not None else f"building {cls.__qualname__}"
        issues.append(Issue(path, guard.text(str(exc) or type(exc).__name__, what=f"{what} failed", exc=exc)))


def _secrets_in_scope(cls: type[Any], kwargs: Mapping[str, Any], secrets: Mapping[str, bool]) -> Sequence[Any]:
    """The secret values a message about an instance of `cls` could quote: its secret
    fields (by init alias), secret keys of its mappings, and the secrets nested in the rest."""
    out: list[Any] = []
    for a in attrs.fields(cls):
        alias = a.alias or a.name
        if alias not in kwargs:
            continue
        value = kwargs[alias]
        if secrets.get(a.name):
            out.append(value)
            continue
        if isinstance(value, Mapping) and not attrs.has(type(value)):
            out += [v for k, v in value.items() if hidden(cls, a.name, k)]
        out += secrets_inside(value)
    return out
