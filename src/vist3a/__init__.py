"""vist3a — text-to-3D by stitching a video generator's latent space to a 3DGS reconstructor.

Public API (imported lazily so that ``import vist3a`` stays fast):
``Gaussians``, ``Cameras``, ``render``, ``load_scene``, ``save_scene``, ``load_pipeline``,
and the preset registry ``vist3a.registry.build``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Gaussians": "vist3a.gaussians.gaussians",
    "Cameras": "vist3a.gaussians.cameras",
    "render": "vist3a.gaussians.render",
    "load_scene": "vist3a.gaussians.formats",
    "save_scene": "vist3a.gaussians.formats",
    "load_pipeline": "vist3a.pipelines",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name == "registry":
        return importlib.import_module("vist3a.registry")
    raise AttributeError(f"module 'vist3a' has no attribute {name!r}")
