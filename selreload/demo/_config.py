"""The demo's web service config shape, its policy split and its starting file.

`AdrConfig` declares no hot field: every leaf is restart-only (the fail-safe default) and
the two credentials are secrets. What is hot comes from a policy file,
`selreload/policies/web-service.yaml` (shipped in the package), which `ADR_POLICY` also
states in code:

    sr.Reloader(AdrConfig, sources=[...], policies=ADR_POLICY)            # or the file
    shipped = importlib.resources.files("selreload") / "policies"
    sr.Reloader(AdrConfig, sources=[...], policies=shipped / "web-service.yaml")
"""

from __future__ import annotations

import datetime
import os
import pathlib
from typing import Final

import attrs

from .._schema import PolicySet, config, field, secret

LEVELS: Final = ("debug", "info", "warning", "error", "critical")
SAMPLER_TYPES: Final = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)

_between_0_and_1 = attrs.validators.and_(attrs.validators.ge(0.0), attrs.validators.le(1.0))


@config
class Server:
    host: str = "127.0.0.1"
    port: int = field(default=8080, validator=[attrs.validators.ge(1), attrs.validators.le(65535)])


@config
class Database:
    url: str = "sqlite:///app.db"
    pool_size: int = field(default=10, validator=attrs.validators.ge(1))


@config
class Logging:
    level: str = field(default="info", validator=attrs.validators.in_(LEVELS))


@config
class Api:
    v2_enabled: bool = False


@config
class SamplerSettings:
    type: str = field(default="parentbased_always_on", validator=attrs.validators.in_(SAMPLER_TYPES))
    ratio: float = field(default=1.0, validator=_between_0_and_1)


@config
class Telemetry:
    sampler: SamplerSettings = field(factory=SamplerSettings)


@config
class Jwt:
    ttl: datetime.timedelta = datetime.timedelta(hours=24)


@config
class Auth:
    jwt: Jwt = field(factory=Jwt)
    jwt_secret: str = secret(default="")
    admin_master_password: str = secret(default="")


@config
class AdrConfig:
    """A web service: server, database, logging, API flags, telemetry sampling, auth."""

    server: Server = field(factory=Server)
    database: Database = field(factory=Database)
    logging: Logging = field(factory=Logging)
    api: Api = field(factory=Api)
    telemetry: Telemetry = field(factory=Telemetry)
    auth: Auth = field(factory=Auth)


HOT: Final = ("logging.level", "api.v2_enabled", "telemetry.sampler.type", "telemetry.sampler.ratio", "auth.jwt.ttl")
RESTART: Final = ("server.host", "server.port", "database.*", "auth.jwt_secret", "auth.admin_master_password")
SECRET: Final = ("auth.jwt_secret", "auth.admin_master_password")

ADR_POLICY: Final = PolicySet(hot=HOT, restart=RESTART, secret=SECRET, source="selreload.demo:ADR_POLICY")
"""The web service split, the same as the shipped `selreload/policies/web-service.yaml`."""


DEFAULT_CONFIG = """\
# The selreload demo's config. Edit it while the demo runs and watch the demo's output.
#
# Hot (applied live):       logging.level, api.v2_enabled, telemetry.sampler.*, auth.jwt.ttl
# Restart-only (rejected live, reported as "restart pending"): server.*, database.*, secrets
# Policies: web-service.yaml (selreload policies --list)

server:
  host: {host}
  port: {port}                # restart-only: try changing it

database:
  url: sqlite:///demo.db
  pool_size: 5

logging:
  level: info                 # hot: try debug, then curl / and see the debug lines

api:
  v2_enabled: false           # hot: try true, then curl /v2/hello

telemetry:
  sampler:
    type: parentbased_traceidratio
    ratio: 0.25               # hot: try 1.0

auth:
  jwt:
    ttl: 15m                  # hot: try 1h, then curl /token
  jwt_secret: demo-signing-key          # secret: masked everywhere selreload shows it
  admin_master_password: demo-password  # secret
"""


def write_default_config(path: pathlib.Path, *, host: str, port: int) -> None:
    """Write the demo's starting config (only called when `path` does not exist), 0600:
    it holds the demo's secrets."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(path, DEFAULT_CONFIG.format(host=host, port=port))


def write_private(path: pathlib.Path, text: str) -> None:
    """Create `path` readable and writable by this user only, and write `text` to it.

    The mode is given to `open` rather than set after: a chmod after the write would leave
    a moment in which the umask's 0644 file can be read by anyone. `O_EXCL` refuses a path
    that exists (a file someone planted, or a symlink to one).
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    with open(fd, "w", encoding="utf-8") as f:
        f.write(text)
