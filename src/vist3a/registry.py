"""Named presets: one place that maps a name to the code that builds it.

Each entry is a ``"module:function"`` string so that importing the registry stays cheap and a
preset's heavy dependencies load only when it is built. The builder takes ``device`` (and any extra
keyword arguments) and returns a ready ``torch.nn.Module`` or pipeline. ``device="meta"`` builds the
architecture without allocating parameters (used to check state-dict layouts of 1B+ models in CI).
"""

from __future__ import annotations

import importlib
from typing import Any

from vist3a.errors import Vist3aError

# name -> "module:builder". Sorted by family; add a preset with one line here.
_PRESETS: dict[str, str] = {
    # reconstruction networks (issue: AnySplat)
    "anysplat": "vist3a.models.anysplat:anysplat",
    "anysplat-mini": "vist3a.models.anysplat:anysplat_mini",
    "vggt-1b": "vist3a.models.vggt:vggt_1b",
    # video generators (issue: video backends)
    "wan2.1-t2v-1.3b": "vist3a.models.video:wan21_t2v_1_3b",
    "wan2.1-t2v-14b": "vist3a.models.video:wan21_t2v_14b",
    "wan-mini": "vist3a.models.video:wan_mini",
    "cogvideox-vae": "vist3a.models.video:cogvideox_vae",
    "hunyuanvideo-vae": "vist3a.models.video:hunyuanvideo_vae",
    # stitched decoders (issue: model stitching)
    "anysplat-stitched": "vist3a.stitching.stitched:anysplat_stitched",
    "stitched-mini": "vist3a.stitching.stitched:stitched_mini",
}


def register(name: str, target: str) -> None:
    """Register ``name`` → ``"package.module:function"`` (overwrites an existing entry)."""
    if ":" not in target:
        raise ValueError(f"registry target must be 'module:function', got {target!r}")
    _PRESETS[name] = target


def names() -> list[str]:
    """All registered preset names, sorted."""
    return sorted(_PRESETS)


def build(name: str, device: Any = "cpu", **kwargs: Any) -> Any:
    """Build the model or pipeline registered under ``name`` on ``device``.

    Args:
        name: a preset name, e.g. ``"anysplat"``, ``"anysplat-mini"``, ``"wan-mini"``.
        device: torch device (``"cpu"``, ``"cuda"``, ``"meta"``, ...).
        **kwargs: passed to the preset's builder (e.g. ``weights=PATH``, ``dtype=...``).
    """
    if name not in _PRESETS:
        known = ", ".join(names()) or "(none)"
        raise Vist3aError(f"unknown preset {name!r}; known presets: {known}")
    module_name, func_name = _PRESETS[name].split(":")
    builder = getattr(importlib.import_module(module_name), func_name)
    return builder(device=device, **kwargs)
