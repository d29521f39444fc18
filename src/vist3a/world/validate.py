"""Validation of the judge on ground-truth renders (matched and shuffled captions)."""

from __future__ import annotations

import logging

import numpy as np
from tqdm import tqdm

from vist3a.world.judge import CATEGORIES, Judge, oracle_detections
from vist3a.world.sample import make_sample

log = logging.getLogger(__name__)


def validate_judge(
    scenes: int = 200,
    seed: int = 12345,
    frames: int = 8,
    size: int = 256,
    judge: Judge | None = None,
    use_depth: bool = True,
    progress: bool = True,
) -> dict:
    """Run the judge on ground-truth renders of ``scenes`` scenes of set ``seed``.

    *Matched*: each render with its own caption; every true answer is "yes", so per-question
    accuracy is the fraction answered "yes". *Shuffled*: each render with the next scene's caption;
    the truth of each question is what a perfect judge (the scene's own geometry) answers, and
    ``chance`` is that perfect judge's DPG score, i.e. how often a random caption happens to be true.

    Returns a dict with per-category and per-kind accuracies (matched), shuffled accuracy,
    the judge's and the chance DPG scores on shuffled pairs, and counts.
    """
    judge = judge or Judge()
    samples, dets, oracles = [], [], []
    for i in tqdm(range(scenes), desc="judge validation", disable=not progress):
        s = make_sample(i, seed=seed, frames=frames, size=size)
        r = s.render()
        d = judge.detect(r.rgb, r.depth if use_depth else None, s.cameras if use_depth else None)
        samples.append(s)
        dets.append(d)
        oracles.append(oracle_detections(s.scene, s.cameras[0]))
    per_cat: dict[str, list[float]] = {c: [] for c in CATEGORIES}
    per_kind: dict[str, list[float]] = {}
    for s, d in zip(samples, dets, strict=True):
        res = judge.score_detections(d, s.caption, use_depth)
        for q, a in zip(res.questions, res.answers, strict=True):
            per_cat[q.category].append(float(a))
            per_kind.setdefault(q.kind, []).append(float(a))
    sh_acc, sh_cat, judge_score, chance_score = [], {c: [] for c in CATEGORIES}, [], []
    for k in range(scenes):
        cap = samples[(k + 1) % scenes].caption
        res = judge.score_detections(dets[k], cap, use_depth)
        truth = judge.score_detections(oracles[k], cap, use_depth)
        for q, a, t in zip(res.questions, res.answers, truth.answers, strict=True):
            sh_acc.append(float(a == t))
            sh_cat[q.category].append(float(a == t))
        judge_score.append(res.overall)
        chance_score.append(truth.overall)
    all_q = [v for vals in per_cat.values() for v in vals]
    out = {
        "scenes": scenes,
        "seed": seed,
        "frames": frames,
        "size": size,
        "use_depth": use_depth,
        "questions": len(all_q),
        "matched_accuracy": float(np.mean(all_q)),
        "matched_per_category": {c: float(np.mean(v)) if v else None for c, v in per_cat.items()},
        "matched_per_kind": {k: float(np.mean(v)) for k, v in per_kind.items()},
        "shuffled_accuracy": float(np.mean(sh_acc)),
        "shuffled_accuracy_per_category": {c: float(np.mean(v)) if v else None for c, v in sh_cat.items()},
        "shuffled_judge_score": float(np.mean(judge_score)),
        "shuffled_chance_score": float(np.mean(chance_score)),
    }
    log.info("judge validation: %s", out)
    return out
