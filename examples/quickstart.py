"""selreload in one screen: declare, load, edit, reload, see what happened.

Writes a config file to a temp dir, starts a Reloader with a log-level applier, then
edits the file twice: a hot change plus a restart-only one, and a broken edit.
Run it with `python examples/quickstart.py` (`make demo` runs the demo web service instead).
"""

from __future__ import annotations

import datetime
import logging
import pathlib
import tempfile

import attrs

import selreload as sr
from selreload import appliers

LEVELS = ["debug", "info", "warning", "error"]


@sr.config
class Logging:
    level: str = sr.hot(default="info", validator=attrs.validators.in_(LEVELS))


@sr.config
class Auth:
    jwt_ttl: datetime.timedelta = sr.hot(default=datetime.timedelta(hours=24))
    jwt_secret: str = sr.secret(default="")


@sr.config
class App:
    port: int = sr.restart_only(default=8080)
    logging: Logging = sr.field(factory=Logging)
    auth: Auth = sr.field(factory=Auth)
    feature_flags: dict[str, bool] = sr.hot(factory=dict)


FIRST = """\
port: 8080
logging:
  level: info
auth:
  jwt_ttl: 24h
  jwt_secret: change-me
feature_flags:
  new_checkout: false
"""


def show(title: str, result: sr.ReloadResult) -> None:
    print(f"\n== {title}: {result.outcome.value.upper()} (live version {result.version})")
    for change in result.applied:
        print(f"   applied   {change}")
    for change in result.rejected:
        print(f"   rejected  {change}  -> restart pending")
    for error in result.errors:
        print(f"   error     {error}")


def main(directory: pathlib.Path | None = None) -> sr.Reloader[App]:
    logging.basicConfig(format="   log: %(levelname)s %(message)s")
    logging.getLogger("selreload").setLevel(logging.INFO)
    directory = directory or pathlib.Path(tempfile.mkdtemp(prefix="selreload-quickstart-"))
    path = directory / "config.yaml"
    path.write_text(FIRST)

    flags = appliers.FeatureFlags()
    reloader = sr.Reloader(App, sources=[sr.YamlFile(path, watch=False)])
    reloader.on("logging.level", appliers.LogLevel())
    reloader.on("feature_flags", flags)

    with reloader:
        cfg = reloader.current
        print(f"started: {path}")
        print(f"   {cfg}")
        print(f"   root log level {logging.getLevelName(logging.getLogger().level)}, flags {dict(flags.snapshot())}")

        # A hot change (log level, a flag, the TTL) and a restart-only one (the port).
        path.write_text(
            FIRST.replace("level: info", "level: debug")
            .replace("8080", "9090")
            .replace("24h", "15m")
            .replace("new_checkout: false", "new_checkout: true")
        )
        show("edit 1 (hot + restart-only)", reloader.reload())
        print(f"   root log level {logging.getLevelName(logging.getLogger().level)}, flags {dict(flags.snapshot())}")
        print(f"   restart pending: {reloader.status()['restart_pending']}")

        # A broken edit: the live config stays, every problem is named with its place.
        path.write_text("logging:\n  level: verbose\n  colour: true\nport: '9090'\n")
        show("edit 2 (broken)", reloader.reload())
        live = reloader.current
        print(f"   still live: level={live.logging.level} ttl={sr.format_duration(live.auth.jwt_ttl)}")
    return reloader


if __name__ == "__main__":
    main()
