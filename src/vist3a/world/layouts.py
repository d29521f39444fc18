"""Writers of the on-disk layouts of DL3DV, ScanNet and RealEstate10K (see docs/world.md).

Each layout stores cameras exactly as the real dataset does; the conversions from our
:class:`~vist3a.gaussians.cameras.Cameras` (OpenCV axes, camera-to-world, pixel K) are:

- **DL3DV** ``<root>/1K/<scene>/images_4/frame_00000.png`` + ``<root>/1K/<scene>/transforms.json``
  (nerfstudio): ``transform_matrix`` is camera-to-world in OpenGL axes, ``c2w_cv @ diag(1,-1,-1,1)``;
  ``w, h, fl_x, fl_y, cx, cy`` describe the full-resolution ``images/`` frames, which are 4× the
  ``images_4`` files written here (as in DL3DV-ALL-960P); a loader scales K by
  ``image_width / w``. ``file_path`` is ``images/frame_XXXXX.png`` as in the real files.
- **ScanNet** (SensReader export) ``<root>/scans/<scene>/frames/color/<i>.jpg``,
  ``depth/<i>.png`` (uint16 millimetres, 0 = no depth: sky or beyond 65.535 m), ``pose/<i>.txt`` (4×4 camera-to-world,
  OpenCV axes, world z up), ``intrinsic/intrinsic_color.txt`` and ``intrinsic_depth.txt`` (4×4,
  pixel K padded), ``intrinsic/extrinsic_color.txt`` and ``extrinsic_depth.txt`` (identity).
- **RealEstate10K** as the NVS evaluation reads it: ``<root>/<seq>/annotations.json``, a list of
  ``{"idx", "filepath" (relative to root), "intrinsics" (3×3 pixel K), "extrinsics" (4×4
  world-to-camera, OpenCV axes)}``; ``<root>/re10k_indexmap.json`` ``{seq: [12 evenly spaced indices
  starting at 0, in random order]}``; ``<root>/re10k_test.txt`` lists the sequences.

Every layout also gets ``<root>/captions.json`` in the DL3DV caption format (a list of
``{"scene_name", "caption": {"<style>_<start>_<end>": text}}`` plus the ``structured`` caption) and a
``world.json`` per scene (scene, cameras in our convention, captions) for closed-loop evaluation.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vist3a.errors import InputError
from vist3a.io_utils import atomic_path, atomic_write_text
from vist3a.world.raycast import WorldRender
from vist3a.world.sample import WorldSample, scene_seed

log = logging.getLogger(__name__)

LAYOUTS: tuple[str, ...] = ("dl3dv", "scannet", "re10k")
#: DL3DV's transforms.json describes full-resolution frames, 4× the images_4 files.
DL3DV_DOWNSCALE = 4
#: OpenCV (x right, y down, z forward) ↔ OpenGL (x right, y up, z backward) camera axes.
CV_TO_GL = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))
RE10K_VIEWS = 12


def scene_name(layout: str, sample: WorldSample) -> str:
    """The folder name of a scene: ``world_000123`` (DL3DV), ``scene0123_00`` (ScanNet), 16 hex digits (RE10K)."""
    if layout == "dl3dv":
        return f"world_{sample.index:06d}"
    if layout == "scannet":
        return f"scene{sample.index:04d}_00"
    if layout == "re10k":
        return f"{scene_seed(sample.seed, sample.index):016x}"  # < 2**63: exactly 16 hex digits
    raise InputError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")


def _to_uint8(rgb: torch.Tensor) -> np.ndarray:
    """``[3,H,W]`` in [0,1] → ``[H,W,3]`` uint8."""
    return (rgb.detach().cpu().clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def _save_image(path: Path, array: np.ndarray, **kwargs) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, **kwargs)


def _matrix(m: torch.Tensor) -> list[list[float]]:
    return [[round(float(v), 8) for v in row] for row in m]


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")


def _write_txt_matrix(path: Path, m: torch.Tensor) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "\n".join(" ".join(f"{float(v):.6f}" for v in row) for row in m) + "\n")


def caption_entry(name: str, sample: WorldSample) -> dict:
    """The DL3DV-format caption record of one scene (keys end in ``_<first>_<last>`` frame)."""
    last = len(sample.cameras) - 1
    return {
        "scene_name": name,
        "caption": {f"{style}_0_{last}": text for style, text in sample.texts.items()},
        "structured": sample.caption.to_dict(),
        "index": sample.index,
        "seed": sample.seed,
    }


def world_record(sample: WorldSample) -> dict:
    """Everything about a sample in our conventions (``world.json``)."""
    cams = sample.cameras
    return {
        "index": sample.index,
        "seed": sample.seed,
        "scene": sample.scene.to_dict(),
        "motion": sample.trajectory.motion,
        "camera_phrase": sample.trajectory.phrase,
        "cameras": {
            "convention": "OpenCV camera-to-world, pixel intrinsics, world z up",
            "width": cams.width,
            "height": cams.height,
            "c2w": [_matrix(m) for m in cams.c2w.double()],
            "K": [_matrix(k) for k in cams.K.double()],
        },
        "captions": sample.texts,
        "structured": sample.caption.to_dict(),
    }


def write_dl3dv(root: Path, sample: WorldSample, render: WorldRender) -> str:
    name = scene_name("dl3dv", sample)
    folder = root / "1K" / name
    cams = sample.cameras
    frames = []
    for i in range(len(cams)):
        _save_image(folder / "images_4" / f"frame_{i:05d}.png", _to_uint8(render.rgb[i]), compress_level=1)
        c2w_gl = cams.c2w[i].double() @ CV_TO_GL
        frames.append({"file_path": f"images/frame_{i:05d}.png", "transform_matrix": _matrix(c2w_gl), "colmap_im_id": i + 1})
    k = cams.K[0].double() * DL3DV_DOWNSCALE
    meta = {
        "w": cams.width * DL3DV_DOWNSCALE,
        "h": cams.height * DL3DV_DOWNSCALE,
        "fl_x": float(k[0, 0]),
        "fl_y": float(k[1, 1]),
        "cx": float(k[0, 2]),
        "cy": float(k[1, 2]),
        "k1": 0.0,
        "k2": 0.0,
        "p1": 0.0,
        "p2": 0.0,
        "camera_model": "OPENCV",
        "frames": frames,
        "applied_transform": [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]],
    }
    _write_json(folder / "transforms.json", meta)
    _write_json(folder / "world.json", world_record(sample))
    return name


def write_scannet(root: Path, sample: WorldSample, render: WorldRender) -> str:
    name = scene_name("scannet", sample)
    frames = root / "scans" / name / "frames"
    cams = sample.cameras
    for i in range(len(cams)):
        _save_image(frames / "color" / f"{i}.jpg", _to_uint8(render.rgb[i]), quality=95)
        mm = (render.depth[i].detach().cpu().double() * 1000.0).round()
        mm = torch.where(mm > 65535, torch.zeros_like(mm), mm).numpy().astype(np.uint16)  # beyond range: invalid (0)
        _save_image(frames / "depth" / f"{i}.png", mm)
        _write_txt_matrix(frames / "pose" / f"{i}.txt", cams.c2w[i].double())
    k4 = torch.eye(4, dtype=torch.float64)
    k4[:3, :3] = cams.K[0].double()
    for f in ("intrinsic_color.txt", "intrinsic_depth.txt"):
        _write_txt_matrix(frames / "intrinsic" / f, k4)
    for f in ("extrinsic_color.txt", "extrinsic_depth.txt"):
        _write_txt_matrix(frames / "intrinsic" / f, torch.eye(4, dtype=torch.float64))
    _write_json(root / "scans" / name / "world.json", world_record(sample))
    return name


def re10k_index_map(n_frames: int, gen: torch.Generator, views: int = RE10K_VIEWS) -> list[int]:
    """``views`` evenly spaced indices over ``n_frames`` starting at 0, shuffled (the official map's form)."""
    if n_frames < views:
        raise InputError(f"the RE10K index map needs >= {views} frames per sequence, got {n_frames}")
    idx = [int(round(v)) for v in np.linspace(0, n_frames - 1, views)]
    perm = torch.randperm(views, generator=gen).tolist()
    return [idx[p] for p in perm]


def write_re10k(root: Path, sample: WorldSample, render: WorldRender) -> str:
    name = scene_name("re10k", sample)
    cams = sample.cameras
    ann = []
    w2c = cams.w2c.double()
    for i in range(len(cams)):
        rel = f"{name}/images/{i:05d}.png"
        _save_image(root / rel, _to_uint8(render.rgb[i]), compress_level=1)
        ann.append({"idx": i, "filepath": rel, "intrinsics": _matrix(cams.K[i].double()), "extrinsics": _matrix(w2c[i])})
    _write_json(root / name / "annotations.json", ann)
    _write_json(root / name / "world.json", world_record(sample))
    return name


WRITERS = {"dl3dv": write_dl3dv, "scannet": write_scannet, "re10k": write_re10k}


def write_index_files(layout: str, root: Path, names: list[str], samples_meta: list[dict], frames: int, seed: int) -> list[Path]:
    """The set-level files: captions.json (all layouts); RE10K's index map and test list."""
    written = []
    _write_json(root / "captions.json", samples_meta)
    written.append(root / "captions.json")
    if layout == "re10k":
        gen = torch.Generator().manual_seed(scene_seed(seed, 1 << 40))
        if frames >= RE10K_VIEWS:
            index_map = {n: re10k_index_map(frames, gen) for n in names}
            _write_json(root / "re10k_indexmap.json", index_map)
            written.append(root / "re10k_indexmap.json")
        else:
            log.warning("re10k: %d frames < %d; no re10k_indexmap.json written", frames, RE10K_VIEWS)
        atomic_write_text(root / "re10k_test.txt", "".join(f"{n}\n" for n in names))
        written.append(root / "re10k_test.txt")
    return written


def check_out_dir(out: str | os.PathLike[str]) -> Path:
    root = Path(out).expanduser()
    if root.exists() and not root.is_dir():
        raise InputError(f"--out must be a folder, got a file: {root}")
    root.mkdir(parents=True, exist_ok=True)
    if not os.access(root, os.W_OK):
        raise InputError(f"output folder is not writable: {root}")
    return root
