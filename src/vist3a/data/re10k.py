"""RealEstate10K test sequences with the official 8-context / 4-target index map (NVS evaluation).

On-disk layout (METHOD §4.3)::

    <root>/<seq_id>/annotations.json   list of {"idx": int, "filepath": str (relative to <root>),
                                                "intrinsics": 3×3 pixel K, "extrinsics": 4×4}

Index map (``re10k_indexmap.json`` of the official release): ``{seq_id: [12 indices into that
sequence's annotation list]}``. The official evaluation uses list positions 0–7 as the context *in
the stored (shuffled) order* and positions 11, 10, 9, 8 (``range(12)[::-1][:4]``) as the targets.

Protocols:

* ``"official"``: that order, and the official image preprocessing with its width/height swap
  (:func:`vist3a.data.transforms.official_resize_crop`, PIL Lanczos) — for comparison with published numbers.
* ``"default"``: the same 8 context / 4 target frames, each set sorted by time; aspect-correct resize +
  centre crop.

A sample's ``images`` are ``[12,3,S,S]``: the 8 context views, then the 4 targets (``num_context = 8``).
The extrinsic convention of ``annotations.json`` is not documented upstream (it is unused there);
``extrinsics="w2c"`` (RealEstate10K's own camera files are world-to-camera) or ``"c2w"`` says which.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Literal

import torch

from vist3a.data import OnError, Protocol, SceneDataset, check_protocol
from vist3a.data.transforms import (
    Size,
    official_resize_crop,
    pil_to_tensor,
    read_image_pil,
    resize,
    resize_center_crop,
)
from vist3a.errors import FormatError, InputError
from vist3a.gaussians.cameras import Cameras

log = logging.getLogger(__name__)

NUM_VIEWS = 12
NUM_CONTEXT = 8


def load_re10k_index_map(source: str | os.PathLike[str] | dict) -> dict[str, list[int]]:
    """Read and check an index map: every entry 12 distinct non-negative integers.

    Raises:
        FormatError: not a JSON object of 12-integer lists (names the first bad entry).
    """
    if isinstance(source, dict):
        data = source
        where = "index map"
    else:
        p = Path(source)
        where = str(p)
        try:
            data = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read the RE10K index map {p}: {exc}") from exc
    if not isinstance(data, dict):
        raise FormatError(f"{where}: expected a JSON object {{seq_id: [12 indices]}}")
    out: dict[str, list[int]] = {}
    for seq, ids in data.items():
        if (
            not isinstance(ids, list)
            or len(ids) != NUM_VIEWS
            or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids)
            or len(set(ids)) != NUM_VIEWS
        ):
            raise FormatError(f"{where}: entry {seq!r} must be {NUM_VIEWS} distinct non-negative integers, got {ids!r}")
        out[str(seq)] = list(ids)
    return out


def split_context_targets(indices: list[int], protocol: Protocol = "default") -> tuple[list[int], list[int]]:
    """The 8 context and 4 target annotation indices of one index-map entry.

    Official: context = positions 0–7 as stored, targets = positions 11, 10, 9, 8.
    Default: the same frames, each set sorted ascending.
    """
    if len(indices) != NUM_VIEWS:
        raise InputError(f"an RE10K entry has {NUM_VIEWS} indices, got {len(indices)}")
    ctx = list(indices[:NUM_CONTEXT])
    tgt = [indices[i] for i in range(NUM_VIEWS)[::-1][: NUM_VIEWS - NUM_CONTEXT]]
    if protocol == "official":
        return ctx, tgt
    return sorted(ctx), sorted(tgt)


def read_sequence_list(source: str | os.PathLike[str] | list[str]) -> list[str]:
    """Sequence ids from a list or a text file (one per line, e.g. ``re10k_test.txt``)."""
    if isinstance(source, (list, tuple)):
        return [str(s) for s in source]
    p = Path(source)
    try:
        return [line.strip() for line in p.read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise InputError(f"cannot read the sequence list {p}: {exc}") from exc


def _matrix(value: Any, shape: tuple[int, int], what: str) -> torch.Tensor:
    try:
        m = torch.tensor(value, dtype=torch.float64)
    except (TypeError, ValueError) as exc:
        raise FormatError(f"{what} is not numeric: {exc}") from exc
    if shape == (4, 4) and tuple(m.shape) == (3, 4):
        m = torch.cat([m, torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=m.dtype)])
    if tuple(m.shape) != shape or not torch.isfinite(m).all():
        raise FormatError(f"{what} must be a finite {shape[0]}x{shape[1]} matrix, got shape {list(m.shape)}")
    return m


class RE10KDataset(SceneDataset):
    """RealEstate10K NVS evaluation samples: 8 context + 4 target views per sequence.

    Args:
        root: folder of ``<seq_id>/annotations.json``.
        index_map: path to (or contents of) ``re10k_indexmap.json``.
        sequences: ids (list or text file such as ``re10k_test.txt``); default: every id of the map.
        size: output side of the crop (512, the video-VAE input).
        feedforward_size: optional side resized from the crop (448, the reconstructor input and the
            resolution the official evaluation renders and scores).
        protocol: ``"default"`` or ``"official"`` (module docstring).
        extrinsics: convention of ``annotations.json``'s 4×4 ``extrinsics``: ``"w2c"`` or ``"c2w"``.
        on_error: ``"raise"`` (default: an evaluation should not silently drop a sequence) or ``"next"``.

    Sequences without a map entry, without a readable ``annotations.json``, with indices beyond the
    annotation list, or with missing frame files are skipped at construction and counted in ``skipped``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        index_map: str | os.PathLike[str] | dict,
        sequences: str | os.PathLike[str] | list[str] | None = None,
        size: Size = 512,
        feedforward_size: Size | None = None,
        protocol: Protocol = "default",
        extrinsics: Literal["w2c", "c2w"] = "w2c",
        on_error: OnError = "raise",
    ) -> None:
        super().__init__(on_error=on_error, seed=None)
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(f"RE10K root is not a folder: {self.root}")
        if extrinsics not in ("w2c", "c2w"):
            raise InputError(f"extrinsics must be 'w2c' or 'c2w', got {extrinsics!r}")
        self.extrinsics = extrinsics
        self.protocol = check_protocol(protocol)
        self.size, self.feedforward_size = size, feedforward_size
        if protocol == "official" and not isinstance(size, int):
            raise InputError("the official RE10K protocol crops squares: give size as an int")
        self.index_map = load_re10k_index_map(index_map)
        seqs = read_sequence_list(sequences) if sequences is not None else sorted(self.index_map)
        self.items: list[tuple[str, list[dict], list[int]]] = []
        for seq in seqs:
            entry = self.index_map.get(seq)
            if entry is None:
                self.skipped.add(seq, "not in index map")
                continue
            anno_path = self.root / seq / "annotations.json"
            if not anno_path.is_file():
                self.skipped.add(seq, "missing", "no annotations.json")
                continue
            try:
                annos = json.loads(anno_path.read_text())
                if not isinstance(annos, list):
                    raise FormatError("not a list")
            except (OSError, json.JSONDecodeError, FormatError) as exc:
                self.skipped.add(seq, "unreadable", f"annotations.json: {exc}")
                continue
            if max(entry) >= len(annos):
                self.skipped.add(seq, "index out of range", f"index {max(entry)} >= {len(annos)} annotations")
                continue
            ctx, tgt = split_context_targets(entry, self.protocol)
            chosen = [annos[i] for i in ctx + tgt]
            bad = next(
                (a for a in chosen if not isinstance(a, dict) or not (self.root / str(a.get("filepath", ""))).is_file()),
                None,
            )
            if bad is not None:
                detail = bad.get("filepath") if isinstance(bad, dict) else repr(bad)
                self.skipped.add(seq, "missing frames", str(detail))
                continue
            self.items.append((seq, chosen, ctx + tgt))
        log.info("RE10K: %d sequences in %s (%s)", len(self.items), self.root, self.skipped)

    def _name(self, index: int) -> str:
        return self.items[index][0]

    def _load(self, index: int) -> dict[str, Any]:
        seq, annos, ids = self.items[index]
        imgs, Ks, c2ws, ffs, Kfs = [], [], [], [], []
        for j, a in enumerate(annos):
            where = f"{seq}/annotations.json[{ids[j]}]"
            K = _matrix(a.get("intrinsics"), (3, 3), f"{where}.intrinsics").float()
            E = _matrix(a.get("extrinsics"), (4, 4), f"{where}.extrinsics")
            c2w = torch.linalg.inv(E) if self.extrinsics == "w2c" else E
            im = read_image_pil(self.root / str(a["filepath"]))
            if self.protocol == "official":
                x, k, ff, kf = official_resize_crop(im, int(self.size), K, self.feedforward_size)  # type: ignore[arg-type]
            else:
                x, k = resize_center_crop(pil_to_tensor(im), self.size, K[None])
                k = k[0] if k is not None else None
                ff = kf = None
                if self.feedforward_size is not None:
                    ff, kf = resize(x, self.feedforward_size, k[None] if k is not None else None)
                    kf = kf[0] if kf is not None else None
            imgs.append(x)
            Ks.append(k)
            c2ws.append(c2w.float())
            ffs.append(ff)
            Kfs.append(kf)
        images = torch.stack(imgs)
        h, w = images.shape[-2:]
        c2w_t = torch.stack(c2ws)
        out: dict[str, Any] = {
            "images": images,
            "cameras": Cameras(c2w_t, torch.stack(Ks), w, h),
            "scene": seq,
            "frame_ids": torch.tensor(ids),
            "num_context": NUM_CONTEXT,
        }
        if self.feedforward_size is not None:
            ff_t = torch.stack(ffs)
            out["feedforward_images"] = ff_t
            out["feedforward_cameras"] = Cameras(c2w_t, torch.stack(Kfs), ff_t.shape[-1], ff_t.shape[-2])
        return out


__all__ = ["RE10KDataset", "load_re10k_index_map", "split_context_targets", "read_sequence_list"]
