"""How to reach one etcd cluster: endpoints, TLS material and credentials (`Access`).

Arguments win; what they leave out comes from the variables etcdctl reads
(`ETCDCTL_ENDPOINTS` is not read: the endpoint is always named). Secrets (the password,
the client key) never appear in a repr or a message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from . import _args

DEFAULT_PORT = 2379


def parse_endpoints(endpoints: str | Sequence[str]) -> tuple[tuple[str, int], ...]:
    """`"http://10.0.0.1:2379,10.0.0.2"` (or a list of those) -> `((host, port), ...)`.

    Raises:
        ValueError: no endpoint, a scheme other than http/https, an empty host, or a port
            that is not a number in 1..65535.
    """
    return _parse(endpoints)[0]


def _parse(endpoints: str | Sequence[str]) -> tuple[tuple[tuple[str, int], ...], set[str]]:
    if not isinstance(endpoints, str | list | tuple):
        raise ValueError(f"etcd endpoints: expected a string or a list of strings, got {endpoints!r}")
    items = endpoints.split(",") if isinstance(endpoints, str) else [str(e) for e in endpoints]
    out: list[tuple[str, int]] = []
    schemes: set[str] = set()
    for raw in items:
        text = raw.strip()
        if not text:
            continue
        scheme, sep, rest = text.partition("://")
        if not sep:
            scheme, rest = "", text
        elif scheme not in ("http", "https"):
            raise ValueError(f"{text}: unsupported scheme {scheme!r} (expected http:// or https://)")
        schemes.add(scheme)
        rest = rest.rstrip("/")
        if "/" in rest:
            raise ValueError(f"{text}: expected host:port, got a path")
        if rest.startswith("["):  # [::1]:2379
            host, _, tail = rest[1:].partition("]")
            port_text = tail.removeprefix(":")
        elif rest.count(":") == 1:
            host, port_text = rest.split(":")
        else:
            host, port_text = rest, ""
        if not host:
            raise ValueError(f"{text}: expected host:port, the host is empty")
        try:
            port = int(port_text) if port_text else DEFAULT_PORT
        except ValueError:
            raise ValueError(f"{text}: expected host:port, the port is not a number") from None
        if not 0 < port < 65536:
            raise ValueError(f"{text}: port {port} is out of range (1-65535)")
        out.append((host, port))
    if not out:
        raise ValueError(f"no etcd endpoint in {endpoints!r}")
    return tuple(out), schemes


def show_endpoints(endpoints: Sequence[tuple[str, int]]) -> str:
    """`((host, port), ...)` as `host:port,[::1]:port` for messages."""
    return ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in endpoints)


def _read(what: str, path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise ValueError(f"{what} {path}: cannot read: {exc.strerror or exc}") from None


@attrs.frozen(repr=False)
class Access:
    """Endpoints, TLS material (read once, at construction) and credentials.

    Attributes:
        hosts: `((host, port), ...)`, tried in order.
        tls: speak TLS (an `https://` endpoint, or a CA bundle or client certificate given).
        ca: the CA bundle (PEM), `None` for the system roots.
        cert, cert_key: the client certificate and its key (PEM), or `None`.
        server_name: the name the server certificate must carry, if not the host's.
        user, password: etcd credentials, or `None`.
    """

    hosts: tuple[tuple[str, int], ...]
    tls: bool = False
    ca: bytes | None = None
    cert: bytes | None = None
    cert_key: bytes | None = None
    server_name: str | None = None
    user: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        return f"<Access {self}>"

    def __str__(self) -> str:
        """The endpoints, TLS or not, and the user: never a secret."""
        return show_endpoints(self.hosts) + (" (TLS)" if self.tls else "") + (f" as {self.user}" if self.user else "")

    def credentials(self) -> Any:
        """gRPC channel credentials for TLS (`None`: plain gRPC)."""
        if not self.tls:
            return None
        import grpc  # type: ignore[import-untyped]

        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.cert_key, certificate_chain=self.cert
        )


def access(
    endpoints: str | Sequence[str] | Access,
    *,
    ca_cert: str | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
    server_name: str | None = None,
    user: str | None = None,
    password: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Access:
    """An `Access` from arguments, completed from `ETCDCTL_CACERT`, `ETCDCTL_CERT`,
    `ETCDCTL_KEY`, `ETCDCTL_USER` (`user` or `user:password`) and `ETCDCTL_PASSWORD`.

    Args:
        environ: where the variables come from (default `os.environ`; `{}` for none).

    Raises:
        ValueError: a bad endpoint, mixed http/https endpoints, an unreadable file, a
            certificate without its key, or a user without a password (one line each).
    """
    if isinstance(endpoints, Access):
        return endpoints
    # An int would be opened as a file descriptor (1: stdout, read and then closed).
    _args.every("etcd", _args.path, ca_cert=ca_cert, client_cert=client_cert, client_key=client_key)
    _args.every("etcd", lambda w, n, v: _args.text(w, n, v, empty=True), server_name=server_name, user=user)
    if password is not None and not isinstance(password, str):
        raise TypeError(f"etcd: password must be a str, got {_args.got(password, secret=True)}")
    env = os.environ if environ is None else environ
    hosts, schemes = _parse(endpoints)
    if {"http", "https"} <= schemes:
        raise ValueError(f"{endpoints}: mixes http:// and https:// endpoints")

    def pick(value: str | None, var: str) -> tuple[str, str] | None:
        if value:
            return value, "argument"
        got = env.get(var)
        return (got, var) if got else None

    ca_at, cert_at, key_at = (
        pick(ca_cert, "ETCDCTL_CACERT"),
        pick(client_cert, "ETCDCTL_CERT"),
        pick(client_key, "ETCDCTL_KEY"),
    )
    if (cert_at is None) != (key_at is None):
        raise ValueError("etcd TLS: a client certificate needs its key, and a key its certificate")
    if "http" in schemes:
        if ca_cert or client_cert or client_key:
            # An explicit http:// that silently turned into TLS (or a CA that silently went
            # unused) would hide a configuration mistake.
            raise ValueError(f"{endpoints}: TLS files are given: use https:// endpoints")
        ca_at = cert_at = key_at = None  # ETCDCTL_* TLS files meant for another cluster
    ca = _read(f"etcd CA bundle ({ca_at[1]})", ca_at[0]) if ca_at else None
    cert = _read(f"etcd client certificate ({cert_at[1]})", cert_at[0]) if cert_at else None
    cert_key = _read(f"etcd client key ({key_at[1]})", key_at[0]) if key_at else None
    name = user or None
    secret = password
    if name is None and env.get("ETCDCTL_USER"):
        name = env["ETCDCTL_USER"]
    if name is not None and ":" in name:
        name, _, inline = name.partition(":")
        secret = secret if secret is not None else inline
    if name is not None and secret is None:
        secret = env.get("ETCDCTL_PASSWORD")
    if name is not None and not name:
        raise ValueError("etcd user: the user name is empty")
    if name is not None and secret is None:
        raise ValueError(f"etcd user {name}: no password (give user:password or set ETCDCTL_PASSWORD)")
    if name is None and password is not None:
        raise ValueError("etcd password given without a user")
    tls = "https" in schemes or ca is not None or cert is not None
    return Access(hosts, tls, ca, cert, cert_key, server_name or None, name, secret)
