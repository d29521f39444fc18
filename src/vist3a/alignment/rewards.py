"""Rewards for aligning the video DiT (METHOD.md §6.1, §6.2).

One small interface: a :class:`Reward` is called as ``reward(frames, renders, prompts, captions=...)``
and returns ``[B]`` (higher is better), differentiable w.r.t. ``frames`` and ``renders``.

- ``frames``: decoded video frames ``[B, V, 3, H, W]`` in [0, 1] (the V chosen views);
- ``renders``: the stitched decoder's 3DGS rendered at its own predicted cameras of the same views,
  ``[B, V, 3, H, W]`` in [0, 1], or None when no reward of the run needs renders;
- ``prompts``: the un-templated prompts ``[B]``;
- ``captions``: optional per-prompt :class:`~vist3a.world.captions.StructuredCaption` (world prompts).

Built in:

- :class:`ConsistencyReward`: ``−|frames − renders|₁ − w·LPIPS`` (the paper's R_cons, w = 0.25);
- :class:`ClipScoreReward` (CLIP / DFN CLIP / HPS) and :class:`PickScoreReward`: ``transformers``
  ``CLIPModel`` checkpoints read from a local folder (:class:`MissingWeightsError` when absent);
- :class:`WorldColourReward`: a differentiable proxy of the world judge's colour questions
  (presence / attributes);
- :class:`WorldRelationReward`: a differentiable proxy of its relation questions (left/right,
  in front/behind from soft colour-mask centroids in the caption's view);
- :class:`JudgeReward`: the analytic world judge itself on the renders (DPG-style entity /
  attribute / relation scores); thresholds give **no gradient**, so it is a monitor (weight 0 by default);
- :class:`BrightnessReward`: mean brightness, a toy reward for sanity checks;
- :class:`WeightedSum` to combine them; :func:`build_reward` parses ``"consistency,world,clip:PATH"``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vist3a.errors import InputError, MissingWeightsError

log = logging.getLogger(__name__)

__all__ = [
    "BrightnessReward",
    "ClipScoreReward",
    "ConsistencyReward",
    "PickScoreReward",
    "Reward",
    "WeightedSum",
    "JudgeReward",
    "WorldColourReward",
    "WorldRelationReward",
    "build_reward",
]


def _check_images(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 5 or x.shape[2] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(f"reward: {name} must be [B,V,3,H,W] in [0,1], got {shape}")


class Reward(nn.Module):
    """Base class: ``forward(frames, renders, prompts, captions=None) -> [B]`` (higher is better).

    Attributes:
        name: short name used in logs (``reward/<name>``).
        needs_renders: the reward reads ``renders`` (the trainer then runs the stitched decoder
            and the renderer; otherwise it may skip them).
    """

    name = "reward"
    needs_renders = False
    needs_first_view = False
    #: extra detached per-scene numbers of the latest call, logged as ``reward/<name>_<key>``
    extras: dict[str, float] = {}

    def forward(
        self,
        frames: torch.Tensor,
        renders: torch.Tensor | None,
        prompts: Sequence[str],
        captions: Sequence[Any] | None = None,
    ) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class BrightnessReward(Reward):
    """Mean brightness of the decoded frames ``[B]`` (a toy reward: easy to move, easy to check)."""

    name = "brightness"

    def forward(self, frames, renders, prompts, captions=None):  # noqa: D102
        _check_images(frames, "frames")
        return frames.float().mean(dim=(1, 2, 3, 4))


class ConsistencyReward(Reward):
    """3D consistency: ``−mean|frames − renders| − lpips_weight · LPIPS(frames, renders)`` per scene.

    Args:
        lpips: an :class:`~vist3a.eval.metrics.LPIPS` module (frozen), or None for the L1 term only.
        lpips_weight: weight of the LPIPS term (paper: 0.25).
    """

    name = "consistency"
    needs_renders = True

    def __init__(self, lpips: nn.Module | None = None, lpips_weight: float = 0.25) -> None:
        super().__init__()
        self.lpips = lpips
        self.lpips_weight = float(lpips_weight)
        if lpips is not None:
            lpips.requires_grad_(False).eval()

    def forward(self, frames, renders, prompts, captions=None):  # noqa: D102
        _check_images(frames, "frames")
        if renders is None:
            raise InputError("the consistency reward needs renders of the 3DGS")
        _check_images(renders, "renders")
        if renders.shape != frames.shape:
            raise InputError(f"frames {tuple(frames.shape)} and renders {tuple(renders.shape)} differ in shape")
        diff = frames.float() - renders.float()
        r = -diff.abs().mean(dim=(1, 2, 3, 4))
        with torch.no_grad():
            mse = diff.detach().pow(2).mean(dim=(2, 3, 4)).clamp_min(1e-10)  # [B,V]
            self.extras = {"psnr": float((-10.0 * torch.log10(mse)).mean())}
        if self.lpips is not None and self.lpips_weight:
            b, v = frames.shape[:2]
            d = self.lpips(renders.flatten(0, 1).float(), frames.flatten(0, 1).float()).view(b, v).mean(1)
            r = r - self.lpips_weight * d
        return r


# ---------------------------------------------------------------------------------------------- CLIP
def _clip_preprocess(x: torch.Tensor, size: int, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """CLIP preprocessing, differentiable: shorter side → ``size`` (bicubic), centre crop, mean/std.

    ``x``: ``[N,3,H,W]`` in [0,1] → ``[N,3,size,size]``.
    """
    h, w = x.shape[-2:]
    s = size / min(h, w)
    nh, nw = max(size, round(h * s)), max(size, round(w * s))
    x = F.interpolate(x, size=(nh, nw), mode="bicubic", align_corners=False, antialias=True)
    top, left = (nh - size) // 2, (nw - size) // 2
    x = x[..., top : top + size, left : left + size]
    m = torch.tensor(mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    sd = torch.tensor(std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - m) / sd


class _ClipBase(Reward):
    """A ``transformers.CLIPModel`` + tokenizer from a local folder, frozen.

    Args:
        path: folder with ``config.json``, the weights, the tokenizer files and (optionally)
            ``preprocessor_config.json`` (image size / mean / std; CLIP's defaults otherwise).
        on: score the decoded ``"frames"``, the ``"renders"``, or ``"both"`` (summed, as the
            official code adds the decoded-frame and render terms).
    """

    kind = "clip"

    def __init__(self, path: str | os.PathLike[str], on: str = "both", device: Any = None) -> None:
        super().__init__()
        from transformers import AutoTokenizer, CLIPModel

        folder = Path(path).expanduser()
        if not (folder / "config.json").is_file():
            raise MissingWeightsError(
                f"no {self.kind} weights at {folder} (expected a transformers CLIPModel folder with config.json); "
                f"download one (e.g. `huggingface-cli download {self._hint} --local-dir DIR`) and pass {self.kind}:DIR"
            )
        if on not in ("frames", "renders", "both"):
            raise InputError(f"{self.kind} reward: on must be frames, renders or both, got {on!r}")
        try:
            self.model = CLIPModel.from_pretrained(str(folder), local_files_only=True)
            self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise MissingWeightsError(f"cannot load the {self.kind} model from {folder}: {str(exc).splitlines()[0]}") from exc
        self.model.requires_grad_(False).eval()
        if device is not None:
            self.model.to(device)
        self.on = on
        self.needs_renders = on != "frames"
        vc = self.model.config.vision_config
        self.image_size = int(vc.image_size)
        self.mean: list[float] = [0.48145466, 0.4578275, 0.40821073]
        self.std: list[float] = [0.26862954, 0.26130258, 0.27577711]
        pp = folder / "preprocessor_config.json"
        if pp.is_file():
            import json

            cfg = json.loads(pp.read_text())
            self.mean = list(cfg.get("image_mean", self.mean))
            self.std = list(cfg.get("image_std", self.std))
        self._text_cache: dict[str, torch.Tensor] = {}

    _hint = "openai/clip-vit-large-patch14"

    @torch.no_grad()
    def _text(self, prompts: Sequence[str], device: torch.device) -> torch.Tensor:
        """Unit text embeddings ``[B, D]`` (cached per prompt)."""
        missing = [p for p in dict.fromkeys(prompts) if p not in self._text_cache]
        if missing:
            max_len = int(self.model.config.text_config.max_position_embeddings)
            tok = self.tokenizer(list(missing), padding=True, truncation=True, max_length=max_len, return_tensors="pt")
            dev = next(self.model.parameters()).device
            out = self.model.get_text_features(**{k: v.to(dev) for k, v in tok.items()})
            emb = out if isinstance(out, torch.Tensor) else out.pooler_output
            emb = F.normalize(emb.float(), dim=-1)
            for p, e in zip(missing, emb, strict=True):
                self._text_cache[p] = e.cpu()
        return torch.stack([self._text_cache[p] for p in prompts]).to(device)

    def _image(self, x: torch.Tensor) -> torch.Tensor:
        """Unit image embeddings ``[N, D]`` of ``[N,3,H,W]`` in [0,1]."""
        p = next(self.model.parameters())
        px = _clip_preprocess(x.to(p.device).float(), self.image_size, self.mean, self.std).to(p.dtype)
        out = self.model.get_image_features(pixel_values=px)
        emb = out if isinstance(out, torch.Tensor) else out.pooler_output
        return F.normalize(emb.float(), dim=-1)

    def _score(self, cos: torch.Tensor) -> torch.Tensor:
        return cos

    def _per_scene(self, images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
        b, v = images.shape[:2]
        img = self._image(images.flatten(0, 1)).view(b, v, -1)
        txt = self._text(prompts, img.device)
        cos = (img * txt[:, None]).sum(-1)  # [B,V]
        return self._score(cos).mean(1)

    def forward(self, frames, renders, prompts, captions=None):  # noqa: D102
        if len(prompts) != frames.shape[0]:
            raise InputError(f"{len(prompts)} prompts for a batch of {frames.shape[0]}")
        total = 0.0
        if self.on in ("frames", "both"):
            _check_images(frames, "frames")
            total = total + self._per_scene(frames, prompts)
        if self.on in ("renders", "both"):
            if renders is None:
                raise InputError(f"the {self.kind} reward on renders needs renders")
            _check_images(renders, "renders")
            total = total + self._per_scene(renders, prompts)
        return total


class ClipScoreReward(_ClipBase):
    """CLIP score ``cos(image, text)`` per view, mean over views (CLIP, DFN-CLIP, HPSv2 — which are
    CLIP models scored by cosine; give the folder of a ``transformers`` conversion)."""

    name = "clip"
    kind = "clip"


class PickScoreReward(_ClipBase):
    """PickScore: ``logit_scale · cos(image, text) / 100`` (≈ cos for PickScore's scale 100)."""

    name = "pickscore"
    kind = "pickscore"
    _hint = "yuvalkirstain/PickScore_v1"

    def _score(self, cos: torch.Tensor) -> torch.Tensor:
        return self.model.logit_scale.exp().float() * cos / 100.0


# ---------------------------------------------------------------------------------------------- world
class WorldColourReward(Reward):
    """A differentiable stand-in for the world judge's colour questions (the judge itself is numpy
    thresholds and morphology, so it gives no gradient).

    Per pixel, the chroma ``c = rgb − mean(rgb)`` (what is left after removing grey) is compared with
    each palette colour's chroma: a soft membership ``σ((cos − cos_min)/τ) · σ((|c| − s_min)/τ_s)``.
    A colour's presence is ``1 − exp(−fraction / f0)`` (saturates once a few % of the pixels show it).
    Reward = mean presence of the caption's colours − mean presence of the palette colours the
    caption does not mention. Images are the renders (``on="renders"``) or the decoded frames.

    Args:
        on: ``"renders"`` (the 3D representation; default), ``"frames"`` or ``"both"``.
        f0: pixel fraction scale of the presence.
    """

    name = "world"

    def __init__(self, on: str = "renders", f0: float = 0.02, cos_min: float = 0.93, tau: float = 0.02,
                 chroma_min: float = 0.12, tau_chroma: float = 0.03) -> None:
        super().__init__()
        from vist3a.world.palette import COLOURS

        if on not in ("frames", "renders", "both"):
            raise InputError(f"world reward: on must be frames, renders or both, got {on!r}")
        self.on, self.f0, self.cos_min, self.tau = on, float(f0), float(cos_min), float(tau)
        self.chroma_min, self.tau_chroma = float(chroma_min), float(tau_chroma)
        self.needs_renders = on != "frames"
        self.names = [c.name for c in COLOURS]
        rgb = torch.tensor([c.rgb for c in COLOURS], dtype=torch.float32)
        self.register_buffer("chroma", F.normalize(rgb - rgb.mean(1, keepdim=True), dim=1), persistent=False)

    def presence(self, images: torch.Tensor) -> torch.Tensor:
        """Soft presence ``[N, P]`` in [0,1) of each palette colour in images ``[N,3,H,W]``."""
        x = images.float()
        c = x - x.mean(1, keepdim=True)  # [N,3,H,W]
        norm = c.norm(dim=1)  # [N,H,W]
        cos = torch.einsum("nchw,pc->nphw", c, self.chroma.to(x.device)) / (norm[:, None] + 1e-6)
        member = torch.sigmoid((cos - self.cos_min) / self.tau) * torch.sigmoid((norm[:, None] - self.chroma_min) / self.tau_chroma)
        frac = member.mean(dim=(2, 3))
        return 1.0 - torch.exp(-frac / self.f0)

    def _score(self, images: torch.Tensor, captions: Sequence[Any]) -> torch.Tensor:
        b, v = images.shape[:2]
        pres = self.presence(images.flatten(0, 1)).view(b, v, -1).mean(1)  # [B,P]
        out = []
        for i, cap in enumerate(captions):
            want = {o.colour for o in cap.objects}
            pos = torch.tensor([n in want for n in self.names], device=pres.device)
            good = pres[i][pos].mean() if pos.any() else pres.new_zeros(())
            bad = pres[i][~pos].mean() if (~pos).any() else pres.new_zeros(())
            out.append(good - bad)
        return torch.stack(out)

    def forward(self, frames, renders, prompts, captions=None):  # noqa: D102
        if captions is None or len(captions) != frames.shape[0] or any(c is None for c in captions):
            raise InputError("the world reward needs a structured caption per prompt (use --world N prompts)")
        total = 0.0
        if self.on in ("frames", "both"):
            _check_images(frames, "frames")
            total = total + self._score(frames, captions)
        if self.on in ("renders", "both"):
            if renders is None:
                raise InputError("the world reward on renders needs renders")
            _check_images(renders, "renders")
            total = total + self._score(renders, captions)
        return total


def _caption_colours_ok(captions: Sequence[Any] | None, b: int, what: str) -> None:
    if captions is None or len(captions) != b or any(c is None for c in captions):
        raise InputError(f"the {what} reward needs a structured caption per prompt (use --world N prompts)")


class WorldRelationReward(WorldColourReward):
    """A differentiable stand-in for the world judge's relation questions, in the caption's view.

    The judge decides "A left of B" by the mean column of the two colour segments in the first view,
    and "A in front of B" by depth (or, without depth, by the lower ground contact). Here each object
    (named by its colour, unique in a scene) gets the soft colour membership of
    :class:`WorldColourReward` as a mask ``m``; its centroid ``(ū, v̄)`` is the ``m``-weighted mean
    pixel position (in image fractions). A relation scores ``tanh(margin / scale)`` with margin
    ``ū_B − ū_A`` (left of), ``ū_A − ū_B`` (right of), ``v̄_A − v̄_B`` (in front of: lower in the image),
    ``v̄_B − v̄_A`` (behind), times the smaller presence of the two objects (a relation between absent
    objects earns nothing). Reward = mean over the caption's relations (0 for a caption without any).

    The views given must start with the caption's view (the trainer puts frame 0 first when
    :attr:`needs_first_view` is set).
    """

    name = "relation"
    needs_first_view = True

    def __init__(self, on: str = "renders", scale: float = 0.05, **kw: Any) -> None:
        super().__init__(on=on, **kw)
        self.scale = float(scale)

    def membership(self, images: torch.Tensor) -> torch.Tensor:
        """Soft membership ``[N, P, H, W]`` of each pixel in each palette colour."""
        x = images.float()
        c = x - x.mean(1, keepdim=True)
        norm = c.norm(dim=1)
        cos = torch.einsum("nchw,pc->nphw", c, self.chroma.to(x.device)) / (norm[:, None] + 1e-6)
        return torch.sigmoid((cos - self.cos_min) / self.tau) * torch.sigmoid((norm[:, None] - self.chroma_min) / self.tau_chroma)

    def _score(self, images: torch.Tensor, captions: Sequence[Any]) -> torch.Tensor:
        first = images[:, 0].float()  # [B,3,H,W]: the caption's view
        m = self.membership(first)  # [B,P,H,W]
        _, _, h, w = m.shape
        mass = m.sum(dim=(2, 3)) + 1e-6
        us = (torch.arange(w, device=m.device, dtype=m.dtype) + 0.5) / w
        vs = (torch.arange(h, device=m.device, dtype=m.dtype) + 0.5) / h
        ubar = (m.sum(2) * us).sum(-1) / mass  # [B,P]
        vbar = (m.sum(3) * vs).sum(-1) / mass
        pres = 1.0 - torch.exp(-(m.mean(dim=(2, 3))) / self.f0)
        out = []
        for i, cap in enumerate(captions):
            terms = []
            for a, rel, b in cap.relations:
                ka, kb = self.names.index(cap.objects[a].colour), self.names.index(cap.objects[b].colour)
                if rel == "left of":
                    margin = ubar[i, kb] - ubar[i, ka]
                elif rel == "right of":
                    margin = ubar[i, ka] - ubar[i, kb]
                elif rel == "in front of":
                    margin = vbar[i, ka] - vbar[i, kb]
                else:  # behind
                    margin = vbar[i, kb] - vbar[i, ka]
                terms.append(torch.tanh(margin / self.scale) * torch.minimum(pres[i, ka], pres[i, kb]))
            out.append(torch.stack(terms).mean() if terms else pres.new_zeros(()))
        return torch.stack(out)

    def forward(self, frames, renders, prompts, captions=None):  # noqa: D102
        _caption_colours_ok(captions, frames.shape[0], "relation")
        return super().forward(frames, renders, prompts, captions)


class JudgeReward(Reward):
    """The procedural world's analytic judge (:class:`vist3a.world.judge.Judge`) on the renders of
    the 3DGS (or the decoded frames): the DPG-style overall score in [0, 1] per scene.

    The judge is numpy thresholds and morphology: its score has **no gradient**, so with a nonzero
    weight it only shifts the loss. Use it as a monitor (``judge@0``, the default weight); the
    per-category means (``entity``, ``attribute``, ``relation``) are logged as
    ``reward/judge_<category>``. Relations are judged in the first view given, so the trainer puts
    the caption's view (frame 0) among the reward views. No size questions (no depth is passed).
    """

    name = "judge"
    needs_first_view = True

    def __init__(self, on: str = "renders") -> None:
        super().__init__()
        from vist3a.world.judge import Judge

        if on not in ("frames", "renders"):
            raise InputError(f"judge reward: on must be frames or renders, got {on!r}")
        self.on = on
        self.needs_renders = on == "renders"
        self.judge = Judge()

    @torch.no_grad()
    def forward(self, frames, renders, prompts, captions=None):  # noqa: D102
        _caption_colours_ok(captions, frames.shape[0], "judge")
        images = frames if self.on == "frames" else renders
        if images is None:
            raise InputError("the judge reward on renders needs renders")
        _check_images(images, self.on)
        scores, cats = [], {}
        for i, cap in enumerate(captions):
            res = self.judge.score(images[i].detach().float().cpu().clamp(0, 1), cap)
            scores.append(res.overall)
            for k, v in res.per_category.items():
                if not math.isnan(v):
                    cats.setdefault(k, []).append(v)
        self.extras = {k: sum(v) / len(v) for k, v in cats.items()}
        return torch.tensor(scores, dtype=torch.float32, device=images.device)


# ---------------------------------------------------------------------------------------------- sums
class WeightedSum(Reward):
    """``Σ wᵢ · rᵢ``; :attr:`last` keeps the detached per-term means of the latest call (for logs)."""

    name = "total"

    def __init__(self, terms: Sequence[tuple[float, Reward]]) -> None:
        super().__init__()
        if not terms:
            raise InputError("no reward terms given")
        self.weights = [float(w) for w, _ in terms]
        self.terms = nn.ModuleList(r for _, r in terms)
        self.needs_renders = any(r.needs_renders for r in self.terms)
        self.needs_first_view = any(r.needs_first_view for r in self.terms)
        self.last: dict[str, float] = {}

    def forward(self, frames, renders, prompts, captions=None):  # noqa: D102
        total = None
        self.last = {}
        for w, r in zip(self.weights, self.terms, strict=True):
            r.extras = {}
            v = r(frames, renders, prompts, captions=captions)
            self.last[r.name] = float(v.detach().float().mean())
            self.last.update({f"{r.name}_{k}": float(x) for k, x in r.extras.items()})
            total = w * v if total is None else total + w * v
        return total


#: The reward names :func:`build_reward` knows.
REWARD_NAMES = ("consistency", "world", "relation", "judge", "brightness", "clip", "hps", "pickscore")

#: Default weight of each reward term (paper: quality ×1/16, consistency ×0.05; official: 0.25 each).
#: ``judge`` has no gradient: weight 0 = logged only.
DEFAULT_WEIGHTS = {"consistency": 1.0, "world": 1.0, "relation": 1.0, "judge": 0.0, "clip": 0.25, "pickscore": 0.25, "hps": 0.25, "brightness": 1.0}


#: The caption rewards whose ``:ON`` picks the images they read (``world:frames``); the default is the renders.
IMAGE_CHOICES = {"world": ("renders", "frames", "both"), "relation": ("renders", "frames", "both"),
                 "judge": ("renders", "frames")}  # fmt: skip


def reward_images(name: str, on: str) -> str:
    """What reward ``name`` reads by the ``on`` of ``NAME:ON`` (lower-cased; "" = the renders), or a one-line error
    naming the choices of :data:`IMAGE_CHOICES`."""
    on = on.strip().lower() or "renders"
    if on not in IMAGE_CHOICES[name]:
        raise InputError(f"{name}:{on}: the {name} reward reads {' or '.join(IMAGE_CHOICES[name])}")
    return on


def build_reward(spec: str, lpips: nn.Module | None = None, device: Any = None) -> WeightedSum:
    """Parse ``"consistency,world,clip:PATH,pickscore:PATH@0.5"`` into a :class:`WeightedSum`.

    Each item is ``NAME[:PATH][@WEIGHT]``; names: consistency, world, relation, judge (logged only
    by default), brightness, clip, hps, pickscore (the last three need a PATH to a ``transformers`` CLIPModel folder).
    For world, relation and judge the part after ``:`` says which images they read (:data:`IMAGE_CHOICES`;
    default the renders), e.g. ``world:frames`` (the decoded video alone, no 3D stage needed).
    """
    terms: list[tuple[float, Reward]] = []
    for item in [s.strip() for s in spec.split(",") if s.strip()]:
        body, _, weight = item.partition("@")
        name, _, path = body.partition(":")
        name = name.strip().lower()
        try:
            w = float(weight) if weight else DEFAULT_WEIGHTS.get(name, 1.0)
        except ValueError:
            raise InputError(f"reward weight must be a number in {item!r}") from None
        if not math.isfinite(w):
            raise InputError(f"reward weight must be finite in {item!r}")
        on = reward_images(name, path) if name in IMAGE_CHOICES else "renders"  # world:frames, judge:renders, ...
        if name == "consistency":
            r: Reward = ConsistencyReward(lpips)
        elif name == "world":
            r = WorldColourReward(on=on)
        elif name == "relation":
            r = WorldRelationReward(on=on)
        elif name == "judge":
            r = JudgeReward(on=on)
        elif name == "brightness":
            r = BrightnessReward()
        elif name in ("clip", "hps", "pickscore"):
            if not path:
                raise InputError(f"the {name} reward needs a local model folder: {name}:PATH")
            r = PickScoreReward(path, device=device) if name == "pickscore" else ClipScoreReward(path, device=device)
            r.name = name
        else:
            raise InputError(f"unknown reward {name!r}; choose from {', '.join(REWARD_NAMES)}")
        terms.append((w, r))
    if not terms:
        raise InputError("--reward is empty; give e.g. consistency,world")
    return WeightedSum(terms)
