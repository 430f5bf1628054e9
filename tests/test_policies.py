"""Policy files: the shipped ones reproduce their splits; bad files fail with the place named."""

from __future__ import annotations

import pathlib

import pytest
from prometheus_client import CollectorRegistry

import selreload as sr
from selreload._policy import load_policies
from selreload._schema import Schema
from selreload.demo import ADR_POLICY, AdrConfig

POLICIES = pathlib.Path(__file__).resolve().parent.parent / "selreload" / "policies"  # shipped in the wheel
WEB = POLICIES / "web-service.yaml"
STRICT = POLICIES / "production-strict.yaml"

ADR_HOT = {"logging.level", "api.v2_enabled", "telemetry.sampler.type", "telemetry.sampler.ratio", "auth.jwt.ttl"}
ADR_SECRET = {"auth.jwt_secret", "auth.admin_master_password"}


def split(schema: Schema) -> tuple[set[str], set[str], set[str]]:
    """(hot, restart-only, secret) leaf paths."""
    hot = {p for p, leaf in schema.leaves.items() if leaf.policy is sr.Policy.HOT}
    restart = set(schema.leaves) - hot
    secret = {p for p, leaf in schema.leaves.items() if leaf.secret}
    return hot, restart, secret


def schema_with(*files: pathlib.Path | str, cls: type = AdrConfig) -> Schema:
    return Schema(cls, policies=load_policies(list(files)))


def write(tmp_path: pathlib.Path, text: str, name: str = "policy.yaml") -> pathlib.Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- the shipped files ------------------------------------------------------------------


def test_adr_config_alone_is_all_restart_only() -> None:
    """Without a policy file the demo shape is fail-safe: every leaf restart-only, credentials secret."""
    hot, restart, secret = split(Schema(AdrConfig))
    assert hot == set() and len(restart) == 11 and secret == ADR_SECRET


def test_web_service_reproduces_the_adr_split_exactly() -> None:
    """web-service.yaml: hot exactly the web service split's five leaves; server, database
    and both credentials restart-only."""
    hot, restart, secret = split(schema_with(WEB))
    assert hot == ADR_HOT
    assert restart == {
        "server.host",
        "server.port",
        "database.url",
        "database.pool_size",
        "auth.jwt_secret",
        "auth.admin_master_password",
    }
    assert secret == ADR_SECRET


def test_adr_policy_constant_matches_the_file() -> None:
    """`ADR_POLICY` (shipped in the package) states the same globs as selreload/policies/web-service.yaml."""
    loaded = sr.load_policy_file(WEB)
    assert (loaded.hot, loaded.restart, loaded.secret) == (ADR_POLICY.hot, ADR_POLICY.restart, ADR_POLICY.secret)


def test_production_strict_leaves_only_logging_and_the_flag_hot() -> None:
    """production-strict.yaml alone, or after web-service.yaml: only logging.level and api.v2_enabled are hot."""
    for schema in (schema_with(STRICT), schema_with(WEB, STRICT)):
        hot, _restart, secret = split(schema)
        assert hot == {"logging.level", "api.v2_enabled"}
        assert secret == ADR_SECRET


def test_web_service_policy_through_a_reloader(tmp_path: pathlib.Path) -> None:
    """With the file, a hot edit applies and a restart-only one is rejected and pending; the secret stays masked."""
    cfg = write(tmp_path, "auth: {jwt_secret: s3cret-one}\n", "config.yaml")
    reloader = sr.Reloader(AdrConfig, [sr.YamlFile(cfg, watch=False)], policies=WEB, registry=CollectorRegistry())
    reloader.start()
    cfg.write_text("logging: {level: debug}\nserver: {port: 9000}\nauth: {jwt_secret: s3cret-two}\n")
    result = reloader.reload()
    assert result.outcome is sr.Outcome.APPLIED
    assert [c.path for c in result.applied] == ["logging.level"]
    assert [c.path for c in result.rejected] == ["server.port", "auth.jwt_secret"]
    assert reloader.status()["restart_pending"] == ["server.port", "auth.jwt_secret"]
    assert "s3cret" not in repr(result) and "s3cret" not in str(reloader.plan())


# --- tightening and loosening -----------------------------------------------------------


@sr.config
class Logging:
    level: str = sr.hot(default="info")
    json: bool = False


@sr.config
class Declared:
    logging: Logging = sr.field(factory=Logging)
    token: str = sr.secret(default="", hot=True)
    flags: dict[str, bool] = sr.hot(factory=dict)
    levels: dict[str, str] = sr.hot(factory=dict)


def test_policy_file_tightens_freely(tmp_path: pathlib.Path) -> None:
    """`restart:` makes a declared-hot leaf restart-only; `secret:` masks a leaf; both allowed on any leaf."""
    path = write(tmp_path, "restart: ['logging.*']\nsecret: [logging.json]\n")
    schema = schema_with(path, cls=Declared)
    assert schema.leaves["logging.level"].policy is sr.Policy.RESTART_ONLY
    assert schema.leaves["logging.json"].secret


def test_tighter_kind_wins_in_one_file(tmp_path: pathlib.Path) -> None:
    """When a hot glob and a restart glob of the same file both match, the leaf is restart-only."""
    path = write(tmp_path, "hot: [logging.json]\nrestart: ['logging.*']\n")
    assert schema_with(path, cls=Declared).leaves["logging.json"].policy is sr.Policy.RESTART_ONLY


def test_later_file_overrides_earlier() -> None:
    """Files apply in order: web-service makes the sampler hot, production-strict after it takes that back."""
    assert schema_with(WEB).leaves["telemetry.sampler.ratio"].policy is sr.Policy.HOT
    assert schema_with(WEB, STRICT).leaves["telemetry.sampler.ratio"].policy is sr.Policy.RESTART_ONLY


def test_policy_file_globs_reach_mapping_keys_with_dots(tmp_path: pathlib.Path) -> None:
    """Globs may name keys inside a mapping field, including keys that hold dots (logger names)."""
    path = write(tmp_path, "restart: ['flags.beta_*']\nsecret: ['levels.com.example.*']\n")
    schema = schema_with(path, cls=Declared)
    assert schema.policy_of("flags.beta_search") == (sr.Policy.RESTART_ONLY, False)
    assert schema.policy_of("flags.new_checkout") == (sr.Policy.HOT, False)
    assert schema.policy_of("levels.com.example.db") == (sr.Policy.RESTART_ONLY, True)
    assert schema.policy_of("levels.org.other") == (sr.Policy.HOT, False)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            ["hot: [auth.jwt_secret]\n"],
            r"policy0\.yaml:1:7: hot: 'auth.jwt_secret' would make secret 'auth.jwt_secret'",
        ),
        (["hot: ['auth.*']\n"], r"policy0\.yaml:1:7: hot: 'auth.\*' would make secret 'auth.jwt_secret' hot"),
        (["secret: [database.url]\n", "restart: [server.host]\nhot: [database.url]\n"], r"policy1\.yaml:2:7: hot"),
    ],
)
def test_loosening_a_secret_is_refused(tmp_path: pathlib.Path, files: list[str], message: str) -> None:
    """A hot glob covering a secret (declared, or made secret by an earlier file) is a PolicyError naming the line."""
    paths = [write(tmp_path, text, f"policy{i}.yaml") for i, text in enumerate(files)]
    with pytest.raises(sr.PolicyError, match=message) as info:
        schema_with(*paths)
    assert "secrets can only be made hot in code" in str(info.value)


def test_reloader_refuses_a_policy_that_loosens_a_secret(tmp_path: pathlib.Path) -> None:
    """The Reloader fails at construction, before reading any config."""
    path = write(tmp_path, "hot: [auth.admin_master_password]\n")
    with pytest.raises(sr.PolicyError, match="admin_master_password"):
        sr.Reloader(AdrConfig, [], policies=path, registry=CollectorRegistry())


# --- bad files --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "hot:\n  - logging.level\n  - logging.levle\n",
            r":3:5: hot: 'logging.levle' matches no field; did you mean 'logging.level'\?",
        ),
        ("restart: ['databse.*']\n", r":1:11: restart: 'databse.\*' matches no field"),
        ("hot: [logging.level\n", r":1:6: YAML syntax error: '\[' is not closed \(at 2:1: expected ',' or '\]'"),
        ("hot: [a]\nhot: [b]\n", r":2:1: duplicate key 'hot': each key may appear once"),
        ("hott: [logging.level]\n", r":1:1: unknown key 'hott'; did you mean 'hot'\?"),
        ("reload: [x]\n", r":1:1: unknown key 'reload'; expected hot, restart, secret"),
        ("hot: logging.level\n", r":1:6: hot: expected a list of path globs, got 'logging.level'"),
        ("hot: false\n", r":1:6: hot: expected a list of path globs, got False"),
        ("secret:\n  - auth.jwt_secret\n  - 3\n", r":3:5: secret: expected a path glob, got 3"),
        ("hot: ['']\n", r":1:7: hot: expected a path glob, got ''"),
        ("- logging.level\n", r": expected a mapping with keys hot, restart, secret"),
    ],
)
def test_bad_policy_files_name_the_place(tmp_path: pathlib.Path, text: str, message: str) -> None:
    """Typo'd globs, bad YAML, unknown keys and wrong shapes are PolicyErrors starting `file:line:col`."""
    path = write(tmp_path, text)
    with pytest.raises(sr.PolicyError, match=r"^" + str(path).replace(".", r"\.") + message):
        schema_with(path)


def test_unreadable_policy_files(tmp_path: pathlib.Path) -> None:
    """A missing file or one that is not UTF-8 is a PolicyError naming the file."""
    with pytest.raises(sr.PolicyError, match=r"nope\.yaml: cannot read policy file"):
        sr.load_policy_file(tmp_path / "nope.yaml")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfehot: []\n")
    with pytest.raises(sr.PolicyError, match=r"bin\.yaml: cannot read policy file"):
        sr.load_policy_file(binary)


def test_empty_and_annotated_files_are_fine(tmp_path: pathlib.Path) -> None:
    """An empty file overrides nothing; `name:`/`description:` are for people; `hot:` with no items is empty."""
    assert split(schema_with(write(tmp_path, ""))) == split(Schema(AdrConfig))
    loaded = sr.load_policy_file(write(tmp_path, "name: x\ndescription: y\nhot:\nrestart: [server.port]\n"))
    assert (loaded.hot, loaded.restart, loaded.secret) == ((), ("server.port",), ())
