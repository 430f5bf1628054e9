"""etcd with TLS (client certificates) and authentication: source, status and push work;
bad credentials, a wrong CA and bad endpoints fail in one line, secrets never shown."""

from __future__ import annotations

import io
import pathlib
import time
import uuid

import pytest

import selreload as sr
from selreload._cli import main
from selreload._etcd_access import access
from selreload._fleet import fleet_status, push

from .conftest import ROOT_PASSWORD, Kv, secure_access
from .etcd_server import EtcdServer
from .instances import wait_for
from .worker import App

pytestmark = pytest.mark.etcd


def _key() -> str:
    return f"/secure/{uuid.uuid4().hex[:12]}/config"


def _tls_args(server: EtcdServer) -> dict[str, str]:
    certs = server.tls
    assert certs is not None
    return {"ca_cert": str(certs.ca), "client_cert": str(certs.client_cert), "client_key": str(certs.client_key)}


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_source_status_and_push_over_tls_with_auth(secure_etcd: EtcdServer, tmp_path: pathlib.Path) -> None:
    """A Reloader on sr.Etcd over TLS as `root` loads, reports, follows a push, and keeps
    working after its 2-second auth token expired (it authenticates again)."""
    key = _key()
    kv = Kv(secure_access(secure_etcd))
    kv.put(key, "limit: 1\n")
    source = sr.Etcd(secure_etcd.endpoint, key, instance="s1", user="root", password=ROOT_PASSWORD,
                     lease_ttl=2, **_tls_args(secure_etcd))  # fmt: skip
    assert ROOT_PASSWORD not in repr(source) and "(TLS) as root" in repr(source)
    reloader = sr.Reloader(App, [source], name="secure")
    reloader.start()
    try:
        assert reloader.current.limit == 1
        where = secure_access(secure_etcd)
        wait_for(lambda: fleet_status(where, key).rows, timeout=10, what="the status row")
        time.sleep(3)  # past --auth-token-ttl=2: the next calls need a fresh token
        doc = tmp_path / "doc.yaml"
        doc.write_text("limit: 2\n")
        result = push(where, key, App, doc)
        assert result.exit_code == 0, result.message
        wait_for(lambda: reloader.current.limit == 2, timeout=10, what="limit 2 live")
        rows = wait_for(
            lambda: [r for r in fleet_status(where, key).rows if r.applied_revision == result.revision],
            timeout=10,
            what="the ACK of the push",
        )
        assert rows[0].instance == "s1" and rows[0].acked
    finally:
        reloader.stop()


def test_cli_reads_the_etcdctl_variables(secure_etcd: EtcdServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """`fleet status` takes the CA, certificate, key and `user:password` from ETCDCTL_*."""
    key = _key()
    Kv(secure_access(secure_etcd)).put(key, "limit: 1\n")
    certs = secure_etcd.tls
    assert certs is not None
    monkeypatch.setenv("ETCDCTL_CACERT", str(certs.ca))
    monkeypatch.setenv("ETCDCTL_CERT", str(certs.client_cert))
    monkeypatch.setenv("ETCDCTL_KEY", str(certs.client_key))
    monkeypatch.setenv("ETCDCTL_USER", f"root:{ROOT_PASSWORD}")
    code, out, err = run_cli("fleet", "status", "--etcd", secure_etcd.endpoint, "--key", key)
    assert code == 0, err
    assert "0 of 0" in out or "instances" in out


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"password": "wrong"}, "authentication failed"),
        ({"user": None}, "permission denied"),  # the certificate CN is not a user with rights
        ({"ca_cert": "other"}, "cannot reach etcd"),
    ],
)
def test_bad_credentials_and_a_wrong_ca_fail_in_one_line(
    secure_etcd: EtcdServer, change: dict[str, str | None], expected: str
) -> None:
    """Wrong password, no user, a CA that did not sign the server: one line naming the
    endpoint and the reason, without the password, from the CLI."""
    certs = secure_etcd.tls
    assert certs is not None
    args = ["fleet", "status", "--etcd", secure_etcd.endpoint, "--key", _key(), "--timeout", "2",
            "--cert", str(certs.client_cert), "--cert-key", str(certs.client_key)]  # fmt: skip
    ca = certs.other_ca if change.get("ca_cert") == "other" else certs.ca
    args += ["--cacert", str(ca)]
    if "user" not in change:
        args += ["--user", f"root:{change.get('password', ROOT_PASSWORD)}"]
    code, out, err = run_cli(*args)
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert expected in err and ROOT_PASSWORD not in err


def test_a_source_with_a_wrong_password_fails_start_in_one_line(secure_etcd: EtcdServer) -> None:
    source = sr.Etcd(secure_etcd.endpoint, _key(), user="root", password="nope", timeout=2, **_tls_args(secure_etcd))
    with pytest.raises(sr.ConfigError, match="authentication failed") as info:
        sr.Reloader(App, [source], name="badpw").start()
    assert len(str(info.value).splitlines()) == 1 and "nope" not in str(info.value)


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("127.0.0.1:abc", "the port is not a number"),
        ("127.0.0.1:99999", "out of range"),
        ("ftp://127.0.0.1:2379", "unsupported scheme"),
        ("http://:2379", "the host is empty"),
        ("http://a:1,https://b:2", "mixes http:// and https://"),
        (" , ", "no etcd endpoint"),
    ],
)
def test_bad_endpoints_are_one_line_cli_errors(endpoint: str, expected: str) -> None:
    """Every malformed --etcd is a usage error (exit 2) whose one error line says what is
    wrong, never a traceback."""
    code, _out, err = run_cli("fleet", "status", "--etcd", endpoint, "--key", "/k")
    last = err.strip().splitlines()[-1]
    assert code == 2 and "Traceback" not in err and "error: argument --etcd" in last and expected in last, err


def test_access_never_shows_the_password() -> None:
    got = access("https://127.0.0.1:1", user="ops:hunter2", environ={})
    assert got.user == "ops" and got.password == "hunter2"
    assert "hunter2" not in repr(got) and "hunter2" not in str(got)
    with pytest.raises(ValueError, match="no password"):
        access("127.0.0.1:1", user="ops", environ={})
    with pytest.raises(ValueError, match="cannot read"):
        access("https://127.0.0.1:1", ca_cert="/nonexistent/ca.pem", environ={})
