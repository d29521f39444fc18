"""Validation of the judge on ground-truth renders (matched and shuffled captions)."""

from __future__ import annotations

import logging

import numpy as np
from tqdm import tqdm

from vist3a.world.judge import CATEGORIES, Detection, Judge, oracle_detections
from vist3a.world.sample import WorldSample, make_sample

log = logging.getLogger(__name__)


def _summary(judge: Judge, samples: list[WorldSample], dets: list[dict[str, Detection]], oracles, ask_size: bool) -> dict:
    per_cat: dict[str, list[float]] = {c: [] for c in CATEGORIES}
    per_kind: dict[str, list[float]] = {}
    for s, d in zip(samples, dets, strict=True):
        res = judge.score_detections(d, s.caption, ask_size)
        for q, a in zip(res.questions, res.answers, strict=True):
            per_cat[q.category].append(float(a))
            per_kind.setdefault(q.kind, []).append(float(a))
    n = len(samples)
    sh_acc: list[float] = []
    sh_cat: dict[str, list[float]] = {c: [] for c in CATEGORIES}
    judge_score, chance_score = [], []
    for k in range(n):
        cap = samples[(k + 1) % n].caption
        res = judge.score_detections(dets[k], cap, ask_size)
        truth = judge.score_detections(oracles[k], cap, ask_size)
        for q, a, t in zip(res.questions, res.answers, truth.answers, strict=True):
            sh_acc.append(float(a == t))
            sh_cat[q.category].append(float(a == t))
        judge_score.append(res.overall)
        chance_score.append(truth.overall)
    all_q = [v for vals in per_cat.values() for v in vals]
    return {
        "questions": len(all_q),
        "matched_accuracy": float(np.mean(all_q)),
        "matched_per_category": {c: float(np.mean(v)) if v else None for c, v in per_cat.items()},
        "matched_per_kind": {k: float(np.mean(v)) for k, v in per_kind.items()},
        "shuffled_accuracy": float(np.mean(sh_acc)),
        "shuffled_accuracy_per_category": {c: float(np.mean(v)) if v else None for c, v in sh_cat.items()},
        "shuffled_judge_score": float(np.mean(judge_score)),
        "shuffled_chance_score": float(np.mean(chance_score)),
    }


def validate_judge(
    scenes: int = 200,
    seed: int = 12345,
    frames: int = 8,
    size: int = 256,
    judge: Judge | None = None,
    progress: bool = True,
) -> dict:
    """Run the judge on ground-truth renders of ``scenes`` scenes of set ``seed``, twice: with depth and
    cameras (``"depth"``: all questions) and from the images alone (``"images"``: no size questions,
    front/behind from the segments' lowest rows).

    *Matched*: each render with its own caption; every true answer is "yes", so per-question
    accuracy is the fraction answered "yes". *Shuffled*: each render with the next scene's caption;
    the truth of each question is what a perfect judge (the scene's own geometry) answers, and
    ``chance`` is that perfect judge's DPG score, i.e. how often a random caption happens to be true.
    """
    judge = judge or Judge()
    samples, with_depth, images_only, oracles = [], [], [], []
    for i in tqdm(range(scenes), desc="judge validation", disable=not progress):
        s = make_sample(i, seed=seed, frames=frames, size=size)
        r = s.render()
        samples.append(s)
        with_depth.append(judge.detect(r.rgb, r.depth, s.cameras))
        images_only.append(judge.detect(r.rgb))
        oracles.append(oracle_detections(s.scene, s.cameras[0]))
    out = {
        "scenes": scenes,
        "seed": seed,
        "frames": frames,
        "size": size,
        "depth": _summary(judge, samples, with_depth, oracles, ask_size=True),
        "images": _summary(judge, samples, images_only, oracles, ask_size=False),
    }
    log.info("judge validation: %s", out)
    return out
