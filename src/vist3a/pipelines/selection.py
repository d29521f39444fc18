"""Best-of-N selection: which of a prompt's N generated candidates is kept (``--candidates N --select SPEC``).

Every candidate is rendered at 4 of its predicted cameras (:func:`vist3a.eval.consistency.consistency_views`).
``"consistency"`` keeps the scene that re-renders its own decoded frames best (no caption involved; session 23
found it prefers near-empty scenes at low guidance). Any other spec is a reward of
:func:`vist3a.alignment.rewards.build_reward` read on those same renders and frames, e.g. ``"world"`` (the
caption's colours present, the others absent) or ``"clip:PATH"``; the world rewards take the prompt's
structured caption from :func:`vist3a.world.captions.parse_caption`. Equal rewards are broken by consistency.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import torch

from vist3a.errors import InputError

log = logging.getLogger(__name__)

#: Reward terms that read the prompt's structured caption (the procedural world's vocabulary).
CAPTION_TERMS = ("world", "relation", "judge")


@dataclass
class CandidateScore:
    """One candidate's selection result.

    Attributes:
        key: what candidates are ranked by, highest kept: ``(reward, dB)``, or ``(dB,)`` by consistency.
        score: the reported selection score (the reward, or the mean consistency in dB).
        psnr: the mean consistency in dB (as computed: NaN stays NaN here, only the key ranks it last).
        consistency: the :func:`~vist3a.eval.consistency.multiview_consistency` record of the same renders.
    """

    key: tuple[float, ...]
    score: float
    psnr: float
    consistency: dict[str, Any]


def check_select(spec: str) -> str:
    """``spec`` stripped, or a one-line error naming an unknown reward (without loading any reward model)."""
    from vist3a.alignment.rewards import REWARD_NAMES

    if not isinstance(spec, str) or not spec.strip():
        raise InputError(f"select must be 'consistency' or a reward spec such as 'world', got {spec!r}")
    for item in spec.split(","):
        name = item.partition("@")[0].partition(":")[0].strip().lower()
        if name and name not in REWARD_NAMES:
            raise InputError(f"select: unknown reward {name!r}; choose from {', '.join(REWARD_NAMES)}")
    return spec.strip()


def _finite(v: float) -> float:
    return v if math.isfinite(v) else -math.inf


class CandidateSelector:
    """Scores generated candidates of one prompt by ``spec`` (see the module docstring).

    Args:
        spec: ``"consistency"`` or a reward spec of :func:`~vist3a.alignment.rewards.build_reward`.
        device: where a CLIP-like reward model is loaded.
    """

    def __init__(self, spec: str = "consistency", device: Any = None) -> None:
        self.spec = check_select(spec)
        self.reward = None
        if self.spec != "consistency":
            from vist3a.alignment.rewards import build_reward

            self.reward = build_reward(self.spec, device=device)
        self.needs_caption = self.reward is not None and any(t.name in CAPTION_TERMS for t in self.reward.terms)
        self._warned: set[str] = set()

    def caption_for(self, prompt: str) -> Any:
        """The prompt's structured caption when a term needs one (None: the prompt names no world object, and
        the selection falls back to consistency with a warning)."""
        if not self.needs_caption:
            return None
        from vist3a.world.captions import parse_caption

        cap = parse_caption(prompt)
        if cap is None and prompt not in self._warned:
            self._warned.add(prompt)
            log.warning("select %r: %r names no object of the mini world (a colour and a shape, e.g. 'a red cube'); "
                        "candidates are ranked by multi-view consistency instead", self.spec, prompt[:60])  # fmt: skip
        return cap

    @torch.no_grad()
    def score(self, prompt: str, gaussians: Any, cameras: Any, frames: torch.Tensor) -> CandidateScore:
        """Score one candidate: its Gaussians, ``T`` predicted cameras and decoded frames ``[T,3,H,W]`` in [0,1]."""
        from vist3a.eval.consistency import consistency_scores, consistency_views

        idx, rend, target = consistency_views(gaussians, cameras, frames)
        mvc = consistency_scores(idx, rend, target)
        mean = sum(mvc["psnr"]) / len(mvc["psnr"])
        db = _finite(mean)
        cap = self.caption_for(prompt)
        if self.reward is None or (self.needs_caption and cap is None):
            return CandidateScore((db,), db, mean, mvc)
        r = self.reward(target[None], rend[None], [prompt], captions=[cap])
        value = _finite(float(r.reshape(-1)[0]))
        return CandidateScore((value, db), value, mean, mvc)
