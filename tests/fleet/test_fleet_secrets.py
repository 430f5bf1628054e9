"""No secret in the fleet channels: the etcd status keys and `selreload fleet status`,
after NACKs whose causes quote the secret (a YAML tag error, a validator, a DSN)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import attrs
import pytest

import selreload as sr
from selreload._cli import main

from .conftest import Kv
from .etcd_server import EtcdServer
from .instances import wait_for

pytestmark = pytest.mark.etcd

MARKER = "FLEETSECRET-qz9w"


def no_marker(inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    # A careless validator: its message quotes the value it refuses.
    if ":" in value:
        raise ValueError(f"token {value!r} must not contain ':'")


@sr.config
class App:
    level: str = sr.hot(default="info")
    token: str = sr.secret(default="", hot=True, validator=no_marker)
    db_url: str = sr.hot(default="")  # not declared secret: its URL password still is
    api_key: str = sr.hot(default="")  # named like a credential: masked by the default rules


@pytest.fixture
def reloader(etcd: EtcdServer, kv: Kv, key: str) -> Iterator[sr.Reloader[App]]:
    kv.put(key, f"level: info\ntoken: {MARKER}\ndb_url: postgresql://app:{MARKER}@db/app\napi_key: {MARKER}\n")
    r = sr.Reloader(App, [sr.Etcd(etcd.endpoint, key, instance="s1", lease_ttl=2)])
    r.start()
    try:
        yield r
    finally:
        r.stop()


@pytest.mark.parametrize(
    "document",
    [
        f"level: debug\ntoken: !!int {MARKER}\n",  # a tag error on the secret
        f"level: debug\ntoken: 'x:{MARKER}'\n",  # a validator quoting the secret
        f"level: [{MARKER}\n",  # a syntax error next to it
    ],
)
def test_status_keys_and_fleet_status_never_show_a_secret(
    reloader: sr.Reloader[App],
    etcd: EtcdServer,
    kv: Kv,
    key: str,
    document: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every status key, `fleet status` (table and JSON) and the logs after a NACK: no marker."""
    caplog.set_level(logging.DEBUG)
    rev = kv.put(key, document)
    wait_for(lambda: reloader.status()["last_outcome"] == "invalid", timeout=10, what="the NACK")
    statuses = kv.prefix(f"{key}.status/")
    wait_for(lambda: f"@{rev}" in str(kv.prefix(f"{key}.status/")) or bool(statuses), timeout=10, what="a status")
    texts = [v.decode() for v in kv.prefix(f"{key}.status/").values()]
    assert any('"errors": [' in t or '"errors":[' in t for t in texts) and any("invalid" in t for t in texts), texts
    for as_json in ([], ["--json"]):
        out, err = io.StringIO(), io.StringIO()
        main(["fleet", "status", "--etcd", etcd.endpoint, "--key", key, *as_json], out=out, err=err)
        texts += [out.getvalue(), err.getvalue()]
    texts += [r.getMessage() for r in caplog.records]
    texts += [str(reloader.status()), repr(reloader.current)]
    assert texts and not [t for t in texts if MARKER in t]


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_fleet_overrides_never_show_a_secret(
    reloader: sr.Reloader[App], etcd: EtcdServer, kv: Kv, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """`set token=<marker> --etcd` is refused (a secret), by the CLI with --schema and by
    the instance without, never echoing it; a hot override holding the marker as a URL
    password is applied, and no channel shows it: `set`, `status --etcd` (table and JSON),
    the status keys, the logs, the reloader's status."""
    caplog.set_level(logging.DEBUG)
    at = ("--etcd", etcd.endpoint, "--key", key)
    texts: list[str] = []
    code, out, err = cli("set", f"token={MARKER}", *at, "--schema", "tests.fleet.test_fleet_secrets:App")
    assert code == 1 and "token: secret" in err and "nothing written" in err, err
    texts += [out, err]
    code, out, err = cli("set", f"token={MARKER}", *at, "--timeout", "10")
    assert code == 1 and "s1: refused: token: secret" in err, (out, err)
    texts += [out, err]
    for extra in ((), ("--json",)):
        code, out, err = cli("set", f"db_url=postgresql://app:{MARKER}@db2/app", *at, "--timeout", "10", *extra)
        assert code == 0, (out, err)
        texts += [out, err]
    assert reloader.current.db_url.endswith("@db2/app")
    for extra in ((), ("--json",)):
        code, out, err = cli("status", *at, *extra)
        assert code == 0 and "db_url" in out, (out, err)
        texts += [out, err]
    texts += [v.decode() for v in kv.prefix(f"{key}.status/").values()]
    texts += [r.getMessage() for r in caplog.records]
    texts += [str(reloader.status()), repr(reloader.current)]
    assert not [t for t in texts if MARKER in t]
