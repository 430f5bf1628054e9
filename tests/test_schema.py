"""Declaring config: policy resolution from leaf to root, secrets, policy-file overrides."""

from __future__ import annotations

import attrs
import pytest

import selreload as sr
from selreload._schema import Schema


@sr.config
class Sampler:
    type: str = "always_on"
    ratio: float = sr.restart_only(default=1.0)


@sr.config
class Telemetry:
    sampler: Sampler = sr.field(factory=Sampler)
    endpoint: str = ""


@sr.config
class Db:
    url: str = ""
    password: str = sr.secret(default="")
    token: str = sr.secret(default="", hot=True)


@sr.config
class Root:
    telemetry: Telemetry = sr.hot(factory=Telemetry)
    db: Db = sr.field(factory=Db)
    debug: bool = False
    flags: dict[str, bool] = sr.hot(factory=dict)


def policies(schema: Schema) -> dict[str, tuple[str, bool]]:
    return {p: (leaf.policy.value, leaf.secret) for p, leaf in schema.leaves.items()}


def test_nearest_explicit_policy_wins() -> None:
    """A leaf takes the nearest explicit policy on the way up; none anywhere means restart-only."""
    assert policies(Schema(Root)) == {
        "telemetry.sampler.type": ("hot", False),  # inherits hot from `telemetry`
        "telemetry.sampler.ratio": ("restart_only", False),  # its own policy is nearer
        "telemetry.endpoint": ("hot", False),
        "db.url": ("restart_only", False),  # nothing above it: fail safe
        "db.password": ("restart_only", True),
        "db.token": ("hot", True),  # secret(hot=True): credential rotation
        "debug": ("restart_only", False),
        "flags": ("hot", False),
    }


def test_mapping_keys_take_the_mapping_policy() -> None:
    """A key inside a mapping field has the field's policy."""
    assert Schema(Root).policy_of("flags.new_checkout") == (sr.Policy.HOT, False)


def test_secret_repr_is_masked() -> None:
    """repr of a config never shows a secret."""
    text = repr(Root(db=Db(password="pa55word", token="t0ken")))
    assert "pa55word" not in text and "t0ken" not in text and "password=***" in text


def test_config_is_frozen_and_slotted() -> None:
    """@sr.config makes frozen, slotted attrs classes."""
    assert attrs.has(Root) and "__slots__" in vars(Root)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        Root().debug = True  # type: ignore[misc]


def test_policy_file_tightens() -> None:
    """A policy set may make hot leaves restart-only."""
    schema = Schema(Root, policies=[sr.PolicySet(restart=("telemetry.*",))])
    assert schema.leaves["telemetry.sampler.type"].policy is sr.Policy.RESTART_ONLY
    assert schema.leaves["telemetry.endpoint"].policy is sr.Policy.RESTART_ONLY


def test_policy_file_loosens_plain_fields() -> None:
    """A policy set may make a restart-only (non-secret) leaf hot."""
    schema = Schema(Root, policies=[sr.PolicySet(hot=("debug",))])
    assert schema.leaves["debug"].policy is sr.Policy.HOT


def test_policy_file_cannot_loosen_a_secret() -> None:
    """Making a secret hot from a policy file is refused."""
    with pytest.raises(sr.PolicyError, match="secret 'db.password'"):
        Schema(Root, policies=[sr.PolicySet(hot=("db.*",))])


def test_policy_file_can_mark_secret() -> None:
    """`secret:` in a policy file masks the leaf and makes it restart-only."""
    schema = Schema(Root, policies=[sr.PolicySet(secret=("telemetry.endpoint",))])
    leaf = schema.leaves["telemetry.endpoint"]
    assert (leaf.policy, leaf.secret) == (sr.Policy.RESTART_ONLY, True)


def test_policy_glob_matching_nothing_is_an_error() -> None:
    """A glob that matches no field is a typo, reported with a suggestion."""
    with pytest.raises(sr.PolicyError, match="did you mean 'telemetry.endpoint'"):
        Schema(Root, policies=[sr.PolicySet(hot=("telemetry.endpiont",))])


def test_tighter_glob_in_same_file_wins() -> None:
    """When hot and restart globs of one file both match, restart wins."""
    schema = Schema(Root, policies=[sr.PolicySet(hot=("telemetry.*",), restart=("telemetry.endpoint",))])
    assert schema.leaves["telemetry.endpoint"].policy is sr.Policy.RESTART_ONLY
    assert schema.leaves["telemetry.sampler.type"].policy is sr.Policy.HOT


def test_policy_glob_may_name_mapping_keys() -> None:
    """Globs under a mapping field apply to its keys."""
    schema = Schema(Root, policies=[sr.PolicySet(restart=("flags.billing_*",))])
    assert schema.policy_of("flags.billing_v2") == (sr.Policy.RESTART_ONLY, False)
    assert schema.policy_of("flags.dark_mode") == (sr.Policy.HOT, False)


def test_not_a_config_class() -> None:
    """A schema must be an attrs class."""
    with pytest.raises(TypeError, match="not a config class"):
        Schema(dict)


@sr.config
class _Section:
    level: str = sr.hot(default="info")


def test_an_optional_section_is_refused_when_the_reloader_is_built() -> None:
    """`sub: Section | None = None` has no leaves while it is None: refused up front, with
    the path and what to write instead, never an AttributeError in start()."""

    @sr.config
    class App:
        sub: _Section | None = sr.hot(default=None)

    with pytest.raises(TypeError, match=r"^sub: a config section cannot be optional \(_Section \| None\)"):
        sr.Reloader(App, [sr.Env(prefix="NOPE_", environ={})])


def test_a_section_with_a_default_instance_loads_and_reloads() -> None:
    """What the error suggests works: a default instance of the section."""

    @sr.config
    class App:
        sub: _Section = sr.field(factory=_Section)

    env = {"APP_SUB__LEVEL": "debug"}
    reloader = sr.Reloader(App, [sr.Env(environ=env)])
    reloader.start()
    assert reloader.current.sub.level == "debug"
    env["APP_SUB__LEVEL"] = "warning"
    assert reloader.reload().outcome is sr.Outcome.APPLIED
    assert reloader.current.sub.level == "warning"
    reloader.stop()
