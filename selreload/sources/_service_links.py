"""Kubernetes service-link variables: recognised by name and value, so `Env` can skip them.

The kubelet injects, for every service `my-app` in the pod's namespace (docker-links
format, name upper-cased, `-` as `_`):

    MY_APP_SERVICE_HOST=10.96.0.12        MY_APP_PORT=tcp://10.96.0.12:8080
    MY_APP_SERVICE_PORT=8080              MY_APP_PORT_8080_TCP=tcp://10.96.0.12:8080
    MY_APP_SERVICE_PORT_HTTP=8080         MY_APP_PORT_8080_TCP_PROTO=tcp
                                          MY_APP_PORT_8080_TCP_PORT=8080
                                          MY_APP_PORT_8080_TCP_ADDR=10.96.0.12

A service named like the app (`myapp` with `Env(prefix="MYAPP_")`) puts `MYAPP_PORT`
under the prefix, where it collides with a `port` setting.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

_IPV4 = r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}"
_IPV6 = r"[0-9A-Fa-f]*:[0-9A-Fa-f:.]*"
_IP = rf"(?:{_IPV4}|{_IPV6})"
_NUMBER = r"[0-9]{1,5}"
_PROTO = r"(?:tcp|udp|sctp)"
_URL = rf"{_PROTO}://(?:{_IPV4}|\[{_IPV6}\]):{_NUMBER}"
_PORT_N = r"PORT_[0-9]{1,5}_(?:TCP|UDP|SCTP)"

# (name after `{SVC}_`, value): a variable is a service link only when both match.
_SHAPES: Final = tuple(
    (re.compile(rest), re.compile(value))
    for rest, value in (
        (r"SERVICE_HOST", _IP),
        (r"SERVICE_PORT(?:_[A-Z0-9_]+)?", _NUMBER),
        (r"PORT", _URL),
        (_PORT_N, _URL),
        (rf"{_PORT_N}_PROTO", _PROTO),
        (rf"{_PORT_N}_PORT", _NUMBER),
        (rf"{_PORT_N}_ADDR", _IP),
    )
)
_IP_VALUE = re.compile(_IP)
_HOST_SUFFIX = "_SERVICE_HOST"


def service_links(env: Mapping[str, str], names: Iterable[str]) -> frozenset[str]:
    """The variables among `names` (keys of `env`) that Kubernetes injected as service links.

    Name and value must both have a service link's shape, and the service's
    `{SVC}_SERVICE_HOST` (holding an IP address) must be in `env` too: the kubelet always
    sets it, so a lone `MYAPP_PORT=tcp://...` someone wrote by hand stays a setting.
    """
    services = [
        var[: -len(_HOST_SUFFIX)]
        for var, value in env.items()
        if var.endswith(_HOST_SUFFIX) and len(var) > len(_HOST_SUFFIX) and _IP_VALUE.fullmatch(value)
    ]
    if not services:
        return frozenset()
    return frozenset(name for name in names if _is_link(name, env[name], services))


def _is_link(name: str, value: str, services: list[str]) -> bool:
    for svc in services:
        if name.startswith(svc + "_"):
            rest = name[len(svc) + 1 :]
            if any(n.fullmatch(rest) and v.fullmatch(value) for n, v in _SHAPES):
                return True
    return False
