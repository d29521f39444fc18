"""Niantic ``.spz``: a gzip stream of a 16-byte header and quantised attribute blocks.

Header (little-endian)::

    uint32 magic = 0x5053474e ("NGSP")   uint32 version (2 or 3 read, 3 written)   uint32 numPoints
    uint8 shDegree (0..4)   uint8 fractionalBits   uint8 flags (bit 0 antialiased)   uint8 reserved

Then, for all points, block after block:

- positions: 3 x 24-bit signed fixed point per point (value = int24 / 2**fractionalBits);
- alphas: uint8 = opacity x 255;
- colours: uint8 = DC coefficient x (0.15 x 255) + 127.5 (spz's colour scale, wider than [0,1]);
- scales: uint8 = (log scale + 10) x 16;
- rotations: v3 "smallest three" in 4 bytes (2-bit index of the largest of x,y,z,w, then the other
  three as sign bit + 9-bit magnitude / sqrt(1/2), first one in the highest bits); v2 stores x,y,z as
  uint8 (q x 127.5 + 127.5) with w >= 0 implied;
- SH bands 1..d: uint8 = x x 128 + 128, colour as the fast axis (coefficient-major), quantised to
  5 bits for band 1 and 4 bits for the others (rounded to the nearest bucket of 8 / 16).

All uint8 encodings round half away from zero and clip to 0..255.
spz's coordinates are RUB (x right, y up, z back); ours are RDF (OpenCV). The two differ by a
rotation of 180 degrees about x: positions flip y and z, quaternions flip their y and z parts, and
each SH coefficient flips its sign when its basis function is odd under (x,y,z) -> (x,-y,-z).
"""

from __future__ import annotations

import gzip
import logging
import struct
import zlib
from functools import cache
from pathlib import Path

import numpy as np
import torch

from vist3a.errors import FormatError, InputError
from vist3a.gaussians.gaussians import MAX_SH_DEGREE, Gaussians, eval_sh

log = logging.getLogger(__name__)

MAGIC = 0x5053474E
HEADER = struct.Struct("<IIIBBBB")
READ_VERSIONS = (2, 3)
WRITE_VERSION = 3
COLOR_SCALE = 0.15
DEFAULT_FRACTIONAL_BITS = 12
SH1_BITS = 5
SH_REST_BITS = 4
FLAG_ANTIALIASED = 0x1
FLAG_EXTENSIONS = 0x2
#: RDF (ours) <-> RUB (spz): sign of x, y, z
AXIS_FLIP = (1.0, -1.0, -1.0)
WRITE_OPTIONS: tuple[str, ...] = ("fractional_bits",)
_SQRT1_2 = float(np.sqrt(0.5))


def _to_u8(x: np.ndarray) -> np.ndarray:
    """Round half away from zero and clip to 0..255."""
    return np.clip(np.sign(x) * np.floor(np.abs(x) + 0.5), 0, 255).astype(np.uint8)


@cache
def sh_flip_signs(flip: tuple[float, float, float] = AXIS_FLIP, degree: int = MAX_SH_DEGREE) -> tuple[float, ...]:
    """Signs ``s_k`` (k = 1..(d+1)^2-1) with ``Y_k(F d) = s_k Y_k(d)`` for ``F = diag(flip)``.

    Found numerically from :func:`eval_sh` (the gsplat basis): every real SH basis function is even
    or odd in each axis, so ``sum_d Y_k(F d) Y_k(d)`` has the sign ``s_k``.
    """
    k = (degree + 1) ** 2
    dirs = torch.randn(256, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    flipped = dirs * torch.tensor(flip, dtype=torch.float64)
    basis = torch.eye(k, dtype=torch.float64)[:, :, None].expand(k, k, 3)  # one-hot coefficients
    y = eval_sh(basis[None], dirs[:, None], degree)[..., 0]  # [D,K]
    yf = eval_sh(basis[None], flipped[:, None], degree)[..., 0]
    return tuple(float(s) for s in torch.sign((y * yf).sum(0))[1:])


def _expected_size(n: int, version: int, degree: int) -> int:
    rot_bytes = 4 if version >= 3 else 3
    sh_dim = (degree + 1) ** 2 - 1
    return HEADER.size + n * (9 + 1 + 3 + 3 + rot_bytes + 3 * sh_dim)


def _pack_smallest_three(q_xyzw: np.ndarray) -> np.ndarray:
    """Unit quaternions ``[N,4]`` (x,y,z,w) -> ``[N,4]`` uint8 (little-endian uint32)."""
    n = q_xyzw.shape[0]
    largest = np.argmax(np.abs(q_xyzw), axis=-1)
    negate = np.take_along_axis(q_xyzw, largest[:, None], -1)[:, 0] < 0
    comp = largest.astype(np.uint32)
    for i in range(4):
        skip = largest == i
        neg = ((q_xyzw[:, i] < 0) ^ negate).astype(np.uint32)
        mag = np.floor(511.0 * np.abs(q_xyzw[:, i]) / _SQRT1_2 + 0.5).clip(0, 511).astype(np.uint32)
        comp = np.where(skip, comp, (comp << np.uint32(10)) | (neg << np.uint32(9)) | mag)
    return comp.astype("<u4").view(np.uint8).reshape(n, 4)


def _unpack_smallest_three(raw: np.ndarray) -> np.ndarray:
    """``[N,4]`` uint8 -> ``[N,4]`` quaternions (x,y,z,w)."""
    comp = raw.astype(np.uint8).copy().view("<u4")[:, 0].astype(np.int64)
    largest = comp >> 30
    others = np.array([[j for j in range(4) if j != i] for i in range(4)])[largest]  # [N,3] ascending
    q = np.zeros((raw.shape[0], 4), dtype=np.float64)
    for slot in (2, 1, 0):  # the last of the three sits in the lowest bits
        mag = comp & 511
        neg = (comp >> 9) & 1
        comp = comp >> 10
        val = _SQRT1_2 * mag / 511.0 * np.where(neg == 1, -1.0, 1.0)
        np.put_along_axis(q, others[:, slot : slot + 1], val[:, None], -1)
    rest = (q**2).sum(-1)
    np.put_along_axis(q, largest[:, None], np.sqrt(np.clip(1.0 - rest, 0.0, None))[:, None], -1)
    return q


def _unpack_first_three(raw: np.ndarray) -> np.ndarray:
    """v2: ``[N,3]`` uint8 x,y,z -> ``[N,4]`` quaternions (x,y,z,w) with w >= 0."""
    xyz = raw.astype(np.float64) / 127.5 - 1.0
    w = np.sqrt(np.clip(1.0 - (xyz**2).sum(-1), 0.0, None))
    return np.concatenate([xyz, w[:, None]], -1)


def _quantize_sh(x: np.ndarray, bits: int) -> np.ndarray:
    bucket = 1 << (8 - bits)
    q = np.sign(x * 128.0) * np.floor(np.abs(x * 128.0) + 0.5) + 128.0
    q = np.floor((q + bucket // 2) / bucket) * bucket
    return np.clip(q, 0, 255).astype(np.uint8)


def encode(g: Gaussians, fractional_bits: int | None = None) -> bytes:
    """The uncompressed v3 stream for ``g`` (float32 CPU, sanitised)."""
    n, degree = len(g), g.sh_degree
    flip = np.array(AXIS_FLIP)
    means = g.means.double().numpy() * flip
    max_abs = float(np.abs(means).max()) if n else 0.0
    limit = (1 << 23) - 1
    if fractional_bits is None:
        fractional_bits = DEFAULT_FRACTIONAL_BITS
        while fractional_bits > 0 and max_abs * (1 << fractional_bits) > limit:
            fractional_bits -= 1
        if fractional_bits != DEFAULT_FRACTIONAL_BITS:
            log.info(".spz: positions reach %.4g; using %d fractional bits", max_abs, fractional_bits)
    if not 0 <= int(fractional_bits) <= 23:
        raise InputError(f".spz fractional_bits must be in 0..23, got {fractional_bits}")
    fractional_bits = int(fractional_bits)
    fixed = np.sign(means) * np.floor(np.abs(means) * (1 << fractional_bits) + 0.5)
    if n and np.abs(fixed).max() > limit:
        raise InputError(
            f".spz stores positions as 24-bit fixed point: |position| up to {max_abs:.4g} does not fit "
            f"with {fractional_bits} fractional bits (max {limit / (1 << fractional_bits):.4g})"
        )
    positions = fixed.astype("<i4").view(np.uint8).reshape(n, 3, 4)[:, :, :3].reshape(n, 9)
    alphas = _to_u8(g.opacities.double().numpy() * 255.0)
    colors = _to_u8(g.sh[:, 0].double().numpy() * (COLOR_SCALE * 255.0) + 127.5)
    scales = _to_u8((np.log(g.scales.double().numpy()) + 10.0) * 16.0)
    q = torch.nn.functional.normalize(g.quats.double(), dim=-1).numpy()  # w,x,y,z
    # F = diag(flip) is a rotation by pi about x: R -> F R F multiplies the quaternion's x, y, z parts
    # by (fy*fz, fx*fz, fx*fy). spz orders quaternions x, y, z, w.
    q_xyzw = np.stack(
        [q[:, 1] * flip[1] * flip[2], q[:, 2] * flip[0] * flip[2], q[:, 3] * flip[0] * flip[1], q[:, 0]], -1
    )
    rotations = _pack_smallest_three(q_xyzw)
    blocks = [positions, alphas, colors, scales, rotations]
    if degree:
        signs = np.array(sh_flip_signs(AXIS_FLIP, degree))
        rest = g.sh[:, 1:].double().numpy() * signs[None, :, None]  # [N,K-1,3], colour fastest
        sh = np.empty(rest.shape, dtype=np.uint8)
        sh[:, :3] = _quantize_sh(rest[:, :3], SH1_BITS)
        sh[:, 3:] = _quantize_sh(rest[:, 3:], SH_REST_BITS)
        blocks.append(sh)
    header = HEADER.pack(MAGIC, WRITE_VERSION, n, degree, fractional_bits, 0, 0)
    return header + b"".join(np.ascontiguousarray(b).tobytes() for b in blocks)


def write(g: Gaussians, path: Path, fractional_bits: int | None = None) -> int:
    """Write ``g`` as gzip-compressed ``.spz`` version 3; returns the SH degree."""
    path.write_bytes(gzip.compress(encode(g, fractional_bits), compresslevel=6, mtime=0))
    return g.sh_degree


def decode(data: bytes, name: str = "<bytes>") -> Gaussians:
    """Decode an uncompressed spz stream (v2 or v3) into activated RDF Gaussians."""
    if len(data) < HEADER.size:
        raise FormatError(f"{name}: {len(data)} bytes is too short for the {HEADER.size}-byte .spz header")
    magic, version, n, degree, frac, flags, _reserved = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise FormatError(f"{name}: bad magic 0x{magic:08x} (a .spz starts with 0x{MAGIC:08x} 'NGSP')")
    if version not in READ_VERSIONS:
        raise FormatError(f"{name}: unsupported .spz version {version} (this reader reads versions 2 and 3)")
    if degree > MAX_SH_DEGREE:
        raise FormatError(f"{name}: SH degree {degree} in the header; .spz allows 0..{MAX_SH_DEGREE}")
    if flags & FLAG_EXTENSIONS:
        raise FormatError(f"{name}: uses .spz extensions (flags 0x{flags:02x}), which this reader does not support")
    if frac > 23:
        raise FormatError(f"{name}: {frac} fractional bits in the header; 24-bit positions allow at most 23")
    expected = _expected_size(n, version, degree)
    if len(data) != expected:
        what = "too short" if len(data) < expected else "too long"
        raise FormatError(
            f"{name}: the header says {n} points (SH degree {degree}, v{version}), which need {expected} "
            f"bytes, but the stream has {len(data)}: file is {what} (truncated or corrupt)"
        )
    if flags & FLAG_ANTIALIASED:
        log.info("%s: the scene was trained with antialiasing (rasterize in antialiased mode)", name)
    buf = np.frombuffer(data, dtype=np.uint8, offset=HEADER.size)
    offset = 0

    def take(size: int) -> np.ndarray:
        nonlocal offset
        out = buf[offset : offset + size]
        offset += size
        return out

    raw_pos = take(9 * n).reshape(n, 3, 3).astype(np.int32)
    fixed = raw_pos[..., 0] | (raw_pos[..., 1] << 8) | (raw_pos[..., 2] << 16)
    fixed = np.where(fixed & 0x800000, fixed - (1 << 24), fixed)
    flip = np.array(AXIS_FLIP)
    means = fixed.astype(np.float64) / (1 << frac) * flip
    opacity = take(n).astype(np.float64) / 255.0
    dc = (take(3 * n).reshape(n, 3).astype(np.float64) / 255.0 - 0.5) / COLOR_SCALE
    scales = np.exp(take(3 * n).reshape(n, 3).astype(np.float64) / 16.0 - 10.0)
    if version >= 3:
        q_xyzw = _unpack_smallest_three(take(4 * n).reshape(n, 4))
    else:
        q_xyzw = _unpack_first_three(take(3 * n).reshape(n, 3))
    quats = np.stack(
        [
            q_xyzw[:, 3],
            q_xyzw[:, 0] * flip[1] * flip[2],
            q_xyzw[:, 1] * flip[0] * flip[2],
            q_xyzw[:, 2] * flip[0] * flip[1],
        ],
        -1,
    )
    k = (degree + 1) ** 2
    sh = np.zeros((n, k, 3), dtype=np.float64)
    sh[:, 0] = dc
    if degree:
        rest = (take(3 * (k - 1) * n).reshape(n, k - 1, 3).astype(np.float64) - 128.0) / 128.0
        sh[:, 1:] = rest * np.array(sh_flip_signs(AXIS_FLIP, degree))[None, :, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        quats = quats / np.linalg.norm(quats, axis=-1, keepdims=True)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    return Gaussians(t(means), t(quats), t(scales), t(opacity), t(sh))


def read(path: Path) -> Gaussians:
    """Read a ``.spz`` file (gzip; versions 2 and 3; the zstd container of version 4 is refused clearly)."""
    raw = Path(path).read_bytes()
    if len(raw) >= 8 and struct.unpack_from("<I", raw)[0] == MAGIC:  # v4+: uncompressed header, zstd streams
        version = struct.unpack_from("<I", raw, 4)[0]
        raise FormatError(
            f"{path}: unsupported .spz version {version} (zstd container); this reader reads versions 2 and 3 "
            "(gzip); re-save it as version 3 with the spz tools"
        )
    try:
        data = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise FormatError(f"{path}: not a gzip stream ({exc}); a .spz file is gzip-compressed") from exc
    return decode(data, str(path))
