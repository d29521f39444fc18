"""The INRIA 3DGS ``.ply`` layout (graphdeco-inria/gaussian-splatting), the interchange standard.

One binary little-endian ``vertex`` element of float properties, in this order::

    x y z nx ny nz f_dc_0 f_dc_1 f_dc_2 f_rest_0 .. f_rest_{3(K-1)-1} opacity scale_0..2 rot_0..3

Stored values are *pre-activation*: ``opacity`` is a logit, ``scale_*`` are log scales, ``rot_*`` an
(unnormalised) quaternion in w,x,y,z order; normals are zero. ``f_rest`` is channel-major: all
red coefficients of bands 1.. first, then green, then blue (``sh[:,1:,:]`` transposed to ``[N,3,K-1]``).
Axes are OpenCV/COLMAP (RDF), the same as ours, so positions pass through unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plyfile
import torch

from vist3a.errors import FormatError
from vist3a.gaussians.gaussians import MAX_SH_DEGREE, Gaussians

ELEMENT = "vertex"
WRITE_OPTIONS: tuple[str, ...] = ()
_FLOAT_TYPES = {"f4", "f8"}


def property_names(sh_degree: int) -> list[str]:
    """The vertex properties, in file order, for SH degree ``sh_degree``."""
    n_rest = 3 * ((sh_degree + 1) ** 2 - 1)
    return [
        *("x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"),
        *(f"f_rest_{i}" for i in range(n_rest)),
        "opacity",
        *(f"scale_{i}" for i in range(3)),
        *(f"rot_{i}" for i in range(4)),
    ]


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p.astype(np.float64), 1e-7, 1.0 - 1e-7)
    return np.log(p) - np.log1p(-p)


def write(g: Gaussians, path: Path) -> int:
    """Write activated Gaussians ``g`` (float32 CPU, already sanitised) to ``path``; returns the SH degree."""
    degree = g.sh_degree
    n, k = len(g), g.sh.shape[1]
    names = property_names(degree)
    table = np.zeros((n, len(names)), dtype=np.float32)
    means = g.means.double().numpy()
    sh = g.sh.double().numpy()
    table[:, 0:3] = means
    # columns 3:6 are the (zero) normals
    table[:, 6:9] = sh[:, 0, :]
    rest = np.ascontiguousarray(sh[:, 1:, :].transpose(0, 2, 1)).reshape(n, 3 * (k - 1))  # [N,3,K-1] flat
    col = 9 + rest.shape[1]
    table[:, 9:col] = rest
    table[:, col] = _logit(g.opacities.double().numpy())
    table[:, col + 1 : col + 4] = np.log(g.scales.double().numpy())
    table[:, col + 4 : col + 8] = g.quats.double().numpy()
    records = np.empty(n, dtype=[(name, "<f4") for name in names])
    for i, name in enumerate(names):
        records[name] = table[:, i]
    element = plyfile.PlyElement.describe(records, ELEMENT)
    plyfile.PlyData([element], text=False, byte_order="<").write(str(path))
    return degree


def _column(data: np.ndarray, name: str) -> np.ndarray:
    return np.asarray(data[name], dtype=np.float64)


def read(path: Path) -> Gaussians:
    """Read an INRIA-layout ``.ply``; raises :class:`FormatError` naming what is wrong with the file.

    Accepts SH degree 0..4 (inferred from the number of ``f_rest_*``), float or double properties,
    extra properties (ignored) and files without normals. Quaternions are normalised.
    """
    # plyfile memory-maps binary data from an open file (fast; checks the size); mmap=False parses row by row.
    with open(path, "rb") as stream:
        try:
            ply = plyfile.PlyData.read(stream)
        except (plyfile.PlyParseError, ValueError, UnicodeDecodeError, MemoryError) as exc:
            raise FormatError(f"{path}: not a readable .ply file ({exc})") from exc
        names = [e.name for e in ply.elements]
        if ELEMENT not in names:
            raise FormatError(f"{path}: no '{ELEMENT}' element (found: {names or 'none'}); not a 3DGS .ply")
        el = ply[ELEMENT]
        return _decode(path, el)


def _decode(path: Path, el: plyfile.PlyElement) -> Gaussians:
    props = {p.name: p for p in el.properties}
    rest = sorted(
        (name for name in props if name.startswith("f_rest_")),
        key=lambda s: int(s[7:]) if s[7:].isdigit() else -1,
    )
    n_rest = len(rest)
    valid_counts = {3 * ((d + 1) ** 2 - 1): d for d in range(MAX_SH_DEGREE + 1)}
    if n_rest not in valid_counts:
        raise FormatError(
            f"{path}: {n_rest} f_rest_* properties; a 3DGS .ply has 3*((d+1)^2-1) of them "
            f"({sorted(valid_counts)}) for SH degree d in 0..{MAX_SH_DEGREE}"
        )
    degree = valid_counts[n_rest]
    expected = [name for name in property_names(degree) if name not in ("nx", "ny", "nz")]
    missing = [name for name in expected if name not in props]
    if missing:
        raise FormatError(f"{path}: missing vertex properties {missing}; not a 3DGS .ply (INRIA layout)")
    for name in expected:
        prop = props[name]
        dtype = getattr(prop, "val_dtype", None)
        if isinstance(prop, plyfile.PlyListProperty) or dtype is None or np.dtype(dtype).str[1:] not in _FLOAT_TYPES:
            raise FormatError(f"{path}: vertex property '{name}' must be float, got {prop}")
    data = el.data
    n = len(data)
    means = np.stack([_column(data, c) for c in ("x", "y", "z")], -1)
    dc = np.stack([_column(data, f"f_dc_{i}") for i in range(3)], -1)[:, None, :]  # [N,1,3]
    k = (degree + 1) ** 2
    if n_rest:
        rest_flat = np.stack([_column(data, f"f_rest_{i}") for i in range(n_rest)], -1)
        rest_sh = rest_flat.reshape(n, 3, k - 1).transpose(0, 2, 1)  # channel-major -> [N,K-1,3]
        sh = np.concatenate([dc, rest_sh], axis=1)
    else:
        sh = dc
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        opacity = 1.0 / (1.0 + np.exp(-_column(data, "opacity")))
        scales = np.exp(np.stack([_column(data, f"scale_{i}") for i in range(3)], -1))
        quats = np.stack([_column(data, f"rot_{i}") for i in range(4)], -1)
        quats = quats / np.linalg.norm(quats, axis=-1, keepdims=True)  # zero rows -> NaN, skipped later
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    return Gaussians(t(means), t(quats), t(scales), t(opacity), t(sh))
