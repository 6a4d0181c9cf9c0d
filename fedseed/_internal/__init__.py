"""Internals of fedseed: not a public API."""
