"""Paths shared by tests. A plain module (not a conftest): several conftest.py files
exist, and `from conftest import ...` would pick whichever was imported first."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = Path(__file__).resolve().parent / "assets"
