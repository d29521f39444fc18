"""Generation metrics for text-to-3D (paper App. C.2, METHOD.md §7.1, ECOSYSTEM.md §E.4).

Every metric has one interface, :class:`GenMetric`::

    scores = metric(images, prompt, scene_info)   # images [N,3,H,W] in [0,1] -> {column: [N] floats}

A metric returns one or more *columns* (e.g. the judge's ``judge_entity`` ... ``judge_overall``), each
with one score per view. Scene-level metrics (the world judge, DPG VQA) give the same value to every
view. Scores are in the units of the paper's tables:

============== =================================================================== =================
name           what                                                                 table units
============== =================================================================== =================
``clip``       100·cos(CLIP image, CLIP text), clamped at 0 (torchmetrics CLIPScore) CLIP (≈ 30)
``aesthetic``  LAION linear head on CLIP ViT-L/14 image embeddings, ×10             Aesthetic (≈ 55)
``imaging``    MUSIQ-SPAQ (pyiqa), shorter side ≤ 512                              Imaging (≈ 60)
``judge``      the procedural world's analytic judge (world prompts only), ×100     DPG-style %
``unifiedreward`` Qwen-VL judge: alignment / coherence / style, 1–5                 UR Al/Co/St
``dpg``        DPG-Bench VQA with a Qwen-VL judge, ×100                             Table 2
============== =================================================================== =================

Weights are never downloaded unless the caller passes a Hugging Face id that is already cached
or ``allow_download=True``; a missing model raises :class:`~vist3a.errors.MissingWeightsError`
with one line naming what is needed.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from vist3a.errors import CheckpointError, InputError, MissingWeightsError

log = logging.getLogger(__name__)

CLIP_B16_ID = "openai/clip-vit-base-patch16"
CLIP_L14_ID = "openai/clip-vit-large-patch14"
#: LAION aesthetic predictor v1 head (VBench ``aesthetic_quality``): ``nn.Linear(768, 1)``.
LAION_HEAD_FILE = "sa_0_4_vit_l_14_linear.pth"
LAION_HEAD_URL = f"https://github.com/LAION-AI/aesthetic-predictor/raw/main/{LAION_HEAD_FILE}"
UNIFIEDREWARD_ID = "CodeGoat24/UnifiedReward-qwen-7b"
#: OpenAI CLIP pixel normalisation (CLIPImageProcessor defaults).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

Scores = dict[str, list[float]]


def check_images(images: torch.Tensor) -> torch.Tensor:
    """Validate ``[N,3,H,W]`` float images in [0,1]; returns them as float32."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise InputError(f"images must be a [N,3,H,W] tensor, got {shape}")
    if images.shape[0] == 0:
        raise InputError("no images to score")
    images = images.float()
    if not torch.isfinite(images).all():
        raise InputError("images contain NaN or inf")
    lo, hi = float(images.min()), float(images.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise InputError(f"images must be in [0,1], got values in [{lo:.3g}, {hi:.3g}]")
    return images.clamp(0, 1)


def quantize_8bit(images: torch.Tensor) -> torch.Tensor:
    """Round to 8-bit levels, as the official evaluation reads PNG / video frames."""
    return torch.round(images * 255) / 255


class GenMetric:
    """A text-to-3D generation metric.

    Attributes:
        name: the metric's name on the command line.
        columns: the score columns it returns.
        per_scene: True when the score is one number per scene (repeated for every view).
        needs_caption: True when it needs ``scene_info["caption"]`` (a world ``StructuredCaption``).
    """

    name: str = ""
    columns: tuple[str, ...] = ()
    per_scene: bool = False
    needs_caption: bool = False

    def __call__(self, images: torch.Tensor, prompt: str, scene_info: dict[str, Any] | None = None) -> Scores:
        """Score ``images [N,3,H,W]`` in [0,1] rendered from one scene generated from ``prompt``.

        Returns ``{column: [N] floats}`` (NaN where a view cannot be scored).
        """
        raise NotImplementedError


# ====================================================================== weight lookup
def resolve_pretrained(source: str | os.PathLike[str], what: str, allow_download: bool = False) -> str:
    """A local folder, or a Hugging Face id that is in the local cache (or downloadable when allowed).

    Raises :class:`MissingWeightsError` naming ``what`` and ``source`` when neither holds.
    """
    p = Path(source).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise MissingWeightsError(f"{what}: folder {p} has no config.json (expected a save_pretrained folder)")
        return str(p)
    s = str(source)
    if s.startswith((".", "/", "~")) or s.count("/") != 1:
        raise MissingWeightsError(f"{what}: weights folder not found: {s}")
    if allow_download:
        return s
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(s, "config.json")
    except Exception:  # noqa: BLE001 - any hub failure means "not cached"
        hit = None
    if isinstance(hit, str):
        return str(Path(hit).parent)
    raise MissingWeightsError(
        f"{what} needs the weights {s!r}: run `huggingface-cli download {s}` (or pass a local folder); "
        "nothing is downloaded during evaluation"
    )


def _device(device: str | torch.device | None) -> torch.device:
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def clip_preprocess(images: torch.Tensor, size: int, mean=CLIP_MEAN, std=CLIP_STD) -> torch.Tensor:  # noqa: ANN001
    """CLIPImageProcessor in torch: shorter side to ``size`` (bicubic, antialiased), centre crop
    ``size``², normalise. ``images [N,3,H,W]`` in [0,1] → ``[N,3,size,size]``."""
    n, _, h, w = images.shape
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    x = F.interpolate(images, size=(nh, nw), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    top, left = (nh - size) // 2, (nw - size) // 2
    x = x[:, :, top : top + size, left : left + size]
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - m) / s


@torch.no_grad()
def clip_image_embeddings(model: Any, images: torch.Tensor, size: int, device: torch.device) -> torch.Tensor:
    """``[N,D]`` unit CLIP image embeddings of ``images [N,3,H,W]`` in [0,1] (8-bit quantised first)."""
    x = clip_preprocess(quantize_8bit(check_images(images)).to(device), size)
    dtype = next(model.parameters()).dtype
    return F.normalize(_as_tensor(model.get_image_features(pixel_values=x.to(dtype))).float(), dim=-1)


def _as_tensor(out: Any) -> torch.Tensor:
    """transformers 5 may return a model output instead of a tensor from get_*_features."""
    if isinstance(out, torch.Tensor):
        return out
    for key in ("pooler_output", "image_embeds", "text_embeds"):
        v = getattr(out, key, None)
        if isinstance(v, torch.Tensor):
            return v
    raise CheckpointError(f"unexpected CLIP output {type(out).__name__}")


def load_clip(source: str | os.PathLike[str], device: torch.device, allow_download: bool = False) -> tuple[Any, Any]:
    """``(CLIPModel, tokenizer)`` from a save_pretrained folder or a cached HF id."""
    from transformers import AutoTokenizer, CLIPModel

    path = resolve_pretrained(source, f"CLIP {source}", allow_download)
    try:
        model = CLIPModel.from_pretrained(path, local_files_only=not allow_download).eval().to(device)
    except OSError as exc:
        raise MissingWeightsError(f"CLIP weights in {path} are incomplete: {exc}".splitlines()[0]) from exc
    try:
        tok = AutoTokenizer.from_pretrained(path, local_files_only=not allow_download)
    except Exception as exc:  # noqa: BLE001 - tokenizer files missing or unreadable
        raise MissingWeightsError(f"CLIP tokenizer files missing in {path}: {exc}".splitlines()[0]) from exc
    return model, tok


# ====================================================================== CLIP score
class CLIPScore(GenMetric):
    """torchmetrics ``CLIPScore("openai/clip-vit-base-patch16")``: ``max(100·cos(img, text), 0)`` per view.

    Images are quantised to 8 bits (the official code passes uint8 frames), resized by the CLIP
    preprocessing (shorter side → image_size, centre crop); the prompt is truncated to the text
    model's maximum length (77 tokens for CLIP).
    """

    name = "clip"
    columns = ("clip",)

    def __init__(self, weights: str | os.PathLike[str] = CLIP_B16_ID, device: Any = None, allow_download: bool = False):
        self.device = _device(device)
        self.model, self.tokenizer = load_clip(weights, self.device, allow_download)
        self.image_size = int(self.model.config.vision_config.image_size)
        self.max_length = int(self.model.config.text_config.max_position_embeddings)

    @torch.no_grad()
    def embed_text(self, prompt: str) -> torch.Tensor:
        """``[1,D]`` unit text embedding."""
        tok = self.tokenizer([prompt], padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        tok = {k: v.to(self.device) for k, v in tok.items() if k in ("input_ids", "attention_mask")}
        return F.normalize(_as_tensor(self.model.get_text_features(**tok)).float(), dim=-1)

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        """``[N,D]`` unit image embeddings of ``images [N,3,H,W]`` in [0,1]."""
        return clip_image_embeddings(self.model, images, self.image_size, self.device)

    def __call__(self, images: torch.Tensor, prompt: str, scene_info: dict[str, Any] | None = None) -> Scores:
        cos = self.embed_images(images) @ self.embed_text(prompt).T
        return {"clip": (100 * cos[:, 0]).clamp_min(0).cpu().tolist()}


# ====================================================================== LAION aesthetic
def load_aesthetic_head(path: str | os.PathLike[str] | None, dim: int) -> torch.nn.Linear:
    """The LAION aesthetic linear head (``weight [1,dim]``, ``bias [1]``) from a local file."""
    cands = [path, os.environ.get("VIST3A_AESTHETIC_HEAD"), Path(torch.hub.get_dir()) / "checkpoints" / LAION_HEAD_FILE]
    found = next((Path(c) for c in cands if c and Path(c).is_file()), None)
    if found is None:
        where = f"{path} not found; " if path else ""
        raise MissingWeightsError(
            f"aesthetic: {where}needs the LAION head {LAION_HEAD_FILE} ({LAION_HEAD_URL}) via --aesthetic-head, "
            "$VIST3A_AESTHETIC_HEAD or the torch hub checkpoints folder"
        )
    try:
        if found.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(found))
        else:
            state = torch.load(found, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt file
        raise CheckpointError(f"cannot read aesthetic head {found}: {exc}") from exc
    if isinstance(state, torch.nn.Module):  # pragma: no cover - weights_only forbids modules
        state = state.state_dict()
    w, b = state.get("weight") if isinstance(state, dict) else None, state.get("bias") if isinstance(state, dict) else None
    if w is None or b is None or tuple(w.shape) != (1, dim) or b.numel() != 1:
        got = {k: tuple(v.shape) for k, v in state.items()} if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"aesthetic head {found}: expected weight [1,{dim}] and bias [1], got {got}")
    head = torch.nn.Linear(dim, 1)
    head.load_state_dict({"weight": w.float(), "bias": b.float().reshape(1)})
    return head.eval()


class AestheticScore(GenMetric):
    """VBench ``aesthetic_quality``: LAION head on the unit CLIP ViT-L/14 image embedding, reported ×10
    (VBench divides by 10; the table shows percent)."""

    name = "aesthetic"
    columns = ("aesthetic",)

    def __init__(
        self,
        weights: str | os.PathLike[str] = CLIP_L14_ID,
        head: str | os.PathLike[str] | None = None,
        device: Any = None,
        allow_download: bool = False,
    ):
        self.device = _device(device)
        from transformers import CLIPModel

        path = resolve_pretrained(weights, f"aesthetic (CLIP {weights})", allow_download)
        try:
            self.model = CLIPModel.from_pretrained(path, local_files_only=not allow_download).eval().to(self.device)
        except OSError as exc:
            raise MissingWeightsError(f"CLIP weights in {path} are incomplete: {exc}".splitlines()[0]) from exc
        dim = int(self.model.config.projection_dim)
        self.image_size = int(self.model.config.vision_config.image_size)
        self.head = load_aesthetic_head(head, dim).to(self.device)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, prompt: str, scene_info: dict[str, Any] | None = None) -> Scores:
        emb = clip_image_embeddings(self.model, images, self.image_size, self.device)
        return {"aesthetic": (10 * self.head(emb)[:, 0]).cpu().tolist()}


# ====================================================================== MUSIQ (pyiqa)
class ImagingQuality(GenMetric):
    """VBench ``imaging_quality``: MUSIQ (SPAQ checkpoint) from ``pyiqa``; the shorter side is resized
    to 512 when larger; the score (0–100) is what the table shows (VBench's score/100 in percent).

    ``pyiqa`` needs torchvision, so it is not a dependency of vist3a: install it in the evaluation
    environment (``pip install pyiqa``) and pass the checkpoint (``musiq_spaq_ckpt-358bb6af.pth``).
    """

    name = "imaging"
    columns = ("imaging",)

    def __init__(self, weights: str | os.PathLike[str] | None = None, device: Any = None):
        self.device = _device(device)
        try:
            import pyiqa  # noqa: F401
        except ImportError as exc:
            raise MissingWeightsError(
                "imaging needs the pyiqa package (pip install pyiqa; it pulls torchvision) and the MUSIQ-SPAQ "
                "checkpoint musiq_spaq_ckpt-358bb6af.pth (--musiq-weights)"
            ) from exc
        if weights is None or not Path(weights).is_file():
            raise MissingWeightsError(
                f"imaging needs the MUSIQ-SPAQ checkpoint musiq_spaq_ckpt-358bb6af.pth (--musiq-weights); got {weights}"
            )
        import pyiqa

        self.model = pyiqa.create_metric("musiq", device=self.device, as_loss=False, pretrained_model_path=str(weights))

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, prompt: str, scene_info: dict[str, Any] | None = None) -> Scores:
        x = quantize_8bit(check_images(images))
        h, w = x.shape[-2:]
        if min(h, w) > 512:
            s = 512 / min(h, w)
            x = F.interpolate(x, size=(round(h * s), round(w * s)), mode="bilinear", antialias=True, align_corners=False)
        out = [float(self.model(x[i : i + 1].to(self.device))) for i in range(x.shape[0])]
        return {"imaging": out}


# ====================================================================== world judge
class WorldJudgeMetric(GenMetric):
    """The procedural world's analytic judge (:class:`vist3a.world.Judge`), DPG-style, in percent.

    Needs ``scene_info["caption"]`` (a ``StructuredCaption``; prompts from ``--world``). The views are
    judged together, relations in the first view; no size questions (a generated scene has no
    world-frame depth). Without a caption every column is NaN.
    """

    name = "judge"
    columns = ("judge_entity", "judge_attribute", "judge_relation", "judge_overall")
    per_scene = True
    needs_caption = True

    def __init__(self) -> None:
        from vist3a.world.judge import Judge

        self.judge = Judge()

    def __call__(self, images: torch.Tensor, prompt: str, scene_info: dict[str, Any] | None = None) -> Scores:
        images = check_images(images)
        n = images.shape[0]
        cap = (scene_info or {}).get("caption")
        if cap is None:
            return {c: [math.nan] * n for c in self.columns}
        res = self.judge.score(images, cap)
        vals = {f"judge_{k}": 100 * v for k, v in res.per_category.items()}
        vals["judge_overall"] = 100 * res.overall
        return {c: [float(vals.get(c, math.nan))] * n for c in self.columns}


# ====================================================================== VLM judges (optional)
class UnifiedRewardJudge(GenMetric):
    """UnifiedReward-qwen-7b (Qwen2.5-VL-7B) rating alignment, coherence and style 1–5 per image.

    Needs the weights ``CodeGoat24/UnifiedReward-qwen-7b`` (≈ 16 GB) in a local folder or the HF cache
    and a GPU; the official prompt asks for "Alignment Score", "Coherence Score" and "Style Score",
    parsed by regex (:func:`parse_unifiedreward`).
    """

    name = "unifiedreward"
    columns = ("ur_alignment", "ur_coherence", "ur_style")

    QUESTION = (
        "You are given a text caption and a generated image based on that caption. Your task is to evaluate this "
        "image based on three key criteria:\n1. Alignment with the Caption\n2. Overall Image Quality "
        "(coherence)\n3. Style and aesthetic\nGive a score from 1 to 5 for each, as 'Alignment Score: X', "
        "'Coherence Score: X', 'Style Score: X'.\nCaption: {prompt}"
    )

    def __init__(self, weights: str | os.PathLike[str] = UNIFIEDREWARD_ID, device: Any = None, allow_download: bool = False):
        self.device = _device(device)
        path = resolve_pretrained(weights, "unifiedreward (Qwen2.5-VL-7B judge)", allow_download)
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.processor = AutoProcessor.from_pretrained(path, local_files_only=not allow_download)
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        self.model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype, local_files_only=not allow_download)
        self.model.eval().to(self.device)

    @torch.no_grad()
    def _ask(self, image: torch.Tensor, text: str, max_new_tokens: int = 64) -> str:
        from PIL import Image

        arr = (quantize_8bit(image) * 255).byte().permute(1, 2, 0).cpu().numpy()
        msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
        chat = self.processor.apply_chat_template(msgs, add_generation_prompt=True)
        inputs = self.processor(text=[chat], images=[Image.fromarray(arr)], return_tensors="pt").to(self.device)
        out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        return self.processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)[0]

    def __call__(self, images: torch.Tensor, prompt: str, scene_info: dict[str, Any] | None = None) -> Scores:
        images = check_images(images)
        out: Scores = {c: [] for c in self.columns}
        for i in range(images.shape[0]):
            parsed = parse_unifiedreward(self._ask(images[i], self.QUESTION.format(prompt=prompt)))
            for c in self.columns:
                out[c].append(parsed[c])
        return out


def parse_unifiedreward(text: str) -> dict[str, float]:
    """``'Alignment Score: 4 ... Coherence Score: 3.5 ... Style Score: 4'`` → the three columns (NaN if absent)."""
    import re

    out = {}
    for key, col in (("alignment", "ur_alignment"), ("coherence", "ur_coherence"), ("style", "ur_style")):
        m = re.search(rf"{key}\s*score\s*[:：]?\s*\**\s*([0-9]+(?:\.[0-9]+)?)", text, flags=re.IGNORECASE)
        out[col] = float(m.group(1)) if m else math.nan
    return out


DPG_CATEGORIES = ("entity", "attribute", "relation", "global", "other")


class DPGBenchVQA(GenMetric):
    """DPG-Bench as VIST3A scores it: a Qwen-VL judge answers each prompt's yes/no questions on every
    view; a question scores 0 when a parent was answered no; per-category means in percent.

    Needs the judge weights (as :class:`UnifiedRewardJudge`) and the question file
    ``dpg_bench_sampled_answers.csv`` (``--dpg-questions``; not in the official repo: build it from
    DPG-Bench's ``dpg_bench.csv`` for the sampled prompts). Columns: ``dpg_<category>`` and ``dpg_score``.
    """

    name = "dpg"
    columns = tuple(f"dpg_{c}" for c in DPG_CATEGORIES) + ("dpg_score",)
    per_scene = True

    def __init__(self, questions: str | os.PathLike[str] | None = None, weights: str | os.PathLike[str] = UNIFIEDREWARD_ID,
                 device: Any = None, allow_download: bool = False):  # fmt: skip
        if questions is None or not Path(questions).is_file():
            raise MissingWeightsError(
                f"dpg needs the DPG-Bench question file (--dpg-questions, columns item_id,text,proposition_id,"
                f"dependency,category_broad,question_natural_language); got {questions}"
            )
        self.questions = load_dpg_questions(questions)
        self.vlm = UnifiedRewardJudge(weights, device, allow_download)

    def __call__(self, images: torch.Tensor, prompt: str, scene_info: dict[str, Any] | None = None) -> Scores:
        images = check_images(images)
        qs = self.questions.get(prompt.strip())
        n = images.shape[0]
        if not qs:
            return {c: [math.nan] * n for c in self.columns}

        def answer(img: torch.Tensor, q: str) -> bool:
            return self.vlm._ask(img, q + " Answer Yes or No.", 8).strip().lower().startswith("yes")

        per_view = [dpg_scores(qs, lambda q, i=i: answer(images[i], q)) for i in range(n)]
        return {c: [v[c] for v in per_view] for c in self.columns}


def load_dpg_questions(path: str | os.PathLike[str]) -> dict[str, list[dict[str, Any]]]:
    """DPG-Bench CSV → ``{prompt: [{id, question, category, parents}]}``."""
    import csv

    out: dict[str, list[dict[str, Any]]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            try:
                deps = [int(d) for d in str(row.get("dependency", "0")).split(",") if d.strip() not in ("", "0")]
                out.setdefault(row["text"].strip(), []).append({
                    "id": int(row["proposition_id"]), "question": row["question_natural_language"],
                    "category": row["category_broad"].strip().lower(), "parents": deps,
                })  # fmt: skip
            except (KeyError, ValueError) as exc:
                raise InputError(f"{path}: malformed DPG-Bench row {row}: {exc}") from exc
    return out


def dpg_scores(questions: list[dict[str, Any]], answer: Callable[[str], bool]) -> dict[str, float]:
    """Dependency-aware DPG scoring of one image: a question whose parent was answered no scores 0.
    Returns ``dpg_<category>`` (percent, NaN when none) and ``dpg_score`` (mean over questions)."""
    raw = {q["id"]: answer(q["question"]) for q in questions}
    score = {q["id"]: float(raw[q["id"]] and all(raw.get(p, True) for p in q["parents"])) for q in questions}
    out = {}
    for c in DPG_CATEGORIES:
        vals = [score[q["id"]] for q in questions if q["category"] == c]
        out[f"dpg_{c}"] = 100 * sum(vals) / len(vals) if vals else math.nan
    out["dpg_score"] = 100 * sum(score.values()) / len(score)
    return out


# ====================================================================== registry
METRICS: dict[str, type[GenMetric]] = {
    m.name: m for m in (CLIPScore, AestheticScore, ImagingQuality, WorldJudgeMetric, UnifiedRewardJudge, DPGBenchVQA)
}


def parse_metrics(text: str) -> list[str]:
    """``"clip,aesthetic"`` → ``["clip", "aesthetic"]`` (``all-local`` = clip, aesthetic, judge)."""
    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    if not names:
        raise InputError("--metrics is empty")
    out: list[str] = []
    for n in names:
        if n not in METRICS:
            raise InputError(f"unknown metric {n!r}; choose from {', '.join(METRICS)}")
        if n not in out:
            out.append(n)
    return out


def build_metric(name: str, device: Any = None, **opts: Any) -> GenMetric:
    """Construct metric ``name`` with its options (``clip_weights``, ``aesthetic_weights``,
    ``aesthetic_head``, ``musiq_weights``, ``vlm_weights``, ``dpg_questions``, ``allow_download``)."""
    dl = bool(opts.get("allow_download", False))
    if name == "clip":
        return CLIPScore(opts.get("clip_weights") or CLIP_B16_ID, device, dl)
    if name == "aesthetic":
        return AestheticScore(opts.get("aesthetic_weights") or CLIP_L14_ID, opts.get("aesthetic_head"), device, dl)
    if name == "imaging":
        return ImagingQuality(opts.get("musiq_weights"), device)
    if name == "judge":
        return WorldJudgeMetric()
    if name == "unifiedreward":
        return UnifiedRewardJudge(opts.get("vlm_weights") or UNIFIEDREWARD_ID, device, dl)
    if name == "dpg":
        return DPGBenchVQA(opts.get("dpg_questions"), opts.get("vlm_weights") or UNIFIEDREWARD_ID, device, dl)
    raise InputError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")
