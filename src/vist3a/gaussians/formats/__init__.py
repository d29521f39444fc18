"""Scene files: INRIA 3DGS ``.ply``, antimatter15 ``.splat`` and Niantic ``.spz``.

``load_scene(path) -> Gaussians`` and ``save_scene(gaussians, path) -> SaveReport`` pick the format
from the suffix. Every format module converts to and from the in-memory conventions of
:mod:`vist3a.gaussians.gaussians` at its edge (activated values, wxyz quaternions, OpenCV/RDF axes).

Saving drops splats that a viewer cannot draw (non-finite or degenerate values, opacity below
``min_opacity``), counts them in the returned :class:`SaveReport` and logs it; ``strict=True`` turns
non-finite splats into an error instead. Files are written atomically: on any error no file appears.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch

from vist3a.errors import InputError
from vist3a.gaussians.gaussians import Gaussians
from vist3a.io_utils import atomic_path

log = logging.getLogger(__name__)

#: suffix -> format name
FORMATS: dict[str, str] = {".ply": "ply", ".splat": "splat", ".spz": "spz"}
#: the name that resolves to the scene shipped with the package
EXAMPLE_NAME = "example"
#: the default threshold below which splats are dropped on save (1/255: invisible in 8-bit output)
MIN_OPACITY = 1.0 / 255.0


@dataclass(frozen=True)
class SaveReport:
    """What :func:`save_scene` wrote.

    Attributes:
        path: the file written.
        format: ``"ply"``, ``"splat"`` or ``"spz"``.
        written: number of splats in the file.
        dropped_invalid: splats dropped for non-finite or degenerate values (zero quaternion, scale <= 0).
        dropped_transparent: splats dropped for opacity below the threshold.
        sh_degree: SH degree stored in the file (``.splat`` stores 0).
    """

    path: Path
    format: str
    written: int
    dropped_invalid: int = 0
    dropped_transparent: int = 0
    sh_degree: int = 0

    @property
    def dropped(self) -> int:
        return self.dropped_invalid + self.dropped_transparent

    def summary(self) -> str:
        text = f"wrote {self.path} ({self.format}, {self.written} splats, SH degree {self.sh_degree})"
        if self.dropped:
            text += (
                f"; dropped {self.dropped} splats ({self.dropped_invalid} non-finite/degenerate, "
                f"{self.dropped_transparent} below the opacity threshold)"
            )
        else:
            text += "; dropped 0 splats"
        return text


def example_scene_path() -> Path:
    """Path of the example scene shipped in the package (``vist3a/assets/example/scene.ply``)."""
    ref = resources.files("vist3a").joinpath("assets", "example", "scene.ply")
    path = Path(str(ref))
    if not path.is_file():
        raise InputError(f"the example scene is missing from this installation: {path}")
    return path


def resolve_scene_path(path: str | os.PathLike[str]) -> Path:
    """``"example"`` (when no such file exists) -> the shipped example scene; anything else unchanged."""
    p = Path(path).expanduser()
    if str(path) == EXAMPLE_NAME and not p.exists():
        return example_scene_path()
    return p


def scene_format(path: str | os.PathLike[str]) -> str:
    """The format name for ``path``'s suffix; :class:`InputError` for an unknown suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        known = ", ".join(FORMATS)
        raise InputError(f"unknown scene file type {suffix or '(no suffix)'!r} for {path}; use one of {known}")
    return FORMATS[suffix]


def _module(fmt: str):  # noqa: ANN202 - a format module
    from vist3a.gaussians.formats import ply, splat, spz

    return {"ply": ply, "splat": splat, "spz": spz}[fmt]


def invalid_mask(g: Gaussians) -> torch.Tensor:
    """``[N]`` bool: splats with a non-finite value, a non-positive scale or a zero quaternion."""
    bad = ~torch.isfinite(g.means).all(-1)
    bad |= ~torch.isfinite(g.quats).all(-1) | (g.quats.norm(dim=-1) < 1e-12)
    bad |= ~torch.isfinite(g.scales).all(-1) | (g.scales <= 0).any(-1)
    bad |= ~torch.isfinite(g.opacities)
    bad |= ~torch.isfinite(g.sh).flatten(1).all(-1)
    return bad


def _check_shapes(g: Gaussians) -> None:
    if not isinstance(g, Gaussians):
        raise InputError(f"save_scene needs a Gaussians object, got {type(g).__name__}")
    # validate() on meta tensors checks shapes only.
    Gaussians(**{k: v.to("meta") for k, v in g._tensors().items()}).validate()


def sanitize(
    g: Gaussians, min_opacity: float = MIN_OPACITY, strict: bool = False
) -> tuple[Gaussians, int, int]:
    """Drop splats a file cannot hold; returns ``(kept, n_invalid, n_transparent)``.

    ``strict=True`` raises :class:`InputError` on non-finite/degenerate splats instead of dropping them.
    """
    _check_shapes(g)
    g = g.detach().to("cpu", torch.float32)
    bad = invalid_mask(g)
    n_bad = int(bad.sum())
    if n_bad and strict:
        first = int(bad.nonzero()[0, 0])
        fields = [k for k, v in g._tensors().items() if not torch.isfinite(v[first]).all()]
        what = ", ".join(fields) if fields else "a zero quaternion or non-positive scale"
        raise InputError(
            f"scene has {n_bad} splats with non-finite or degenerate values (first: splat {first}, {what}); "
            "nothing written (drop them by saving without strict)"
        )
    keep = ~bad
    transparent = keep & (g.opacities < min_opacity)
    n_transparent = int(transparent.sum())
    keep &= ~transparent
    kept = g[keep]
    if len(g) and not len(kept):
        raise InputError(
            f"all {len(g)} splats would be dropped ({n_bad} non-finite/degenerate, {n_transparent} with "
            f"opacity below {min_opacity:.4g}); nothing written"
        )
    kept.quats = torch.nn.functional.normalize(kept.quats, dim=-1)
    kept.validate()
    return kept, n_bad, n_transparent


def load_scene(path: str | os.PathLike[str], skip_invalid: bool = True) -> Gaussians:
    """Read a ``.ply``, ``.splat`` or ``.spz`` scene (``"example"`` names the shipped scene).

    Returns activated float32 CPU Gaussians. Splats with non-finite or degenerate values are skipped
    with a warning (``skip_invalid=False`` keeps them, unvalidated, e.g. so that :func:`save_scene`
    counts them); a malformed file raises :class:`~vist3a.errors.FormatError` naming the problem.
    """
    p = resolve_scene_path(path)
    fmt = scene_format(p)
    if not p.exists():
        raise InputError(f"scene file not found: {p}")
    if p.is_dir():
        raise InputError(f"scene path is a folder, expected a {', '.join(FORMATS)} file: {p}")
    g = _module(fmt).read(p)
    if not skip_invalid:
        return g
    bad = invalid_mask(g)
    if bad.any():
        log.warning("%s: skipped %d splats with non-finite or degenerate values", p, int(bad.sum()))
        g = g[~bad]
    g.quats = torch.nn.functional.normalize(g.quats, dim=-1)
    g.opacities = g.opacities.clamp(0.0, 1.0)
    return g.validate()


def save_scene(
    gaussians: Gaussians,
    path: str | os.PathLike[str],
    *,
    min_opacity: float = MIN_OPACITY,
    strict: bool = False,
    **opts: object,
) -> SaveReport:
    """Write ``gaussians`` to ``path`` (format from the suffix), atomically.

    Args:
        gaussians: the scene (any device/dtype; written as float32).
        path: output file ending in ``.ply``, ``.splat`` or ``.spz``; its folder must exist.
        min_opacity: splats with opacity below this are dropped (default 1/255; 0 keeps all).
        strict: raise on non-finite/degenerate splats instead of dropping them.
        **opts: format options (``.spz``: ``fractional_bits``).
    Returns:
        a :class:`SaveReport`; dropped splats are also logged.
    """
    fmt = scene_format(path)
    module = _module(fmt)
    allowed = set(getattr(module, "WRITE_OPTIONS", ()))
    unknown = sorted(set(opts) - allowed)
    if unknown:
        raise InputError(f"unknown option(s) for .{fmt} output: {', '.join(unknown)} (known: {sorted(allowed)})")
    kept, n_bad, n_transparent = sanitize(gaussians, min_opacity=min_opacity, strict=strict)
    with atomic_path(path) as tmp:
        stored_degree = module.write(kept, tmp, **opts)
    report = SaveReport(Path(path), fmt, len(kept), n_bad, n_transparent, stored_degree)
    if report.dropped:
        log.info(
            "%s: dropped %d of %d splats (%d non-finite/degenerate, %d with opacity < %.4g)",
            path, report.dropped, len(gaussians), n_bad, n_transparent, min_opacity,
        )
    log.debug(report.summary())
    return report


__all__ = [
    "EXAMPLE_NAME",
    "FORMATS",
    "MIN_OPACITY",
    "SaveReport",
    "example_scene_path",
    "invalid_mask",
    "load_scene",
    "resolve_scene_path",
    "sanitize",
    "save_scene",
    "scene_format",
]
