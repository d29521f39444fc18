"""The mini model's shipped weights (``vist3a/assets/mini/``) and how the mini presets find them.

The package carries the trained mini set (issues 9-10), fp16 safetensors:

- ``wan-mini/``: the video model (``vae/`` and ``transformer/`` in diffusers format, ``video_model.json``;
  a folder with ``vae/`` alone ships the VAE stage, the DiT is then random);
- ``anysplat-mini/``: the reconstruction network (``vist3a_model.json`` + its weights, in shards of at most
  :data:`SHARD_SIZE` with ``model.safetensors.index.json``);
- ``stitched-mini/``: the stitched decoder's trained state over ``anysplat-mini`` (``stitched.safetensors``
  + ``stitched.json``: stitching layer, LoRA, tokens).

The mini builders take ``weights=SHIPPED`` by default: the shipped folder when it is there and the
preset is built at its own widths; random weights (seeded) when config overrides are given (tests,
training from scratch), on ``device="meta"``, or when ``weights=None`` is passed explicitly.
"""

from __future__ import annotations

import logging
import os
from importlib import resources
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Default ``weights`` of the mini builders: the weights shipped in the package.
SHIPPED = "shipped"

#: Largest weights file of the shipped set: shards below the device's 16 MiB per-file return limit (a device run's
#: export comes back as is) and keep every blob in git small.
SHARD_SIZE = 15 * 2**20

_FOLDERS = {"wan-mini": "wan-mini", "anysplat-mini": "anysplat-mini", "stitched-mini": "stitched-mini"}
_MARKERS = {"wan-mini": "vae", "stitched-mini": "stitched.json"}  # anysplat-mini: its weights, one file or shards
_warned: set[str] = set()


def mini_assets() -> Path:
    """The folder of the shipped mini weights (it may be absent in a trimmed install).

    ``$VIST3A_MINI_ASSETS`` replaces it (a folder laid out like ``vist3a/assets/mini``): how a candidate set
    is tried end to end (generate, eval, the claim table) before it is committed into the package.
    """
    env = os.environ.get("VIST3A_MINI_ASSETS")
    if env:
        folder = Path(env).expanduser()
        if not folder.is_dir():  # a typo must not fall back to random weights
            from vist3a.errors import MissingWeightsError

            raise MissingWeightsError(f"VIST3A_MINI_ASSETS={env}: no such folder")
        return folder
    return Path(str(resources.files("vist3a") / "assets" / "mini"))


def shipped_folder(preset: str) -> Path | None:
    """The shipped folder of ``preset`` (``wan-mini``, ``anysplat-mini``, ``stitched-mini``), or None."""
    from vist3a.models.checkpoint import has_weights

    folder = mini_assets() / _FOLDERS[preset]
    present = has_weights(folder) if preset == "anysplat-mini" else (folder / _MARKERS[preset]).exists()
    return folder if present else None


def resolve(preset: str, weights: Any, overrides: bool = False, device: Any = "cpu") -> Any:
    """What a mini builder should load: ``weights`` itself unless it is :data:`SHIPPED`.

    :data:`SHIPPED` becomes the shipped folder, or None (random init) when config ``overrides`` are
    given, on the meta device, or when nothing ships (with a one-time warning).
    """
    if not (isinstance(weights, str) and weights == SHIPPED):
        return weights
    if overrides or str(device) == "meta":
        return None
    folder = shipped_folder(preset)
    if folder is None and preset not in _warned:
        _warned.add(preset)
        log.warning("%s: no trained weights ship in %s; using random weights", preset, mini_assets())
    return folder
