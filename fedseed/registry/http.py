"""``fedseed registry serve``: the registry over HTTP (FastAPI + uvicorn).

Endpoints (OpenAPI at ``/openapi.json``, browsable at ``/docs``):

- ``GET /healthz``
- ``GET /v1/recipes`` — index entries
- ``POST /v1/recipes?name=&tag=`` — body: a DSSE envelope; 201 with the entry
- ``GET /v1/recipes/{digest}`` — the envelope
- ``GET /v1/tags/{name}/{tag}`` — the envelope a tag points at

Publishing *is* the authentication: an envelope must carry a signature by a key the
server trusts as ``publisher``. Everything that is refused gets a 4xx with a JSON
``{"error": ...}`` and nothing is stored. The trust store is re-read on every
publish, so ``fedseed trust revoke`` on the server takes effect at once.

The OpenAPI document states the request body (a DSSE envelope), the name, tag and
digest patterns the handlers enforce, and every status each endpoint answers with its
JSON schema, so that a schema-driven fuzzer can check every answer (``fedseed bench
robustness`` runs schemathesis against it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# FastAPI reads handler annotations at run time: with postponed annotations, the
# names they mention must be importable from this module, not local to a function.
from fastapi import Path as PathParam
from fastapi import Request
from pydantic import BaseModel, Field

from fedseed.errors import (
    RecipeNotFound,
    RegistryError,
    SignatureError,
    TagConflict,
    VerificationError,
)
from fedseed.provenance.envelope import MAX_ENVELOPE_BYTES, MAX_SIGNATURES, Envelope
from fedseed.provenance.trust import load_trust
from fedseed.registry.client import entry_dict
from fedseed.registry.service import accept_envelope
from fedseed.registry.store import _DIGEST, _NAME, _TAG, LocalRegistry

# What the handlers accept, as the OpenAPI document states it.
_NAME_PATTERN, _TAG_PATTERN, _DIGEST_PATTERN = _NAME.pattern, _TAG.pattern, _DIGEST.pattern


# The models below only describe the wire format in the OpenAPI document: the handlers
# read the body themselves (the envelope's exact bytes) and answer with JSONResponse.
class ErrorBody(BaseModel):
    """Every refusal (4xx, and the one 5xx of a registry damaged on disk)."""

    error: str


class Health(BaseModel):
    """``GET /healthz``."""

    status: str
    recipes: int = Field(ge=0)


class RegistryEntry(BaseModel):
    """One published recipe as the index knows it."""

    digest: str = Field(pattern=_DIGEST_PATTERN)
    name: str
    publisher: str = Field(pattern=r"^[0-9a-f]{64}$")
    created: str
    tags: list[str]


_BASE64 = r"^[A-Za-z0-9+/_-]*={0,2}$"  # standard or URL-safe, padding optional (DSSE)


class DSSESignature(BaseModel):
    """One DSSE signature: key id and base64 signature (standard or URL-safe)."""

    keyid: str = ""
    sig: str = Field(pattern=_BASE64)


class DSSEEnvelope(BaseModel):
    """A DSSE v1 envelope (https://github.com/secure-systems-lab/dsse)."""

    payload: str = Field(pattern=_BASE64)
    payloadType: str  # noqa: N815  (the DSSE field name)
    signatures: list[DSSESignature] = Field(max_length=MAX_SIGNATURES)


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    reasons = {400: "Not a DSSE envelope (malformed JSON, base64 or fields)",
               403: "Signature, trust or recipe verification failed",
               404: "No such recipe", 409: "The tag belongs to another publisher key",
               413: f"Envelope over {MAX_ENVELOPE_BYTES} bytes",
               422: "Invalid name, tag or digest",
               500: "A stored blob no longer matches its address (registry damaged on disk)"}
    return {code: {"model": ErrorBody, "description": reasons[code]} for code in codes}


_ENVELOPE = {"model": DSSEEnvelope, "description": "The stored DSSE envelope"}
_PUBLISH_DOC: dict[str, Any] = {
    "parameters": [
        {"name": "name", "in": "query", "required": False,
         "description": "Registry name (default: the recipe's own name)",
         "schema": {"type": "string", "pattern": _NAME_PATTERN}},
        {"name": "tag", "in": "query", "required": False,
         "schema": {"type": "string", "pattern": _TAG_PATTERN, "default": "latest"}},
    ],
    "requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/DSSEEnvelope"}}}},
}


def create_app(store: Path, trust_file: Path | None = None) -> Any:
    """The FastAPI application serving the registry at ``store``."""
    from fastapi import FastAPI
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse, Response

    registry = LocalRegistry(store)
    app = FastAPI(title="fedseed recipe registry", version="1",
                  description="Signed, content-addressed fedseed recipes.")

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.get("/healthz", response_model=None,
             responses={200: {"model": Health, "description": "Serving"}})
    def health() -> dict[str, Any]:
        return {"status": "ok", "recipes": len(registry.entries())}

    @app.get("/v1/recipes", response_model=None,
             responses={200: {"model": list[RegistryEntry], "description": "Index entries"}})
    def list_recipes() -> list[dict[str, Any]]:
        return [entry_dict(e) for e in registry.entries()]

    @app.post("/v1/recipes", status_code=201, response_model=None, openapi_extra=_PUBLISH_DOC,
              responses={201: {"model": RegistryEntry, "description": "Published"},
                         **_errors(400, 403, 409, 413, 422)})
    async def publish(request: Request) -> Any:
        # Query parameters are read here, not declared: the handler refuses a bad name
        # or tag itself (422, one message); the OpenAPI document describes them.
        name = request.query_params.get("name")
        tag = request.query_params.get("tag", "latest")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_ENVELOPE_BYTES:
            return error(413, f"envelope over {MAX_ENVELOPE_BYTES} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_ENVELOPE_BYTES:
                return error(413, f"envelope over {MAX_ENVELOPE_BYTES} bytes")
        try:
            envelope = Envelope.from_json(bytes(body), "request body")
            # SQLite and fsync block: keep them off the event loop so that reads and
            # health checks are served while a publish waits for the disk.
            published = await run_in_threadpool(
                accept_envelope, registry, envelope, load_trust(path=trust_file),
                name=name, tag=tag, source="request body")
        except SignatureError as e:
            return error(400, e.diagnostics())
        except VerificationError as e:
            return error(403, e.diagnostics())
        except TagConflict as e:
            return error(409, e.diagnostics())
        except RegistryError as e:
            return error(422, e.diagnostics())
        return JSONResponse(entry_dict(published.entry), status_code=201)

    @app.get("/v1/recipes/{digest}", response_model=None,
             responses={200: _ENVELOPE, **_errors(404, 422, 500)})
    def fetch(digest: str = PathParam(json_schema_extra={"pattern": _DIGEST_PATTERN})) -> Any:
        if not digest.startswith("sha256:"):
            return error(422, f"'{digest}' is not a sha256:<hex> digest; use "
                              "/v1/tags/{name}/{tag} for names")
        return _envelope_response(registry, digest, error, Response)

    @app.get("/v1/tags/{name}/{tag}", response_model=None,
             responses={200: _ENVELOPE, **_errors(404, 422, 500)})
    def fetch_tag(name: str = PathParam(json_schema_extra={"pattern": _NAME_PATTERN}),
                  tag: str = PathParam(json_schema_extra={"pattern": _TAG_PATTERN})) -> Any:
        return _envelope_response(registry, f"{name}:{tag}", error, Response)

    return app


def _envelope_response(registry: LocalRegistry, ref: str, error: Any, response: Any) -> Any:
    try:
        envelope = registry.fetch(ref)
    except RecipeNotFound as e:
        return error(404, e.diagnostics())
    except VerificationError as e:  # a blob that no longer matches its address
        return error(500, e.diagnostics())
    except RegistryError as e:
        return error(422, e.diagnostics())
    return response(envelope.to_json(), media_type="application/json")


def serve(store: Path, host: str = "127.0.0.1", port: int = 8700,
          trust_file: Path | None = None) -> None:
    """Run the registry server until interrupted."""
    import uvicorn

    uvicorn.run(create_app(store, trust_file), host=host, port=port, log_level="warning")
