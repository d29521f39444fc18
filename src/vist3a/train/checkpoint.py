"""Atomic, resumable training checkpoints.

A checkpoint folder holds ``step_XXXXXXXX.pt`` files (model, optimizer, scheduler, scaler, EMA,
step, and every RNG state needed to continue the run bit-for-bit) plus ``latest`` naming the newest.
Files are written to a temporary name and renamed, so a kill mid-write never leaves a corrupt
"latest". Loading uses ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vist3a.errors import CheckpointError, InputError
from vist3a.io_utils import atomic_path, atomic_write_text

log = logging.getLogger(__name__)


def rng_state() -> dict[str, Any]:
    """Every RNG state a training step may touch (as tensors / plain types, weights_only-loadable)."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": list(random.getstate()[1]),
        "python_pos": random.getstate()[2],
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), state["python_pos"]))
    keys = state["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, state["numpy_pos"], 0, 0.0))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class CheckpointManager:
    """Save and restore training state in ``folder``; keeps the newest ``keep`` checkpoints."""

    def __init__(self, folder: str | Path, keep: int = 2) -> None:
        self.folder = Path(folder)
        self.keep = keep

    def path_for(self, step: int) -> Path:
        return self.folder / f"step_{step:08d}.pt"

    def save(self, step: int, state: dict[str, Any]) -> Path:
        """Write ``state`` (any weights_only-safe structure) for ``step`` and point ``latest`` at it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        payload = {"step": step, "rng": rng_state(), **state}
        path = self.path_for(step)
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
        atomic_write_text(self.folder / "latest", path.name + "\n")
        self._prune()
        return path

    def latest(self) -> Path | None:
        marker = self.folder / "latest"
        if not marker.is_file():
            return None
        path = self.folder / marker.read_text().strip()
        return path if path.is_file() else None

    def load(self, path: str | Path | None = None, restore_rng: bool = True) -> dict[str, Any] | None:
        """Load ``path`` (default: the latest); returns None when there is nothing to resume."""
        path = Path(path) if path is not None else self.latest()
        if path is None:
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # corrupt or foreign file
            raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
        if not isinstance(state, dict) or "step" not in state:
            raise CheckpointError(f"{path} is not a vist3a training checkpoint (no 'step')")
        if restore_rng and "rng" in state:
            set_rng_state(state["rng"])
        log.info("resumed from %s (step %d)", path, state["step"])
        return state

    def resume(self, resume: str | Path | bool | None) -> dict[str, Any] | None:
        """The state a run starts from, by its ``--resume`` setting.

        False/None: a fresh run (refused when the folder already holds checkpoints, so none is
        overwritten); True: the latest checkpoint here, or a fresh run with a warning when there is
        none; a path: that checkpoint file, or the latest one in that folder.
        """
        if not resume:
            if self.latest() is not None:
                raise InputError(f"{self.folder} already holds checkpoints: pass --resume to continue, or pick a new --out")
            return None
        path = None if resume is True else Path(resume)
        if path is not None and path.is_dir():
            path = CheckpointManager(path).latest()
        state = self.load(path)
        if state is None:
            log.warning("--resume: no checkpoint in %s, starting fresh", self.folder)
        return state

    def _prune(self) -> None:
        files = sorted(self.folder.glob("step_*.pt"))
        for old in files[: max(0, len(files) - self.keep)]:
            old.unlink(missing_ok=True)
