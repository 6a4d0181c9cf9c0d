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
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# FastAPI reads handler annotations at run time: with postponed annotations, the
# names they mention must be importable from this module, not local to a function.
from fastapi import Request

from fedseed.errors import (
    RecipeNotFound,
    RegistryError,
    SignatureError,
    TagConflict,
    VerificationError,
)
from fedseed.provenance.envelope import MAX_ENVELOPE_BYTES, Envelope
from fedseed.provenance.trust import load_trust
from fedseed.registry.client import entry_dict
from fedseed.registry.service import accept_envelope
from fedseed.registry.store import LocalRegistry


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

    @app.get("/healthz")
    def health() -> dict[str, Any]:
        return {"status": "ok", "recipes": len(registry.entries())}

    @app.get("/v1/recipes")
    def list_recipes() -> list[dict[str, Any]]:
        return [entry_dict(e) for e in registry.entries()]

    @app.post("/v1/recipes", status_code=201)
    async def publish(request: Request, name: str | None = None,
                      tag: str | None = "latest") -> Any:
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

    @app.get("/v1/recipes/{digest}")
    def fetch(digest: str) -> Any:
        if not digest.startswith("sha256:"):
            return error(422, f"'{digest}' is not a sha256:<hex> digest; use "
                              "/v1/tags/{name}/{tag} for names")
        return _envelope_response(registry, digest, error, Response)

    @app.get("/v1/tags/{name}/{tag}")
    def fetch_tag(name: str, tag: str) -> Any:
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
