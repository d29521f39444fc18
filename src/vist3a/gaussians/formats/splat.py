"""The antimatter15 ``.splat`` layout: 32 bytes per splat, no header, SH degree 0 only.

Per splat (little-endian)::

    position  3 x float32
    scale     3 x float32   linear (not log)
    rgba      4 x uint8     rgb = colour of the DC term x 255, a = opacity x 255
    rotation  4 x uint8     normalised quaternion w,x,y,z mapped by q*128+128, clipped to 0..255

Splats are written in the order web viewers expect: by importance, scale volume x opacity,
descending (big and opaque first). Axes pass through unchanged (the file does not define them;
viewers treat it like the INRIA .ply, i.e. OpenCV/RDF, as we do).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from vist3a.errors import FormatError
from vist3a.gaussians.gaussians import Gaussians, rgb_to_sh, sh_to_rgb

log = logging.getLogger(__name__)

RECORD = np.dtype([("position", "<f4", (3,)), ("scale", "<f4", (3,)), ("rgba", "u1", (4,)), ("rot", "u1", (4,))])
BYTES_PER_SPLAT = 32
assert RECORD.itemsize == BYTES_PER_SPLAT
WRITE_OPTIONS: tuple[str, ...] = ()


def _to_u8(x: np.ndarray) -> np.ndarray:
    """Round half away from zero and clip to 0..255."""
    return np.clip(np.sign(x) * np.floor(np.abs(x) + 0.5), 0, 255).astype(np.uint8)


def importance_order(g: Gaussians) -> torch.Tensor:
    """``[N]`` indices sorting splats by scale volume x opacity, descending (stable)."""
    score = g.scales.double().prod(-1) * g.opacities.double()
    return torch.from_numpy(np.argsort(-score.numpy(), kind="stable"))


def write(g: Gaussians, path: Path) -> int:
    """Write ``g`` (float32 CPU, sanitised) as ``.splat``; higher SH bands are dropped. Returns 0."""
    if g.sh_degree > 0:
        log.info(".splat stores colour only: dropping SH bands 1..%d", g.sh_degree)
    g = g[importance_order(g)]
    rec = np.zeros(len(g), dtype=RECORD)
    rec["position"] = g.means.numpy()
    rec["scale"] = g.scales.numpy()
    rgb = sh_to_rgb(g.sh[:, 0].double()).numpy()
    rec["rgba"][:, :3] = _to_u8(rgb * 255.0)
    rec["rgba"][:, 3] = _to_u8(g.opacities.double().numpy() * 255.0)
    q = torch.nn.functional.normalize(g.quats.double(), dim=-1).numpy()
    rec["rot"] = _to_u8(q * 128.0 + 128.0)
    path.write_bytes(rec.tobytes())
    return 0


def read(path: Path) -> Gaussians:
    """Read a ``.splat`` file; its size must be a multiple of 32 bytes."""
    data = Path(path).read_bytes()
    if len(data) % BYTES_PER_SPLAT:
        raise FormatError(
            f"{path}: size {len(data)} bytes is not a multiple of {BYTES_PER_SPLAT} "
            f"(a .splat file holds {BYTES_PER_SPLAT} bytes per splat); truncated or not a .splat"
        )
    rec = np.frombuffer(data, dtype=RECORD)
    means = torch.from_numpy(rec["position"].astype(np.float32))
    scales = torch.from_numpy(rec["scale"].astype(np.float32))
    rgba = torch.from_numpy(rec["rgba"].astype(np.float32)) / 255.0
    q = (torch.from_numpy(rec["rot"].astype(np.float32)) - 128.0) / 128.0
    with torch.no_grad():
        quats = q / q.norm(dim=-1, keepdim=True)  # all-128 rows -> NaN, skipped by load_scene
    sh = rgb_to_sh(rgba[:, :3])[:, None, :]
    return Gaussians(means, quats, scales, rgba[:, 3].contiguous(), sh.contiguous())
