"""The seed scenarios' configs as pydantic models: twins of the attrs classes, same behaviour.

`LlmConfig` is `examples.llm_providers.LlmConfig`, `AdrConfig` is `selreload.demo.AdrConfig`
(whose hot leaves come from the web-service policy file, unchanged). The examples take
either one: `llm_providers.run(dir, schema=LlmConfig)`, `adr_service.run(dir, schema=AdrConfig)`.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

import selreload as sr

__all__ = ["AdrConfig", "LlmConfig", "Provider"]

# --- 1. LLM providers -------------------------------------------------------------------


class Provider(BaseModel):
    name: Annotated[str, Field(min_length=1)]
    provider: Literal["openai", "anthropic", "azure_openai", "vertex", "ollama"]
    model_name: Annotated[str, Field(min_length=1)]


class LlmConfig(BaseModel):
    """Lists diff as whole values: any provider edit is one change of `providers`."""

    providers: Annotated[list[Provider], sr.Hot] = []

    @field_validator("providers")
    @classmethod
    def _unique_names(cls, providers: list[Provider]) -> list[Provider]:
        names = [p.name for p in providers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"provider names must be unique, {', '.join(duplicates)} appears twice")
        return providers


# --- 2. the web service (policies/web-service.yaml says what is hot) --------------------

Level = Literal["debug", "info", "warning", "error", "critical"]
SamplerType = Literal[
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
]


class Server(BaseModel):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8080


class Database(BaseModel):
    url: str = "sqlite:///app.db"
    pool_size: Annotated[int, Field(ge=1)] = 10


class Logging(BaseModel):
    level: Level = "info"


class Api(BaseModel):
    v2_enabled: bool = False


class SamplerSettings(BaseModel):
    type: SamplerType = "parentbased_always_on"
    ratio: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0


class Telemetry(BaseModel):
    sampler: SamplerSettings = SamplerSettings()


class Jwt(BaseModel):
    ttl: datetime.timedelta = datetime.timedelta(hours=24)


class Auth(BaseModel):
    jwt: Jwt = Jwt()
    jwt_secret: Annotated[str, sr.Secret()] = ""  # a marker on a plain str ...
    admin_master_password: SecretStr = SecretStr("")  # ... or pydantic's own secret type


class AdrConfig(BaseModel):
    """A web service: server, database, logging, API flags, telemetry sampling, auth."""

    server: Server = Server()
    database: Database = Database()
    logging: Logging = Logging()
    api: Api = Api()
    telemetry: Telemetry = Telemetry()
    auth: Auth = Auth()
