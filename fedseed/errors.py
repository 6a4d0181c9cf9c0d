"""The one exception tree of fedseed.

Every error a user can cause or meet derives from :class:`FedseedError`. Messages
are one line, name the field, file or value at fault, and say what to do next. The
CLI maps the tree to exit codes in one place (:attr:`FedseedError.exit_code`):
2 for bad input, 1 for a failed verification.
"""

from __future__ import annotations


class FedseedError(Exception):
    """Root of all fedseed errors."""

    exit_code: int = 2

    def diagnostics(self) -> str:
        """The message as shown to a user: one line, no traceback."""
        return " ".join(str(self).split())


class RecipeError(FedseedError):
    """A recipe is malformed, out of bounds, or inconsistent with itself."""


class ArchitectureError(RecipeError):
    """A recipe names an architecture that is unknown or does not fit its task."""


class DataError(FedseedError):
    """Local data is missing, unreadable, or does not fit the recipe."""


class BaseNotFound(DataError):
    """A recipe names a pretrained base that is not in this device's base store."""


class OutputError(FedseedError):
    """An output path cannot be written as asked (exists, not a folder, ...)."""


class SignatureError(FedseedError):
    """A signature could not be made or checked (bad key, malformed envelope)."""


class VerificationError(FedseedError):
    """A signature, digest or lineage check ran and failed.

    ``reason`` is a short machine-readable code (``unsigned``, ``unknown-key``,
    ``revoked``, ``wrong-role``, ``bad-signature``, ``invalid-recipe``,
    ``payload-type``, ``digest``, ``lineage``) for code that counts failures.
    """

    exit_code = 1

    def __init__(self, message: str, reason: str = "failed") -> None:
        super().__init__(message)
        self.reason = reason


class RegistryError(FedseedError):
    """The recipe registry could not store or find a recipe."""


class RecipeNotFound(RegistryError):
    """A registry has no recipe under the asked digest or name:tag."""


class TagConflict(RegistryError):
    """A tag belongs to another publisher key and cannot be moved by this one."""


class AggregationError(FedseedError):
    """Client recipes could not be aggregated into a meta-recipe."""


__all__ = [
    "AggregationError",
    "ArchitectureError",
    "BaseNotFound",
    "DataError",
    "FedseedError",
    "OutputError",
    "RecipeError",
    "RecipeNotFound",
    "RegistryError",
    "SignatureError",
    "TagConflict",
    "VerificationError",
]
