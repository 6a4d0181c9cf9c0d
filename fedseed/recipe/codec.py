"""Canonical bytes, digests and parsing of recipes.

Canonical form: UTF-8 JSON with sorted keys, no insignificant whitespace, no NaN or
infinity, every field written out (defaults included) except optional top-level
sections that are absent. The digest is ``sha256:<hex>`` of those bytes. Because the
canonical form is written by one function from a validated model, the same recipe
always gives the same bytes: parse -> canonical -> parse -> canonical is a fixed
point, and signatures are made over exactly these bytes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fedseed.errors import RecipeError
from fedseed.recipe.model import Recipe

#: Largest recipe file or payload fedseed will read (evidence included).
MAX_RECIPE_BYTES = 1 << 20

_UNION_TAGS = frozenset(
    {"torch:mlp", "torch:cnn", "torch:ngram-bag", "transformers:bert", "transformers:distilbert",
     "transformers:gpt2", "bytes", "hashed-ngrams", "adamw", "adam", "sgd", "log_uniform",
     "uniform", "choice"}
)


def canonical_dict(recipe: Recipe) -> dict[str, Any]:
    """The recipe as a JSON-ready dict, exactly as :func:`canonical_bytes` writes it."""
    data = recipe.model_dump(mode="json", by_alias=True)
    # Only absent optional *sections* are dropped: a nested null (say
    # budget.grad_clip = null, "no clipping") is meaningful and stays.
    return {key: value for key, value in data.items() if value is not None}


def canonical_json(data: Any) -> bytes:
    """Canonical JSON text of JSON-ready ``data``: UTF-8, sorted keys, no whitespace,
    no NaN. The one definition: packed envelopes rebuild signed payloads with it."""
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def canonical_bytes(recipe: Recipe) -> bytes:
    """Return the canonical JSON bytes of ``recipe`` (what is hashed and signed)."""
    return canonical_json(canonical_dict(recipe))


def digest_bytes(data: bytes) -> str:
    """``sha256:<hex>`` of raw bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def recipe_digest(recipe: Recipe) -> str:
    """The content address of a recipe: ``sha256:<hex>`` of its canonical bytes."""
    return digest_bytes(canonical_bytes(recipe))


def parse_recipe(data: bytes | str, source: str = "recipe") -> Recipe:
    """Parse and validate recipe JSON; raise :class:`RecipeError` naming ``source``.

    Duplicate keys are rejected (two readers could otherwise disagree about what
    was signed), and so is anything over :data:`MAX_RECIPE_BYTES`.
    """
    try:
        raw = data.encode("utf-8") if isinstance(data, str) else data
    except UnicodeEncodeError as e:
        raise RecipeError(f"{source}: text is not encodable as UTF-8 ({e.reason})") from e
    if len(raw) > MAX_RECIPE_BYTES:
        raise RecipeError(
            f"{source}: {len(raw)} bytes is over the {MAX_RECIPE_BYTES}-byte recipe limit"
        )
    try:
        json.loads(raw, object_pairs_hook=_reject_duplicates)
    except UnicodeDecodeError as e:
        raise RecipeError(f"{source}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    except json.JSONDecodeError as e:
        raise RecipeError(
            f"{source}: malformed JSON at line {e.lineno} column {e.colno}: {e.msg}"
        ) from e
    except _DuplicateKey as e:
        raise RecipeError(f"{source}: duplicate key '{e.args[0]}'") from e
    except ValueError as e:  # an integer past Python's digit limit: no field takes one
        raise RecipeError(f"{source}: a number has too many digits for any recipe field") from e
    except RecursionError as e:
        raise RecipeError(f"{source}: JSON nested too deeply for a recipe") from e
    try:
        return Recipe.model_validate_json(raw)
    except ValidationError as e:
        raise RecipeError(f"{source}: {describe_validation_error(e)}") from e


def recipe_from_dict(data: dict[str, Any], source: str = "recipe") -> Recipe:
    """Validate a JSON-like dict as strictly as a file would be."""
    try:
        raw = json.dumps(data, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise RecipeError(f"{source}: not representable as JSON: {e}") from e
    return parse_recipe(raw, source)


def read_recipe_file(path: str | Path) -> Recipe:
    """Read and validate a recipe JSON file."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_RECIPE_BYTES:
            raise RecipeError(
                f"{path}: {size} bytes is over the {MAX_RECIPE_BYTES}-byte recipe limit"
            )
        raw = path.read_bytes()
    except FileNotFoundError as e:
        raise RecipeError(f"{path}: no such file") from e
    except IsADirectoryError as e:
        raise RecipeError(f"{path}: is a folder, expected a recipe JSON file") from e
    except PermissionError as e:
        raise RecipeError(f"{path}: permission denied") from e
    if looks_like_envelope(raw):
        # Reading a signed recipe's payload without its signature would make the
        # signature decoration: callers that use recipes verify them
        # (fedseed.provenance.resolve), and this reader refuses them.
        raise RecipeError(
            f"{path} is a signed recipe (DSSE envelope); check it with `fedseed recipe "
            f"verify {path}` — commands that use recipes accept it once its signer is "
            "trusted (`fedseed trust add KEY.pub --role publisher`)")
    return parse_recipe(raw, str(path))


def looks_like_envelope(raw: bytes) -> bool:
    """Whether ``raw`` is a signed envelope (packed, or DSSE JSON) rather than a recipe."""
    if raw[:4] == b"FSP1":  # fedseed.provenance.packed.MAGIC (not imported: fast start)
        return True
    head = raw[:4096]
    return b'"payloadType"' in head or b'"payloadType"' in raw[-4096:]


def describe_validation_error(error: ValidationError) -> str:
    """One line for a pydantic error: the field's dotted path, the problem, the value."""
    errors = error.errors(include_url=False)
    first = errors[0]
    loc = ".".join(str(part) for part in first["loc"] if str(part) not in _UNION_TAGS)
    message = first["msg"].removeprefix("Value error, ")
    kind = first["type"]
    if kind == "extra_forbidden":
        message = "unknown field (see `fedseed recipe schema` for the allowed fields)"
    elif kind == "missing":
        message = "missing required field"
    value = first.get("input")
    shown = ""
    if kind not in ("missing", "extra_forbidden") and isinstance(value, (int, float, str, bool)):
        text = repr(value)
        shown = f" (got {text[:60]}{'...' if len(text) > 60 else ''})"
    where = f"{loc}: " if loc else ""
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{where}{message}{shown}{more}"


class _DuplicateKey(ValueError):
    pass


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result
