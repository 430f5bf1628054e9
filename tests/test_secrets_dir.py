"""`sr.SecretsDir` and `Env`'s `*_FILE` variables: secrets from files, rotated live by a Kubernetes `..data` swap."""

from __future__ import annotations

import logging
import os
import pathlib
import time
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry

import selreload as sr


@sr.config
class Database:
    host: str = sr.restart_only(default="localhost")
    port: int = sr.restart_only(default=5432)
    password: str = sr.secret(hot=True, default="")  # credential rotation
    admin_token: str = sr.secret(default="")  # restart-only


@sr.config
class App:
    database: Database = sr.field(factory=Database)
    api_key: str = sr.secret(hot=True, default="")


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return False


def reloader(*sources: object) -> sr.Reloader[App]:
    return sr.Reloader(App, list(sources), registry=CollectorRegistry())  # type: ignore[arg-type]


class SecretVolume:
    """A directory laid out as the kubelet mounts a Secret: `name -> ..data/name`, `..data -> ..<version>`."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self.version = 0

    def publish(self, files: dict[str, str]) -> None:
        self.version += 1
        stamp = self.root / f"..2026_01_01_00_00_0{self.version}.{os.getpid()}"
        stamp.mkdir()
        for name, text in files.items():
            (stamp / name).write_text(text)
        old = os.readlink(self.root / "..data") if (self.root / "..data").is_symlink() else None
        os.symlink(stamp.name, self.root / "..data_tmp")
        os.replace(self.root / "..data_tmp", self.root / "..data")  # the one atomic step
        for name in files:
            if not (self.root / name).is_symlink():
                os.symlink(f"..data/{name}", self.root / name)
        if old is not None:
            for f in (self.root / old).iterdir():
                f.unlink()
            (self.root / old).rmdir()


def test_one_file_per_key_nested_by_double_underscore(tmp_path: pathlib.Path) -> None:
    """`database__password` sets database.password, trailing newline stripped, origin the file."""
    (tmp_path / "database__password").write_text("s3cret\n")
    (tmp_path / "database__port").write_text("6543\n")
    (tmp_path / "api_key").write_text(" spaced key ")
    (tmp_path / ".hidden").write_text("not a setting")
    (tmp_path / "subdir").mkdir()
    snap = reloader(sr.SecretsDir(tmp_path, watch=False)).start()
    assert snap.config.database.password == "s3cret"
    assert snap.config.database.port == 6543  # parsed by the field's type, like env
    assert snap.config.api_key == " spaced key "  # only the newline goes: spaces may be the secret
    assert snap.origins["database.password"] == f"secrets:{tmp_path}/database__password"


def test_prefix_and_missing_directory(tmp_path: pathlib.Path) -> None:
    """Only files under the prefix are read; a missing directory is an absent layer, or an error when required."""
    (tmp_path / "app_api_key").write_text("k")
    (tmp_path / "other_service_token").write_text("x")
    assert reloader(sr.SecretsDir(tmp_path, prefix="app_", watch=False)).start().config.api_key == "k"
    assert reloader(sr.SecretsDir(tmp_path / "nope", watch=False)).start().config.api_key == ""
    with pytest.raises(sr.ConfigError, match="required secrets directory is missing"):
        reloader(sr.SecretsDir(tmp_path / "nope", required=True, watch=False)).start()


def test_unknown_file_bad_value_and_binary_are_named_by_file_without_the_value(tmp_path: pathlib.Path) -> None:
    """Problems name the file; a secret's content never appears in a message."""
    (tmp_path / "database__pasword").write_text("hunter2-typo")
    (tmp_path / "database__port").write_text("eighty")
    (tmp_path / "api_key").write_bytes(b"\xff\xfe")
    with pytest.raises(sr.ConfigError) as info:
        reloader(sr.SecretsDir(tmp_path, watch=False)).start()
    text = str(info.value)
    assert f"secrets:{tmp_path}/api_key: not UTF-8 text" in text
    # The first pass fails on the file it cannot read; fix it and the others are named.
    (tmp_path / "api_key").write_text("k")
    with pytest.raises(sr.ConfigError) as info:
        reloader(sr.SecretsDir(tmp_path, watch=False)).start()
    text = str(info.value)
    assert f"secrets:{tmp_path}/database__pasword: database.pasword: unknown key" in text
    assert "did you mean 'password'" in text
    assert f"secrets:{tmp_path}/database__port: database.port: expected an int" in text
    assert "hunter2" not in text


def test_kubernetes_data_swap_rotates_a_hot_secret_live_and_a_restart_only_one_pends(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A `..data` swap reloads: secret(hot=True) rotates live; a restart-only secret is rejected, restart pending."""
    caplog.set_level(logging.DEBUG, logger="selreload")
    volume = SecretVolume(tmp_path)
    volume.publish({"database__password": "rotation-one\n", "database__admin_token": "admin-one\n"})
    r = reloader(sr.SecretsDir(tmp_path))
    with r:
        assert r.current.database.password == "rotation-one"
        volume.publish({"database__password": "rotation-two\n", "database__admin_token": "admin-one\n"})
        assert wait_for(lambda: r.current.database.password == "rotation-two"), r.status()
        assert r.snapshot.origins["database.password"] == f"secrets:{tmp_path}/database__password"
        volume.publish({"database__password": "rotation-two\n", "database__admin_token": "admin-two\n"})
        assert wait_for(lambda: r.status()["restart_pending"] == ["database.admin_token"]), r.status()
        assert r.current.database.admin_token == "admin-one"
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    for value in ("rotation-one", "rotation-two", "admin-one", "admin-two"):
        assert value not in logged


def test_a_swap_during_the_read_never_mixes_two_versions(tmp_path: pathlib.Path) -> None:
    """Values are read through one resolution of `..data`: every key from the same version."""
    volume = SecretVolume(tmp_path)
    volume.publish({"database__password": "v1", "api_key": "v1"})
    source = sr.SecretsDir(tmp_path, watch=False)
    for n in range(2, 30):
        volume.publish({"database__password": f"v{n}", "api_key": f"v{n}"})
        tree = source.load().tree
        assert tree is not None
        assert tree["database"]["password"] == tree["api_key"] == f"v{n}"


# --- Env: APP_X_FILE ----------------------------------------------------------------------


def test_env_file_variable_reads_the_file_as_the_value(tmp_path: pathlib.Path) -> None:
    """`APP_DATABASE__PASSWORD_FILE=/run/secrets/db` sets database.password to the file's text."""
    secret = tmp_path / "db"
    secret.write_text("from-a-file\n")
    env = {"APP_DATABASE__PASSWORD_FILE": str(secret), "APP_DATABASE__PORT": "7000"}
    snap = reloader(sr.Env("APP_", env, watch=False)).start()
    assert snap.config.database.password == "from-a-file"
    assert snap.config.database.port == 7000
    assert snap.origins["database.password"] == "env:APP_DATABASE__PASSWORD_FILE"


def test_env_file_errors_name_the_variable(tmp_path: pathlib.Path) -> None:
    """A missing file, and a value set both directly and by `_FILE`, are issues of the variable."""
    env = {"APP_API_KEY_FILE": str(tmp_path / "missing")}
    with pytest.raises(sr.ConfigError, match=r"env:APP_API_KEY_FILE: file .*missing: no such file"):
        reloader(sr.Env("APP_", env, watch=False)).start()
    (tmp_path / "key").write_text("k")
    env = {"APP_API_KEY": "k2", "APP_API_KEY_FILE": str(tmp_path / "key")}
    with pytest.raises(sr.ConfigError, match="set by both APP_API_KEY and APP_API_KEY_FILE: use one"):
        reloader(sr.Env("APP_", env, watch=False)).start()


def test_env_file_suffix_none_reads_the_variable_as_a_plain_value(tmp_path: pathlib.Path) -> None:
    """`file_suffix=None`: `APP_API_KEY_FILE` is the key `api_key_file` (here an unknown key)."""
    env = {"APP_API_KEY_FILE": "x"}
    with pytest.raises(sr.ConfigError, match="api_key_file: unknown key"):
        reloader(sr.Env("APP_", env, file_suffix=None)).start()


def test_env_file_is_watched_and_rotates(tmp_path: pathlib.Path) -> None:
    """The file a `_FILE` variable names is watched: replacing it rotates a hot secret live."""
    secret = tmp_path / "api_key"
    secret.write_text("first\n")
    r = reloader(sr.Env("APP_", {"APP_API_KEY_FILE": str(secret)}))
    with r:
        assert r.current.api_key == "first"
        (tmp_path / "next").write_text("second\n")
        os.replace(tmp_path / "next", secret)
        assert wait_for(lambda: r.current.api_key == "second"), r.status()
