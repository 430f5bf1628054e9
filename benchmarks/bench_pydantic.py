"""Structure + validate cost per reload: attrs backend vs pydantic backend vs pydantic-settings.

The same settings (sections of 100 leaves: int with a `>= 0` rule, str, bool, float), the
same YAML file and the same 10 env variables, at 100 / 1,000 / 10,000 leaves, in one run:

- attrs:    selreload merging the file and env layers and structuring them strictly
            into `@sr.config` classes (validators run);
- pydantic: the same, into pydantic models (selreload's strict pass, then
            `model_validate(strict=True)`: constraints and validators);
- pydantic-settings: `Settings(**tree)` reading the env itself (nested delimiter `__`)
            and validating in its default lax mode. Skipped when not installed
            (`pip install pydantic-settings`; it is not a selreload dependency).

Parsing the file is the same for all three and is not counted: each gets the parsed tree.

    python benchmarks/bench_pydantic.py
"""

from __future__ import annotations

import os
import pathlib
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Annotated, Any

import attrs
import pydantic

import selreload as sr
from selreload._layers import structure
from selreload._structure import Structurer

PER = 100
KINDS = (int, str, bool, float)
ENV = 10


def _kind(i: int) -> type:
    return KINDS[i % len(KINDS)]


def _default(tp: type) -> Any:
    return {int: 0, str: "x", bool: False, float: 0.5}[tp]


def attrs_schema(leaves: int) -> type[Any]:
    sections = {}
    for s in range(leaves // PER):
        fields = {}
        for i in range(PER):
            tp = _kind(i)
            rule = attrs.validators.ge(0) if tp is int else None
            fields[f"f{i}"] = sr.hot(default=_default(tp), type=tp, validator=rule)
        cls = attrs.make_class(f"S{s}", fields, frozen=True, slots=True)
        sections[f"s{s}"] = sr.field(factory=cls, type=cls)
    return attrs.make_class("Root", sections, frozen=True, slots=True)


def pydantic_schema(leaves: int, base: type[pydantic.BaseModel] = pydantic.BaseModel, **config: Any) -> type[Any]:
    sections: dict[str, Any] = {}
    for s in range(leaves // PER):
        fields: dict[str, Any] = {}
        for i in range(PER):
            tp = _kind(i)
            ann = Annotated[int, sr.Hot, pydantic.Field(ge=0)] if tp is int else Annotated[tp, sr.Hot]
            fields[f"f{i}"] = (ann, _default(tp))
        cls = pydantic.create_model(f"S{s}", **fields)
        sections[f"s{s}"] = (cls, pydantic.Field(default_factory=cls))
    return pydantic.create_model("Root", __base__=base, **sections, **config)


def document(leaves: int) -> str:
    lines = []
    for s in range(leaves // PER):
        lines.append(f"s{s}:")
        for i in range(PER):
            value = {int: str(i), str: f"v{i}", bool: "true", float: f"{i}.5"}[_kind(i)]
            lines.append(f"  f{i}: {value}")
    return "\n".join(lines) + "\n"


def environ() -> dict[str, str]:
    return {f"BENCH_S0__F{i * 4}": str(1000 + i) for i in range(ENV)}  # ints of section 0


def timed(fn: Callable[[], Any], n: int) -> float:
    fn()  # warm: compiled structurers, pydantic's core schema
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e3


def settings_class(leaves: int) -> type[Any] | None:
    try:
        import pydantic_settings
    except ImportError:
        return None

    class Base(pydantic_settings.BaseSettings):
        @classmethod
        def settings_customise_sources(cls, settings_cls: Any, init_settings: Any, env_settings: Any, **_: Any) -> Any:
            return env_settings, init_settings  # env over the file, as selreload layers them

    config = pydantic_settings.SettingsConfigDict(env_prefix="BENCH_", env_nested_delimiter="__")
    return _with_config(leaves, Base, config)


def _with_config(leaves: int, base: type[Any], config: Any) -> type[Any]:
    cls = pydantic_schema(leaves, base)
    cls.model_config.update(config)
    cls.model_rebuild(force=True)
    return cls


def main() -> None:
    print("structure + validate per reload (file parsed once, not counted), median, ms")
    print(f"  {'leaves':>7} {'attrs':>9} {'pydantic':>9} {'pyd-settings':>13}  pydantic/attrs")
    env = environ()
    os.environ.update(env)
    try:
        for leaves, n in ((100, 200), (1_000, 50), (10_000, 10)):
            tmp = pathlib.Path(tempfile.mkdtemp())
            path = tmp / "config.yaml"
            path.write_text(document(leaves), encoding="utf-8")
            layers = [sr.YamlFile(path, watch=False).load(), sr.Env(prefix="BENCH_", environ=env).load()]
            row = []
            for schema in (attrs_schema(leaves), pydantic_schema(leaves)):
                structurer = Structurer(sr.Reloader(schema).schema)
                cfg = structure(structurer, layers)
                if cfg.s0.f4 != 1001:
                    raise SystemExit("env did not win over the file")
                row.append(timed(lambda st=structurer, ls=layers: structure(st, ls), n))
            settings = settings_class(leaves)
            if settings is None:
                cell = "not installed"
            else:
                tree = layers[0].tree
                if settings(**tree).s0.f4 != 1001:
                    raise SystemExit("pydantic-settings: env did not win over the file")
                cell = f"{timed(lambda cls=settings, t=tree: cls(**t), n):.2f}"
            print(f"  {leaves:>7,} {row[0]:9.2f} {row[1]:9.2f} {cell:>13}  {row[1] / row[0]:.2f}x")
    finally:
        for key in env:
            os.environ.pop(key, None)


if __name__ == "__main__":
    main()
