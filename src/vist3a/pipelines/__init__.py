"""Pipelines that compose the models: text → 3D (:class:`TextTo3DPipeline`, ``vist3a generate``).

``load_pipeline(name_or_dir, device=...)`` builds a ready pipeline: ``"mini"``, ``"vist3a-1.3b"``,
``"vist3a-14b"`` or a folder with ``pipeline.json`` (see :mod:`vist3a.pipelines.loading` and
docs/weights.md). ``export_scene`` writes a scene bundle (scene files, cameras.json, videos).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "TextTo3DPipeline": "vist3a.pipelines.text_to_3d",
    "TextTo3DResult": "vist3a.pipelines.text_to_3d",
    "GenerationSettings": "vist3a.pipelines.text_to_3d",
    "OFFICIAL_TEMPLATE": "vist3a.pipelines.text_to_3d",
    "OFFICIAL_NEGATIVE_PROMPT": "vist3a.pipelines.text_to_3d",
    "load_pipeline": "vist3a.pipelines.loading",
    "save_pipeline": "vist3a.pipelines.loading",
    "export_scene": "vist3a.pipelines.export",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vist3a.pipelines' has no attribute {name!r}")
