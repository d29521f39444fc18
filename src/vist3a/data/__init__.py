"""Datasets of multi-view clips: DL3DV, ScanNet, RealEstate10K, plain frame folders / videos, DL3DV captions.

Every dataset is a :class:`torch.utils.data.Dataset` of dicts with at least

* ``images``: ``[V,3,H,W]`` float in [0,1],
* ``cameras``: :class:`vist3a.gaussians.cameras.Cameras` (OpenCV camera-to-world, pixel K) for the
  images, or ``None`` where the format has no cameras,
* ``scene``: the scene / sequence id, and ``frame_ids``: ``[V]`` frame numbers within the scene,

plus format-specific keys (``text`` for captions, ``num_context`` for RE10K, ``feedforward_images`` /
``feedforward_cameras`` when a second resolution is asked for). Batch them with
``DataLoader(..., collate_fn=vist3a.data.collate)`` (Cameras and None are kept as lists).

Bad scenes never crash or hang a loader: scenes that are missing, too short or unreadable are
skipped and counted in :attr:`SceneDataset.skipped` (``print(ds.skipped)`` gives a one-line summary).
"""

from __future__ import annotations

import importlib
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from vist3a.errors import FormatError, InputError

log = logging.getLogger(__name__)

Protocol = Literal["default", "official"]
OnError = Literal["next", "raise"]

_LAZY = {
    "DL3DVDataset": "vist3a.data.dl3dv",
    "ScanNetDataset": "vist3a.data.scannet",
    "RE10KDataset": "vist3a.data.re10k",
    "load_re10k_index_map": "vist3a.data.re10k",
    "FramesDataset": "vist3a.data.frames",
    "load_frames": "vist3a.data.frames",
    "DL3DVCaptionDataset": "vist3a.data.captions",
    "read_dl3dv_captions": "vist3a.data.captions",
}

__all__ = ["SceneDataset", "SkipSummary", "SkipScene", "collate", "sample_window", "check_protocol", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vist3a.data' has no attribute {name!r}")


class SkipScene(Exception):
    """Raised inside a loader for a scene that cannot give a sample; carries the reason (a short tag)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass
class SkipSummary:
    """Scenes skipped by a dataset, counted by reason, with a few examples each."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    max_examples: int = 3

    def add(self, scene: str, reason: str, detail: str = "") -> None:
        self.counts[reason] += 1
        ex = self.examples.setdefault(reason, [])
        if len(ex) < self.max_examples:
            ex.append(f"{scene} ({detail})" if detail else scene)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, int]:
        return dict(self.counts)

    def __str__(self) -> str:
        if not self.total:
            return "no scenes skipped"
        parts = [f"{n} {reason} (e.g. {', '.join(self.examples.get(reason, []))})" for reason, n in self.counts.most_common()]
        return f"skipped {self.total} scene(s): " + "; ".join(parts)


def check_protocol(protocol: str) -> Protocol:
    if protocol not in ("default", "official"):
        raise InputError(f"protocol must be 'default' or 'official', got {protocol!r}")
    return protocol  # type: ignore[return-value]


def _randint(lo: int, hi: int, generator: torch.Generator | None) -> int:
    """Uniform integer in [lo, hi] (inclusive)."""
    return int(torch.randint(lo, hi + 1, (), generator=generator))


def sample_window(
    num_frames: int,
    num_views: int,
    window: tuple[int, int],
    generator: torch.Generator | None = None,
    protocol: Protocol = "default",
) -> list[int]:
    """Frame indices of one training clip (METHOD §3.4/§4.1), sorted, first frame of the window included.

    A window length ``L ~ U[num_views, window[1]]`` (clamped to what the scene holds), a random start,
    then ``num_views - 1`` distinct offsets from ``[1, L)`` plus offset 0. The official loaders draw the
    start from ``[0, N-L-1]`` (never reaching the last frame); the default protocol from ``[0, N-L]``.

    Raises:
        SkipScene: the scene has too few frames.
    """
    lo, hi = int(window[0]), int(window[1])
    if num_views < 1 or hi < lo:
        raise InputError(f"bad window {window} for {num_views} views")
    lo = max(lo, num_views)
    usable = num_frames - (1 if protocol == "official" else 0)
    hi = min(hi, usable)
    if hi < lo:
        need = lo + (1 if protocol == "official" else 0)
        raise SkipScene("too short", f"{num_frames} frames < {need}")
    length = _randint(lo, hi, generator)
    start = _randint(0, usable - length, generator)
    if num_views == 1:
        offsets = [0]
    else:
        perm = torch.randperm(length - 1, generator=generator)[: num_views - 1] + 1
        offsets = sorted([0, *perm.tolist()])
    return [start + o for o in offsets]


class SceneDataset(torch.utils.data.Dataset):
    """Base of the scene datasets: error policy, skip accounting, per-item random generators.

    Subclasses fill ``self.items`` (one per sample) and implement ``_load(i) -> dict`` and
    ``_name(i) -> str``; ``_load`` raises :class:`SkipScene` (or an ``OSError``/:class:`FormatError`)
    for a scene it cannot use.

    Args:
        on_error: ``"next"`` (training sets): a failing item is replaced by the next readable one and the
            scene is remembered as bad; ``"raise"`` (evaluation sets): a :class:`FormatError` naming it.
            Iterating the dataset (``for s in ds``) always skips failing items and counts them.
        seed: ``None`` → random choices use torch's global RNG (seeded per DataLoader worker);
            an int → item ``i`` always gives the same sample.
    """

    items: Sequence[Any]

    def __init__(self, on_error: OnError = "next", seed: int | None = None) -> None:
        if on_error not in ("next", "raise"):
            raise InputError(f"on_error must be 'next' or 'raise', got {on_error!r}")
        self.on_error = on_error
        self.seed = seed
        self.skipped = SkipSummary()
        self._bad: set[int] = set()
        self.items = []

    # --- to implement ---------------------------------------------------------------------------
    def _load(self, index: int) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _name(self, index: int) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    # --- helpers --------------------------------------------------------------------------------
    def generator(self, index: int) -> torch.Generator | None:
        if self.seed is None:
            return None
        return torch.Generator().manual_seed(int(self.seed) * 1_000_003 + int(index))

    def __len__(self) -> int:
        return len(self.items)

    def _try(self, index: int) -> dict[str, Any] | None:
        try:
            return self._load(index)
        except SkipScene as exc:
            reason, detail = exc.reason, exc.detail
        except (OSError, FormatError, ValueError, KeyError, IndexError, TypeError, RuntimeError) as exc:
            reason, detail = "unreadable", f"{type(exc).__name__}: {exc}"
        self._bad.add(index)
        self.skipped.add(self._name(index), reason, detail)
        log.warning("%s: skipping %s: %s%s", type(self).__name__, self._name(index), reason, f" ({detail})" if detail else "")
        return None

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self.items)
        if not n:
            raise InputError(f"{type(self).__name__} has no usable scenes ({self.skipped})")
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} items")
        index %= n
        if self.on_error == "raise":
            try:
                return self._load(index)
            except SkipScene as exc:
                raise FormatError(f"{self._name(index)}: {exc}") from exc
        for step in range(n):
            j = (index + step) % n
            if j in self._bad:
                continue
            sample = self._try(j)
            if sample is not None:
                return sample
        raise InputError(f"{type(self).__name__}: no readable scene left ({self.skipped})")

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(len(self.items)):
            if i in self._bad:
                continue
            sample = self._try(i)
            if sample is not None:
                yield sample


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch samples: tensors of equal shape are stacked (``images`` → ``[B,V,3,H,W]``);
    everything else (Cameras, None, strings, ragged tensors) becomes a list."""
    if not batch:
        raise InputError("cannot collate an empty batch")
    out: dict[str, Any] = {}
    for key in batch[0]:
        vals = [b.get(key) for b in batch]
        if all(isinstance(v, torch.Tensor) for v in vals) and len({tuple(v.shape) for v in vals}) == 1:
            out[key] = torch.stack(vals)
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            out[key] = torch.tensor(vals)
        else:
            out[key] = vals
    return out
