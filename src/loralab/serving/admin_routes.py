"""The adapter registry over HTTP: `GET /v1/adapters` for everyone; loading, unloading and
rescanning only with `Authorization: Bearer <token>`.

The token comes from `--admin-token-file` or `LORALAB_ADMIN_TOKEN`, never the command line
(it would show in `ps`); it is compared in constant time. Without a token configured, the
admin endpoints are off (403 saying how to turn them on). A path to load must resolve
(symlinks followed) inside MODELS_DIR: 403 otherwise.
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from loralab.errors import UserError
from loralab.serving.discovery import OutsideModelsDir, one_line
from loralab.serving.http_errors import ServeError
from loralab.serving.model_threads import in_own_thread
from loralab.serving.server_state import TOKEN_ENV, ServerState

router = APIRouter()


class LoadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    name: str | None = None


def require_admin(request: Request) -> ServerState:
    state: ServerState = request.app.state.serving
    token = state.settings.admin_token
    if not token:
        raise ServeError(403, "admin endpoints are disabled: start loralab serve with "
                              f"--admin-token-file FILE or the {TOKEN_ENV} environment variable")
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                              token.encode()):
        raise ServeError(401, "admin endpoints need Authorization: Bearer <token>",
                         headers={"WWW-Authenticate": "Bearer"})
    return state


def inside_models_dir(state: ServerState, given: str) -> Path:
    root = os.path.realpath(state.settings.models_dir)
    resolved = os.path.realpath(os.path.join(root, given))
    if os.path.commonpath([root, resolved]) != root:
        raise ServeError(403, f"path {given!r} resolves outside MODELS_DIR", "path")
    return Path(resolved)


def refresh(state: ServerState) -> None:
    state.refresh_gauges()


@router.get("/v1/adapters")
async def list_adapters(request: Request) -> dict[str, Any]:
    state: ServerState = request.app.state.serving
    return {"object": "list", "data": state.registry.listing(),
            "bases": state.registry.base_listing()}


@router.post("/v1/adapters", status_code=201)
async def load_adapter(body: LoadRequest, request: Request) -> dict[str, Any]:
    state = require_admin(request)
    path = inside_models_dir(state, body.path)
    if not (path / "adapter_config.json").is_file():
        raise ServeError(404, f"{body.path!r} is not an adapter folder (no adapter_config.json)",
                         "path")
    name = body.name or path.name
    if name in state.registry.adapters:
        raise ServeError(409, f"an adapter named {name!r} is already loaded; unload it first "
                              "or give another name", "name")
    try:
        entry = await in_own_thread(state.registry.load_path, path, name)
    except OutsideModelsDir as exc:
        raise ServeError(403, one_line(exc), "path") from None
    except UserError as exc:
        raise ServeError(400, one_line(exc), "path") from None
    finally:
        refresh(state)
    return entry.describe()


@router.post("/v1/adapters/rescan")
async def rescan(request: Request) -> dict[str, Any]:
    state = require_admin(request)
    result = await in_own_thread(state.registry.rescan)
    refresh(state)
    return result


@router.delete("/v1/adapters/{name:path}")
async def unload_adapter(name: str, request: Request) -> dict[str, Any]:
    state = require_admin(request)
    await in_own_thread(state.registry.unload, name)
    refresh(state)
    return {"deleted": name}
