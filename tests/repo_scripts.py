"""The repository's scripts (``benchmarks/``, ``scripts/``) loaded as modules, for the tests of their functions."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_script(rel: str) -> ModuleType:
    """The script at ``ROOT/rel`` (e.g. ``benchmarks/t3d_paired.py``), executed as a fresh module."""
    path = ROOT / rel
    spec = importlib.util.spec_from_file_location(f"_script_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
