"""Registry clients: one interface over the embedded store and the HTTP server.

``open_registry(None)`` is the embedded default (``$FEDSEED_HOME/registry``), a path
is an embedded store elsewhere, and an ``http(s)://`` URL is a ``fedseed registry
serve`` server. Either way a publish goes through the same acceptance rules
(:func:`fedseed.registry.service.accept_envelope`); only where they run differs.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from fedseed.errors import RecipeNotFound, RegistryError, TagConflict, VerificationError
from fedseed.home import fedseed_home
from fedseed.provenance.envelope import Envelope
from fedseed.provenance.trust import TrustStore
from fedseed.registry.service import accept_envelope
from fedseed.registry.store import DEFAULT_TAG, Entry, LocalRegistry, parse_ref


class RegistryClient(Protocol):
    """What the CLI and the federation need from a registry."""

    location: str

    def publish(self, envelope: Envelope, *, name: str | None = None,
                tag: str | None = DEFAULT_TAG) -> Entry:
        """Store a signed envelope (verified by the registry's rules); idempotent."""
        ...

    def fetch(self, ref: str) -> Envelope:
        """The envelope ``ref`` names (a digest or ``name[:tag]``), unverified."""
        ...

    def entries(self) -> list[Entry]:
        """Every published recipe."""
        ...

    def with_publishers(self, trust: TrustStore) -> RegistryClient:
        """This registry, accepting publishers trusted in ``trust`` (an embedded store
        checks them here; a remote one decides itself whom it accepts)."""
        ...


class LocalClient:
    """The embedded registry, accepting publishers trusted in the local trust store."""

    def __init__(self, root: Path, trust: TrustStore) -> None:
        self.registry = LocalRegistry(root)
        self.trust = trust
        self.location = str(root)

    def publish(self, envelope: Envelope, *, name: str | None = None,
                tag: str | None = DEFAULT_TAG) -> Entry:
        return accept_envelope(self.registry, envelope, self.trust, name=name, tag=tag).entry

    def fetch(self, ref: str) -> Envelope:
        return self.registry.fetch(ref)

    def entries(self) -> list[Entry]:
        return self.registry.entries()

    def with_publishers(self, trust: TrustStore) -> LocalClient:
        return LocalClient(Path(self.location), trust)


class HTTPClient:
    """A ``fedseed registry serve`` server, over httpx."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.location = url.rstrip("/")
        self.timeout = timeout

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = httpx.request(method, self.location + path, timeout=self.timeout,
                                     **kwargs)
        except httpx.HTTPError as e:
            raise RegistryError(f"registry {self.location}: {e}") from e
        if response.status_code >= 400:
            try:
                detail = response.json().get("error", response.text)
            except ValueError:
                detail = response.text
            error = _ERRORS.get(response.status_code, RegistryError)
            raise error(f"registry {self.location}: {detail}")
        return response

    def publish(self, envelope: Envelope, *, name: str | None = None,
                tag: str | None = DEFAULT_TAG) -> Entry:
        params = {k: v for k, v in {"name": name, "tag": tag}.items() if v is not None}
        response = self._request("POST", "/v1/recipes", content=envelope.to_json(),
                                 params=params, headers={"content-type": "application/json"})
        return _entry(response.json())

    def fetch(self, ref: str) -> Envelope:
        digest, name, tag = parse_ref(ref)
        path = f"/v1/recipes/{digest}" if digest else f"/v1/tags/{name}/{tag}"
        return Envelope.from_json(self._request("GET", path).content, f"{self.location}{path}")

    def entries(self) -> list[Entry]:
        return [_entry(item) for item in self._request("GET", "/v1/recipes").json()]

    def with_publishers(self, trust: TrustStore) -> HTTPClient:
        return self  # the server checks publishers against its own trust store


_ERRORS: dict[int, type[RegistryError] | type[VerificationError]] = {
    403: VerificationError, 404: RecipeNotFound, 409: TagConflict,
}


def _entry(data: dict[str, Any]) -> Entry:
    return Entry(digest=data["digest"], name=data["name"], publisher=data["publisher"],
                 created=data["created"], tags=tuple(data.get("tags", ())))


def entry_dict(entry: Entry) -> dict[str, Any]:
    """JSON form of an index entry."""
    return {**asdict(entry), "tags": list(entry.tags)}


def open_registry(location: str | None, trust: TrustStore) -> RegistryClient:
    """A client for ``location``: None (embedded default), a folder, or an HTTP URL."""
    if location and location.startswith(("http://", "https://")):
        return HTTPClient(location)
    root = Path(location).expanduser() if location else fedseed_home() / "registry"
    return LocalClient(root, trust)
