"""``vist3a world make``: write N world scenes in a real dataset's on-disk layout."""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from vist3a.errors import InputError
from vist3a.world.layouts import LAYOUTS, WRITERS, caption_entry, check_out_dir, write_index_files
from vist3a.world.sample import make_sample

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MakeConfig:
    """What to write (the arguments of ``vist3a world make``)."""

    layout: str
    out: str
    scenes: int
    frames: int = 13
    size: int = 256
    seed: int = 0
    max_objects: int = 4
    shadows: bool = True

    def validate(self) -> MakeConfig:
        if self.layout not in LAYOUTS:
            raise InputError(f"unknown layout {self.layout!r}; choose one of {', '.join(LAYOUTS)}")
        if self.scenes < 1:
            raise InputError(f"--scenes must be >= 1, got {self.scenes}")
        if self.frames < 1:
            raise InputError(f"--frames must be >= 1, got {self.frames}")
        if self.size < 32:
            raise InputError(f"--size must be >= 32 pixels, got {self.size}")
        if not 1 <= self.max_objects <= 8:
            raise InputError(f"--max-objects must be in 1..8, got {self.max_objects}")
        return self


def _write_one(args: tuple[MakeConfig, int]) -> tuple[int, str, dict]:
    cfg, index = args
    sample = make_sample(index, cfg.seed, cfg.frames, cfg.size, cfg.max_objects)
    render = sample.render(shadows=cfg.shadows)
    name = WRITERS[cfg.layout](Path(cfg.out), sample, render)
    return index, name, caption_entry(name, sample)


def _init_worker() -> None:
    torch.set_num_threads(1)


def make_dataset(cfg: MakeConfig, workers: int | None = None, progress: bool = True) -> dict:
    """Write ``cfg.scenes`` scenes; returns a summary (root, names, seconds, files written).

    Scenes are independent and deterministic, so ``workers`` processes write them in any order and
    the files are the same for the same ``cfg`` whatever the worker count.
    """
    cfg.validate()
    root = check_out_dir(cfg.out)
    cfg = MakeConfig(**{**cfg.__dict__, "out": str(root)})
    workers = max(1, min(workers or os.cpu_count() or 1, cfg.scenes))
    jobs = [(cfg, i) for i in range(cfg.scenes)]
    results: dict[int, tuple[str, dict]] = {}
    t0 = time.perf_counter()
    bar = tqdm(total=cfg.scenes, desc=f"world make ({cfg.layout})", unit="scene", disable=not progress)
    if workers == 1:
        threads = torch.get_num_threads()
        try:
            for job in jobs:
                i, name, meta = _write_one(job)
                results[i] = (name, meta)
                bar.update()
        finally:
            torch.set_num_threads(threads)
    else:
        ctx = mp.get_context("spawn" if torch.cuda.is_initialized() else None)
        with ctx.Pool(workers, initializer=_init_worker) as pool:
            for i, name, meta in pool.imap_unordered(_write_one, jobs, chunksize=4):
                results[i] = (name, meta)
                bar.update()
    bar.close()
    names = [results[i][0] for i in range(cfg.scenes)]
    written = write_index_files(cfg.layout, root, names, [results[i][1] for i in range(cfg.scenes)], cfg.frames, cfg.seed)
    seconds = time.perf_counter() - t0
    log.info("wrote %d %s scenes (%d frames of %d²) to %s in %.1f s", cfg.scenes, cfg.layout, cfg.frames, cfg.size, root, seconds)
    return {"root": str(root), "names": names, "seconds": seconds, "index_files": [str(p) for p in written]}
