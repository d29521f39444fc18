"""Best-of-N selection: which of a prompt's N generated candidates is kept (``--candidates N --select SPEC``).

Every candidate is rendered at 4 of its predicted cameras (:func:`vist3a.eval.consistency.consistency_views`).
``"consistency"`` keeps the scene that re-renders its own decoded frames best (no caption involved; session 23
found it prefers near-empty scenes at low guidance). Any other spec is a reward of
:func:`vist3a.alignment.rewards.build_reward` read on those same renders and frames, e.g. ``"world"`` (the
caption's colours present, the others absent) or ``"clip:PATH"``; the world rewards take the prompt's
structured caption from :func:`vist3a.world.captions.parse_caption`. Equal rewards are broken by consistency.

A spec that reads the decoded frames alone (``"world:frames"``, :attr:`CandidateSelector.frames_only`) ranks the
candidates before the 3D stage: each costs the DiT and the VAE decode, and only the kept one is put through the
stitched decoder (and, like any scene, scored for consistency afterwards where the caller wants that).
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
        consistency: the :func:`~vist3a.eval.consistency.multiview_consistency` record of the same renders (None
            when the candidate was ranked by its frames alone, :meth:`CandidateSelector.score_frames`).
    """

    key: tuple[float, ...]
    score: float
    psnr: float
    consistency: dict[str, Any] | None


def check_select(spec: str) -> str:
    """``spec`` stripped, or a one-line error naming an unknown reward (without loading any reward model)."""
    from vist3a.alignment.rewards import IMAGE_CHOICES, REWARD_NAMES, reward_images

    if not isinstance(spec, str) or not spec.strip():
        raise InputError(f"select must be 'consistency' or a reward spec such as 'world', got {spec!r}")
    for item in spec.split(","):
        name, _, on = item.partition("@")[0].partition(":")
        name, on = name.strip().lower(), on.strip().lower()
        if name and name not in REWARD_NAMES:
            raise InputError(f"select: unknown reward {name!r}; choose from {', '.join(REWARD_NAMES)}")
        if name in IMAGE_CHOICES:
            try:
                reward_images(name, on)
            except InputError as exc:
                raise InputError(f"select: {exc}") from None
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
        #: the reward reads the decoded frames alone: candidates are ranked before the 3D stage, which then runs
        #: for the kept one only
        self.frames_only = self.reward is not None and not self.reward.needs_renders
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

    def ranks_frames(self, prompt: str) -> bool:
        """Whether ``prompt``'s candidates are ranked by their frames alone (:meth:`score_frames`, before the 3D
        stage): a :attr:`frames_only` spec, and the prompt's caption where the spec needs one. Otherwise every
        candidate needs its 3D scene (:meth:`score`; without a caption, consistency decides)."""
        return self.frames_only and (not self.needs_caption or self.caption_for(prompt) is not None)

    @torch.no_grad()
    def score_frames(self, prompt: str, frames: torch.Tensor) -> CandidateScore:
        """Score one candidate by its decoded frames ``[T,3,H,W]`` in [0,1] alone (where :meth:`ranks_frames`).

        The key is the reward alone (the first of equals is kept); ``psnr`` is NaN and ``consistency`` None, as no
        scene has been rendered."""
        if not self.ranks_frames(prompt):
            raise InputError(f"select {self.spec!r} cannot rank {prompt[:60]!r} by its frames: score candidates with score()")
        r = self.reward(frames[None], None, [prompt], captions=[self.caption_for(prompt)])
        value = _finite(float(r.reshape(-1)[0]))
        return CandidateScore((value,), value, math.nan, None)
