"""An analytic judge: does a rendered scene show what its structured caption says?

Independent of every generator (and of the ray caster): it reads only RGB images (plus, for the
size questions, depth and cameras). Questions come in DPG-Bench's categories:

- **entity** — "Is there a cube?" (one per caption object)
- **attribute** — colour ("Is the cube red?", i.e. is there a red cube) and size ("Is the red cube large?")
- **relation** — "Is the red cube to the left of the blue sphere?" (from the first view)

How it answers:

1. *Segmentation by colour.* Object colours are saturated and lie at distinct hues; floors and
   skies are unsaturated. A pixel with HSV saturation ≥ ``min_saturation`` belongs to the palette
   colour of the nearest hue (within ``hue_tolerance``). Speckles are removed by a 3×3 opening.
2. *Shape from silhouette and shading*, voted over the views where the segment is whole (not cut
   by the image border, not touching another object): a cone is the only shape whose silhouette
   tapers to a point (low fill ratio, narrow top); a cylinder is taller than wide (height/diameter
   = 1/0.72); a cube shows flat faces (neighbouring pixels of equal brightness), a sphere smooth
   shading and a round silhouette.
3. *Size* from depth and cameras: the segment's pixels are lifted to world points; their highest
   z (objects stand on z = 0) is the height, compared with the geometric means of ``SIZES``.
4. *Relations* in the first view: left/right by the segments' mean column, in front/behind by their
   median depth (or, without depth, by their lowest row: nearer ground contact is lower in the image).

Dependency-aware scoring as in DPG-Bench: a question whose parent (the entity questions of the
objects it mentions) was answered "no" scores 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from vist3a.errors import InputError
from vist3a.gaussians.cameras import Cameras
from vist3a.world.captions import _PHRASE, StructuredCaption
from vist3a.world.palette import COLOURS, SIZES

CATEGORIES: tuple[str, ...] = ("entity", "attribute", "relation")
#: a pixel may be an object's when its HSV saturation and value reach these (the world's floors and skies do not)
MIN_SATURATION, MIN_VALUE = 0.4, 0.06


def saturated(images: torch.Tensor, min_saturation: float = MIN_SATURATION, min_value: float = MIN_VALUE) -> torch.Tensor:
    """Pixels of HSV saturation >= ``min_saturation`` and value >= ``min_value`` (the judge's thresholds) in
    ``images [..., 3, H, W]`` (in [0, 1]) → ``[..., 1, H, W]`` bool: the world's object pixels (its floors and skies
    are unsaturated; near-black pixels have no trustworthy hue)."""
    hi = images.amax(-3, keepdim=True)
    lo = images.amin(-3, keepdim=True)
    return (hi >= min_value) & ((hi - lo) >= min_saturation * hi)


def object_weights(images: torch.Tensor, object_weight: float) -> torch.Tensor | None:
    """``images [..., 3, H, W]`` in [0, 1] → ``[..., 1, H, W]`` loss weights: ``object_weight`` on the object
    (:func:`saturated`) pixels, 1 elsewhere; None when ``object_weight`` is 1 (a plain mean)."""
    if object_weight == 1.0:
        return None
    return 1.0 + (object_weight - 1.0) * saturated(images).float()


@dataclass
class Question:
    """One yes/no question about a caption.

    Attributes:
        category: "entity", "attribute" or "relation".
        text: the question in words.
        kind: "shape", "colour", "size" or "relation".
        args: what it asks about (object indices, relation).
        parents: indices (into the question list) of questions it depends on.
    """

    category: str
    text: str
    kind: str
    args: tuple
    parents: tuple[int, ...] = ()


@dataclass
class Detection:
    """What the judge found for one palette colour.

    Attributes:
        colour: the colour name.
        shape: the voted shape (None when the colour is absent).
        size: the size word from depth (None without depth/cameras).
        u: mean column of the segment in the first view (pixels; None if not there).
        near: a nearness key in the first view (−median depth, or the lowest row); larger = nearer.
        area: pixels in the first view.
        votes: shape votes over the usable views.
    """

    colour: str
    shape: str | None = None
    size: str | None = None
    u: float | None = None
    near: float | None = None
    area: int = 0
    votes: dict[str, float] = field(default_factory=dict)


@dataclass
class JudgeResult:
    """Answers and scores.

    Attributes:
        questions: the questions asked.
        answers: the judge's raw yes/no per question.
        scores: per question after dependency zeroing (1.0 / 0.0).
        per_category: mean score per category (entity / attribute / relation), NaN if none asked.
        overall: mean score over all questions.
    """

    questions: list[Question]
    answers: list[bool]
    scores: list[float]
    per_category: dict[str, float]
    overall: float


def questions_for(caption: StructuredCaption, ask_size: bool = True) -> list[Question]:
    """The DPG-style questions a structured caption implies, parents before children.

    ``ask_size=False`` leaves out the size questions (for a judge without depth and cameras).
    """
    qs: list[Question] = []
    entity_q: dict[int, int] = {}
    for k, o in enumerate(caption.objects):
        entity_q[k] = len(qs)
        qs.append(Question("entity", f"Is there a {o.shape}?", "shape", (k,)))
    for k, o in enumerate(caption.objects):
        qs.append(Question("attribute", f"Is the {o.shape} {o.colour}?", "colour", (k,), (entity_q[k],)))
        if ask_size:
            qs.append(Question("attribute", f"Is the {o.colour} {o.shape} {o.size}?", "size", (k,), (entity_q[k],)))
    for i, rel, j in caption.relations:
        a, b = caption.objects[i], caption.objects[j]
        qs.append(
            Question(
                "relation",
                f"Is the {a.colour} {a.shape} {_PHRASE[rel]} the {b.colour} {b.shape}?",
                "relation",
                (i, rel, j),
                (entity_q[i], entity_q[j]),
            )
        )
    return qs


def _as_8bit(images: torch.Tensor) -> torch.Tensor:
    """``images [V,3,H,W]`` (float in [0,1] or uint8) → float64 CPU values quantised to 8 bits, as files hold them."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise InputError(f"judge images must be [V,3,H,W], got {list(images.shape)}")
    img = images.detach().cpu()
    img = img.double() / 255.0 if img.dtype == torch.uint8 else img.double().clamp(0, 1)
    return torch.round(img * 255) / 255


def _hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``rgb [...,3]`` in [0,1] → hue (degrees), saturation, value."""
    mx, mn = rgb.max(-1), rgb.min(-1)
    c = mx - mn
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    safe = np.where(c > 0, c, 1.0)
    h = np.where(mx == r, ((g - b) / safe) % 6, np.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4))
    h = np.where(c > 0, h * 60.0, 0.0)
    s = np.where(mx > 0, c / np.where(mx > 0, mx, 1.0), 0.0)
    return h, s, mx


def _dilate(mask: np.ndarray, r: int = 2) -> np.ndarray:
    """Boolean dilation of ``mask [..., H, W]`` by a (2r+1)² square (separable shifts)."""
    out = mask.copy()
    for k in range(1, r + 1):
        out[..., k:, :] |= mask[..., :-k, :]
        out[..., :-k, :] |= mask[..., k:, :]
    rows = out.copy()
    for k in range(1, r + 1):
        out[..., :, k:] |= rows[..., :, :-k]
        out[..., :, :-k] |= rows[..., :, k:]
    return out


def _open3(masks: np.ndarray) -> np.ndarray:
    """3×3 morphological opening of boolean masks ``[..., H, W]`` (drops speckles)."""
    return _dilate(~_dilate(~masks, 1), 1)


def silhouette_features(mask: np.ndarray, value: np.ndarray) -> dict[str, float]:
    """Shape features of one segment ``mask [H,W]`` with brightness ``value [H,W]`` in [0,1].

    Returns fill (area / bounding box), aspect (height / width), top and bottom (mean row width over
    the top / bottom 15 % of rows / widest row), peak (relative height of the widest rows, 0 = top)
    and flat (fraction of neighbouring pixel pairs inside the segment
    whose 8-bit brightness is equal).
    """
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
    h, w = y1 - y0 + 1, x1 - x0 + 1
    sub = mask[y0 : y1 + 1, x0 : x1 + 1]
    widths = sub.sum(1).astype(np.float64)
    ntop = max(1, int(round(0.15 * h)))
    vv = np.round(value[y0 : y1 + 1, x0 : x1 + 1] * 255)
    pr = sub[:, 1:] & sub[:, :-1]
    pd = sub[1:, :] & sub[:-1, :]
    eq = ((vv[:, 1:] == vv[:, :-1]) & pr).sum() + ((vv[1:, :] == vv[:-1, :]) & pd).sum()
    return {
        "fill": float(mask.sum()) / (h * w),
        "aspect": h / w,
        "top": float(widths[:ntop].mean() / widths.max()),
        "bottom": float(widths[-ntop:].mean() / widths.max()),
        "peak": float((np.flatnonzero(widths >= widths.max() - 0.5).mean() + 0.5) / h),
        "flat": float(eq) / max(1, int(pr.sum() + pd.sum())),
    }


def classify_shape(f: dict[str, float]) -> str:
    """Shape from :func:`silhouette_features` (analytic rules, see the module docstring).

    A cone's silhouette tapers from a rounded base to a point (narrow top, wide bottom); a cylinder
    is taller than wide; a cube shows flat faces; what is left, round and smoothly shaded, is a sphere.
    """
    if f["top"] < 0.42 and f["top"] < 0.55 * f["bottom"]:
        return "cone"
    if f["aspect"] >= 1.32:
        return "cylinder"
    if f["flat"] >= 0.7:
        return "cube"
    return "cylinder" if f["aspect"] >= 1.15 else "sphere"


class Judge:
    """Scores renders of a world scene against its structured caption (see module docstring).

    Args:
        min_saturation: HSV saturation above which a pixel may be an object.
        min_value: brightness below which hue is not trusted.
        hue_tolerance: degrees a pixel's hue may be from its palette colour.
        min_area: smallest segment (fraction of the image) that counts as present.
    """

    def __init__(
        self,
        min_saturation: float = MIN_SATURATION,
        min_value: float = MIN_VALUE,
        hue_tolerance: float = 14.0,
        min_area: float = 0.0003,
    ) -> None:
        self.min_saturation = min_saturation
        self.min_value = min_value
        self.hue_tolerance = hue_tolerance
        self.min_area = min_area
        self.hues = np.array([c.hue_deg for c in COLOURS])
        self.names = [c.name for c in COLOURS]

    # --- perception ---------------------------------------------------------------------------
    def segment(self, images: torch.Tensor) -> np.ndarray:
        """Palette-colour masks ``[V,C,H,W]`` (C = number of palette colours) of ``images [V,3,H,W]``."""
        rgb = _as_8bit(images).permute(0, 2, 3, 1).numpy()
        h, s, v = _hsv(rgb)
        diff = np.abs(h[..., None] - self.hues)  # [V,H,W,C]
        diff = np.minimum(diff, 360 - diff)
        best = diff.argmin(-1)
        ok = (s >= self.min_saturation) & (v >= self.min_value) & (diff.min(-1) <= self.hue_tolerance)
        masks = (best[:, None] == np.arange(len(self.names))[None, :, None, None]) & ok[:, None]
        # The opening drops speckles; keep the raw pixels near what survives so thin parts (a
        # cone's tip) are not eroded away.
        present = masks.any((0, 2, 3))
        masks[:, present] &= _dilate(_open3(masks[:, present]), 2)
        return masks

    def detect(
        self, images: torch.Tensor, depth: torch.Tensor | None = None, cameras: Cameras | None = None
    ) -> dict[str, Detection]:
        """Find each palette colour's object in ``images [V,3,H,W]`` (first view = the caption's view).

        ``depth [V,H,W]`` (z-depth, 0 = none) with ``cameras`` enables size answers and depth-based
        front/behind.
        """
        masks = self.segment(images)
        nv, nc, hh, ww = masks.shape
        if depth is not None and tuple(depth.shape) != (nv, hh, ww):
            raise InputError(f"judge depth must be [{nv},{hh},{ww}], got {list(depth.shape)}")
        if cameras is not None and (len(cameras) != nv or (cameras.width, cameras.height) != (ww, hh)):
            raise InputError(f"judge cameras must be {nv} cameras of {ww}x{hh}")
        value = _as_8bit(images).numpy().max(1)
        min_px = max(6, int(self.min_area * hh * ww))
        area = masks.sum((2, 3))  # [V,C]
        dep = depth.detach().float().cpu().numpy() if depth is not None else None
        out: dict[str, Detection] = {}
        for c, name in enumerate(self.names):
            det = Detection(name)
            present = area[:, c] >= min_px
            if not present.any():
                out[name] = det
                continue
            others = masks[:, [k for k in range(nc) if k != c]].any(1)  # [V,H,W]
            votes: dict[str, float] = {}
            fallback: dict[str, float] = {}
            for vi in np.nonzero(present)[0]:
                m = masks[vi, c]
                ys, xs = np.nonzero(m)
                shape = classify_shape(silhouette_features(m, value[vi]))
                whole = ys.min() > 0 and xs.min() > 0 and ys.max() < hh - 1 and xs.max() < ww - 1
                whole = whole and not (_dilate(m) & others[vi]).any()
                bucket = votes if whole else fallback
                bucket[shape] = bucket.get(shape, 0.0) + 1.0
            votes = votes or fallback
            det.votes = votes
            det.shape = max(sorted(votes), key=lambda k: votes[k])
            m0 = masks[0, c]
            det.area = int(m0.sum())
            if det.area >= min_px:
                ys, xs = np.nonzero(m0)
                det.u = float(xs.mean())
                if dep is not None and (dep[0][m0] > 0).any():
                    det.near = -float(np.median(dep[0][m0][dep[0][m0] > 0]))
                else:
                    det.near = float(ys.max())
            if dep is not None and cameras is not None:
                det.size = self._size(masks[:, c] & present[:, None, None], dep, cameras)
            out[name] = det
        return out

    @staticmethod
    def _size(mask: np.ndarray, depth: np.ndarray, cameras: Cameras) -> str | None:
        """Size word from the highest lifted point of the segment (world z, ground at 0)."""
        tops = []
        for vi in range(mask.shape[0]):
            ys, xs = np.nonzero(mask[vi] & (depth[vi] > 0))
            if len(ys) == 0:
                continue
            k = cameras.K[vi].double().numpy()
            c2w = cameras.c2w[vi].double().numpy()
            z = depth[vi][ys, xs].astype(np.float64)
            pc = np.stack([(xs + 0.5 - k[0, 2]) / k[0, 0] * z, (ys + 0.5 - k[1, 2]) / k[1, 1] * z, z], -1)
            pw = pc @ c2w[:3, :3].T + c2w[:3, 3]
            tops.append(np.percentile(pw[:, 2], 99))
        if not tops:
            return None
        top = float(np.median(tops))
        names = list(SIZES)
        vals = [SIZES[n] for n in names]
        for n, lo, hi in zip(names, vals, vals[1:] + [math.inf], strict=True):
            if top < math.sqrt(lo * hi):
                return n
        return names[-1]

    # --- questions ----------------------------------------------------------------------------
    @staticmethod
    def answer(q: Question, caption: StructuredCaption, dets: dict[str, Detection]) -> bool:
        """The judge's yes/no for one question, given detections."""
        objs = caption.objects
        if q.kind == "shape":
            return any(d.shape == objs[q.args[0]].shape for d in dets.values())
        if q.kind == "colour":
            o = objs[q.args[0]]
            return dets[o.colour].shape == o.shape
        if q.kind == "size":
            o = objs[q.args[0]]
            d = dets[o.colour]
            return d.shape == o.shape and d.size == o.size
        i, rel, j = q.args
        a, b = dets[objs[i].colour], dets[objs[j].colour]
        if a.shape != objs[i].shape or b.shape != objs[j].shape or a.u is None or b.u is None:
            return False
        if rel == "left of":
            return a.u < b.u
        if rel == "right of":
            return a.u > b.u
        if a.near is None or b.near is None:
            return False
        return a.near > b.near if rel == "in front of" else a.near < b.near

    def score(
        self,
        images: torch.Tensor,
        caption: StructuredCaption,
        depth: torch.Tensor | None = None,
        cameras: Cameras | None = None,
    ) -> JudgeResult:
        """Ask every question of ``caption`` about ``images [V,3,H,W]`` and score DPG-style.

        Size questions are asked only when ``depth`` and ``cameras`` are given.
        """
        ask_size = depth is not None and cameras is not None
        return self.score_detections(self.detect(images, depth, cameras), caption, ask_size)

    def score_detections(
        self, dets: dict[str, Detection], caption: StructuredCaption, ask_size: bool = True
    ) -> JudgeResult:
        """Score precomputed detections (see :meth:`detect`) against ``caption``."""
        qs = questions_for(caption, ask_size)
        answers = [self.answer(q, caption, dets) for q in qs]
        scores = [float(a and all(answers[p] for p in q.parents)) for q, a in zip(qs, answers, strict=True)]
        per: dict[str, float] = {}
        for cat in CATEGORIES:
            vals = [s for q, s in zip(qs, scores, strict=True) if q.category == cat]
            per[cat] = float(np.mean(vals)) if vals else float("nan")
        return JudgeResult(qs, answers, scores, per, float(np.mean(scores)) if scores else float("nan"))


def oracle_detections(scene, camera: Cameras) -> dict[str, Detection]:
    """The detections a perfect judge would make of ``scene`` (for chance levels and tests)."""
    from vist3a.world.captions import object_layout

    u, z = object_layout(scene, camera)
    out = {c.name: Detection(c.name) for c in COLOURS}
    for k, o in enumerate(scene.objects):
        out[o.colour] = Detection(o.colour, o.shape, o.size, float(u[k]), -float(z[k]), 1)
    return out
