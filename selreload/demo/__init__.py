"""The demo service (`selreload demo`) and its config shape, kept out of the library core.

`AdrConfig` is a web service's config (server, database, logging, api, telemetry, auth)
with every leaf restart-only; `ADR_POLICY` (the same as the shipped `web-service.yaml`) makes
five of them hot. The service itself is in `selreload.demo._app` and needs starlette and
uvicorn; importing this package does not.
"""

from __future__ import annotations

from ._config import ADR_POLICY, DEFAULT_CONFIG, AdrConfig

__all__ = ["ADR_POLICY", "DEFAULT_CONFIG", "AdrConfig"]
