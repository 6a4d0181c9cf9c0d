"""The embedded recipe registry: content-addressed envelopes plus a SQLite index.

Layout under the registry folder::

    blobs/<hex>.json   DSSE envelope JSON, named by the payload's SHA-256
    index.sqlite       recipes(digest, name, publisher, created) and tags(name, tag -> digest)

A publish writes the blob first (temporary file, fsync, rename) and then indexes it
in one SQLite transaction. A reader only finds what the index names, so a publisher
killed at any point leaves either nothing visible or a complete entry; an orphan blob
from a killed publish is invisible and is overwritten by the next publish of the same
recipe. Verification is the caller's job (:mod:`fedseed.registry.service`): the store
only keeps bytes and names.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from fedseed._internal.atomic import atomic_write_bytes
from fedseed.errors import RecipeNotFound, RegistryError, TagConflict, VerificationError
from fedseed.provenance.envelope import Envelope, Signature
from fedseed.recipe.codec import digest_bytes

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
DEFAULT_TAG = "latest"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS recipes (
    digest TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    publisher TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tags (
    name TEXT NOT NULL,
    tag TEXT NOT NULL,
    digest TEXT NOT NULL REFERENCES recipes(digest),
    owner TEXT NOT NULL,
    updated TEXT NOT NULL,
    PRIMARY KEY (name, tag)
);
CREATE INDEX IF NOT EXISTS recipes_by_name ON recipes(name);
"""


@dataclass(frozen=True)
class Entry:
    """One published recipe as the index knows it."""

    digest: str
    name: str
    publisher: str
    created: str
    tags: tuple[str, ...] = ()


def check_name(name: str) -> str:
    """Registry names: lowercase letters, digits, ``.``, ``_``, ``-``; no path parts."""
    if not _NAME.match(name) or ".." in name:
        raise RegistryError(f"recipe name '{name}' must be 1-64 lowercase letters, digits, "
                            "'.', '_' or '-' (no path separators, no '..')")
    return name


def check_tag(tag: str) -> str:
    """Tags: letters, digits, ``.``, ``_``, ``-``; no path parts."""
    if not _TAG.match(tag) or ".." in tag:
        raise RegistryError(f"tag '{tag}' must be 1-64 letters, digits, '.', '_' or '-'")
    return tag


def parse_ref(ref: str) -> tuple[str | None, str | None, str | None]:
    """``sha256:<hex>`` -> (digest, None, None); ``name[:tag]`` -> (None, name, tag)."""
    if ref.startswith("sha256:"):
        if not _DIGEST.match(ref):
            raise RegistryError(f"'{ref}' is not a sha256:<64 hex> digest")
        return ref, None, None
    name, _, tag = ref.partition(":")
    return None, check_name(name), check_tag(tag or DEFAULT_TAG)


class LocalRegistry:
    """A registry in a local folder (the embedded default: ``$FEDSEED_HOME/registry``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs"
        self._ready = False
        self._lock = threading.Lock()  # the HTTP server publishes from several threads

    def _ensure(self) -> None:
        """Create the folder and index on first write (reading creates nothing)."""
        with self._lock:
            if self._ready:
                return
            self.blobs.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.root / "index.sqlite", timeout=60)
            try:
                db.execute("PRAGMA busy_timeout=60000")
                db.executescript(_SCHEMA)
            finally:
                db.close()
            self._ready = True

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if not self._ready and not (self.root / "index.sqlite").exists():
            # Nothing published yet: an in-memory index with the schema reads as empty.
            db = sqlite3.connect(":memory:")
            db.executescript(_SCHEMA)
            try:
                yield db
            finally:
                db.close()
            return
        if not self._ready:
            self._ensure()  # an index made by another process: make sure it is complete
        db = sqlite3.connect(self.root / "index.sqlite", timeout=60, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=60000")
            yield db
        finally:
            db.close()

    def _blob(self, digest: str) -> Path:
        return self.blobs / f"{digest.removeprefix('sha256:')}.json"

    def store(self, envelope: Envelope, digest: str, name: str, publisher: str,
              tag: str | None = DEFAULT_TAG,
              movable_from: frozenset[str] = frozenset()) -> Entry:
        """Store a verified envelope under ``digest`` and point ``name:tag`` at it.

        Idempotent: storing a recipe that is already there merges any new
        signatures into the stored envelope. A tag owned by another publisher key is
        not moved, unless that key is in ``movable_from`` (revoked keys: a tag must
        not stay frozen on a key nobody trusts); the tag then changes owner.
        """
        self._ensure()
        check_name(name)
        if tag is not None:
            check_tag(tag)
        now = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
        with self._connect() as db:
            # One writer at a time: the blob merge and the index update must agree.
            db.execute("BEGIN IMMEDIATE")
            try:
                # Ownership first: a refused tag move must not leave a blob behind.
                owner = None if tag is None else db.execute(
                    "SELECT owner, digest FROM tags WHERE name=? AND tag=?", (name, tag)
                ).fetchone()
                takeover = owner is not None and owner[0] in movable_from
                if owner is not None and owner[0] != publisher and owner[1] != digest \
                        and not takeover:
                    raise TagConflict(
                        f"tag {name}:{tag} belongs to key {owner[0][:16]}; only that key "
                        "can move it (publish under another tag)")
                row = db.execute("SELECT name, publisher, created FROM recipes WHERE digest=?",
                                 (digest,)).fetchone()
                if row is None:
                    atomic_write_bytes(self._blob(digest), envelope.to_json())
                    db.execute("INSERT INTO recipes VALUES (?, ?, ?, ?)",
                               (digest, name, publisher, now))
                    row = (name, publisher, now)
                else:
                    merged = _merge(self._read_blob(digest), envelope)
                    if merged is not None:
                        atomic_write_bytes(self._blob(digest), merged.to_json())
                if tag is not None and (owner is None or owner[1] != digest or takeover):
                    keeper = owner[0] if owner and not takeover else publisher
                    db.execute("INSERT OR REPLACE INTO tags VALUES (?, ?, ?, ?, ?)",
                               (name, tag, digest, keeper, now))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return Entry(digest=digest, name=row[0], publisher=row[1], created=row[2],
                     tags=self._tags(digest))

    def resolve(self, ref: str) -> str:
        """The digest ``ref`` (a digest or ``name[:tag]``) names; :class:`RegistryError` if none."""
        digest, name, tag = parse_ref(ref)
        with self._connect() as db:
            if digest is not None:
                found = db.execute("SELECT digest FROM recipes WHERE digest=?",
                                   (digest,)).fetchone()
            else:
                found = db.execute("SELECT digest FROM tags WHERE name=? AND tag=?",
                                   (name, tag)).fetchone()
        if found is None:
            raise RecipeNotFound(f"no recipe '{ref}' in registry {self.root}")
        return str(found[0])

    def fetch(self, ref: str) -> Envelope:
        """The stored envelope for ``ref``, checked against its content address.

        Signatures are not checked here (verify before use), but a blob whose payload
        does not hash to the digest it is stored under is refused.
        """
        digest = self.resolve(ref)
        envelope = self._read_blob(digest)
        actual = digest_bytes(envelope.payload)
        if actual != digest:
            raise VerificationError(f"{ref}: stored blob holds {actual}, not {digest}; the "
                                    f"registry {self.root} was modified outside fedseed")
        return envelope

    def has(self, digest: str) -> bool:
        """Whether ``digest`` is published here."""
        with self._connect() as db:
            return db.execute("SELECT 1 FROM recipes WHERE digest=?", (digest,)).fetchone() \
                is not None

    def entries(self) -> list[Entry]:
        """Every published recipe, newest first."""
        with self._connect() as db:
            rows = db.execute("SELECT digest, name, publisher, created FROM recipes "
                              "ORDER BY created DESC, name").fetchall()
            tags: dict[str, list[str]] = {}
            for _name, tag, digest in db.execute("SELECT name, tag, digest FROM tags"):
                tags.setdefault(digest, []).append(tag)
        return [Entry(d, n, p, c, tuple(sorted(tags.get(d, [])))) for d, n, p, c in rows]

    def _tags(self, digest: str) -> tuple[str, ...]:
        with self._connect() as db:
            rows = db.execute("SELECT tag FROM tags WHERE digest=?", (digest,)).fetchall()
        return tuple(sorted(r[0] for r in rows))

    def _read_blob(self, digest: str) -> Envelope:
        path = self._blob(digest)
        try:
            return Envelope.from_json(path.read_bytes(), str(path))
        except FileNotFoundError as e:
            raise RegistryError(f"{path}: indexed but missing; the registry folder was "
                                "modified by hand") from e


def _merge(stored: Envelope, new: Envelope) -> Envelope | None:
    """``stored`` plus the signatures of ``new`` it lacks, or None if nothing is new."""
    known = {s.keyid for s in stored.signatures}
    extra: tuple[Signature, ...] = tuple(s for s in new.signatures if s.keyid not in known)
    if not extra:
        return None
    return Envelope(payload=stored.payload, payload_type=stored.payload_type,
                    signatures=(*stored.signatures, *extra))
