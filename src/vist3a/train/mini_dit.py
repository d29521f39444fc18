"""Stage 3 of the mini model (issue 10): train the wan-mini DiT on world videos encoded by the trained mini VAE.

Data (a **latent cache**, built once per run folder in ``out/cache/``):

- ``cache_scenes`` training scenes (world seed ``seed``) and ``eval_scenes`` held-out scenes (world
  seed ``eval_seed``) are rendered on the device (``frames`` × ``size``², the VAE stage's clip format),
  encoded by the trained VAE (``--vae``, a folder written by ``--stage vae``) and stored as **raw**
  posterior means in fp16, in shards of :data:`SHARD` scenes (each written atomically, so an
  interrupted build continues where it stopped).
- Every phrasing of each scene's caption (:func:`vist3a.world.captions.phrasings`, sorted by style)
  is embedded once by MiniLM exactly as the pipeline does at inference (:meth:`TextEncoder.encode`:
  cleaned, padded to ``max_length`` tokens, padding rows zeroed) and stored in fp16, trimmed to the
  shard's longest prompt (the dropped rows are exact zeros and are padded back per batch). The
  unconditional embedding (the mini pipeline's negative prompt ``""``) is stored too. Training never
  runs the text encoder, so MiniLM is needed only while the cache is built.

A step (batch ``B`` from :func:`~vist3a.train.mini_loop.step_indices` over the cache):

- ``x0 = normalize(raw)`` (``VideoModel.normalize``: the VAE's fitted per-channel mean/std, the
  latent the sampler produces);
- one phrasing per scene, drawn by the step's seeded generator; with probability ``cfg_drop`` it is
  replaced by the unconditional embedding (classifier-free guidance dropout);
- ``u ~ U(0, 1)`` then ``σ = shift·u / (1 + (shift − 1)·u)`` with the model's ``flow_shift`` (the
  schedule of ``FlowMatchEulerDiscreteScheduler`` / UniPC ``use_flow_sigmas``, so training
  timesteps have the density the sampler visits);
- ``x_t = (1 − σ)·x0 + σ·ε``, target ``v = ε − x0``, DiT timestep ``σ·1000`` (the schedulers'
  convention: ``x_{σ'} = x_σ + (σ' − σ)·v``), loss ``MSE(VideoModel.velocity(x_t, 1000σ, text), v)``.

Evaluation: the flow-matching loss on the held-out cache at fixed ``σ ∈`` :data:`EVAL_SIGMAS` with
fixed noise (seeded by ``eval_seed``) and each scene's first phrasing, so numbers compare across
runs. Export: ``out/wan_mini`` = a copy of the VAE folder's ``vae/`` plus the DiT in fp16
(``transformer/``, the modules diffusers keeps in fp32 stay fp32), which
``registry.build("wan-mini", weights=out/"wan_mini")`` loads as the full video model.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from vist3a.errors import CheckpointError, InputError, MissingWeightsError
from vist3a.models.text import TextEncoder
from vist3a.models.video import MINI_DIT, VideoModel, _build_random, cast_keeping_fp32, wan_mini
from vist3a.train.mini_loop import MiniResult, MiniTrainConfig, mix_seed, run_loop

log = logging.getLogger(__name__)

EXPORT_DIR = "wan_mini"
CACHE_DIR = "cache"
#: scenes per cache shard (one atomic file each).
SHARD = 256
#: σ values of the held-out flow-matching loss.
EVAL_SIGMAS = (0.25, 0.5, 0.75)


# ============================================================================ the trained VAE
def vae_folder(path: str | os.PathLike[str]) -> Path:
    """The folder holding ``vae/`` of a VAE-stage export: ``path`` itself, or ``path/wan_mini`` (a run folder)."""
    p = Path(path).expanduser()
    for cand in (p, p / EXPORT_DIR):
        if (cand / "vae" / "config.json").is_file():
            return cand
    raise InputError(
        f"--vae {p}: no trained wan-mini VAE there (expected vae/config.json, as written by "
        "`vist3a world train-mini --stage vae` under RUN/wan_mini)"
    )


def load_trained_vae(path: str | os.PathLike[str], device: torch.device) -> tuple[VideoModel, Path]:
    """``(VideoModel with the VAE only, its folder)``; the VAE must carry fitted per-channel latent stats."""
    folder = vae_folder(path)
    try:
        vm = wan_mini(weights=folder, components=("vae",), device=device)
    except (OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"--vae {folder}: could not load the VAE ({str(e).splitlines()[0][:200]})") from e
    cast_keeping_fp32(vm.vae, torch.float32).requires_grad_(False).eval()  # (.to() warns on diffusers models)
    if not vm.per_channel_stats:
        raise CheckpointError(f"--vae {folder}: the VAE config has no latents_mean/latents_std (not a VAE-stage export)")
    if vm.latent_channels != 16 or vm.temporal_ratio != 4 or vm.spatial_ratio != 8:
        raise CheckpointError(f"--vae {folder}: not a wan-mini VAE (16 channels, 4x time, 8x space)")
    return vm, folder


def _file_sha1(folder: Path) -> str:
    h = hashlib.sha1()
    for f in sorted(folder.glob("*")):
        if f.is_file():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()


# ============================================================================ the latent cache
@dataclass
class LatentSet:
    """Cached scenes of one split.

    Attributes:
        latents: ``[N, C, T', h, w]`` fp16 raw VAE posterior means.
        text: ``[P, L', D]`` fp16 MiniLM embeddings of every phrasing (``L' <= max_length``, trimmed zeros).
        first: ``[N + 1]`` int64: the phrasings of scene ``i`` are rows ``first[i]:first[i+1]`` of ``text``.
        captions: the phrasings as strings, per scene.
    """

    latents: torch.Tensor
    text: torch.Tensor
    first: torch.Tensor
    captions: list[list[str]]

    def __len__(self) -> int:
        return self.latents.shape[0]

    def to(self, device: torch.device) -> LatentSet:
        return LatentSet(self.latents.to(device), self.text.to(device), self.first, self.captions)


def scene_phrasings(index: int, seed: int, frames: int, size: int, max_objects: int) -> list[str]:
    """Every phrasing of scene ``index``'s caption, sorted by style (what the dataset chooses from)."""
    from vist3a.world.sample import make_sample

    texts = make_sample(index, seed, frames, size, max_objects).texts
    return [texts[k] for k in sorted(texts)]


class LatentCache:
    """Render + encode world scenes once; shards ``out/cache/{split}_{k:05d}.safetensors``.

    Args:
        folder: ``out/cache``.
        video_model: the trained VAE (its config fixes the latent shape).
        text_encoder: MiniLM (only needed while shards are missing; None → loaded on demand).
        frames, size, max_objects, shadows: the world clip settings.
        max_length: token length of the text embeddings (the pipeline's, 64 for wan-mini).
        vae_id: a hash of the VAE files (a cache of another VAE is refused).
        device: where to render and encode.
        batch: scenes encoded per VAE call while building.
        motion: one camera motion for every scene (``vist3a.world.trajectory.MOTIONS``, e.g. ``"orbit"``, the
            issue's "procedural orbit videos"); None: the world's mix. Recorded in the shards only when set.
    """

    def __init__(
        self,
        folder: Path,
        video_model: VideoModel,
        text_encoder: TextEncoder | None,
        frames: int,
        size: int,
        max_objects: int,
        shadows: bool,
        max_length: int,
        vae_id: str,
        device: torch.device,
        batch: int = 16,
        motion: str | None = None,
    ) -> None:
        from vist3a.world.trajectory import MOTIONS

        if motion is not None and motion not in MOTIONS:
            raise InputError(f"unknown camera motion {motion!r} for the latent cache; choose one of {', '.join(MOTIONS)}")
        self.motion = motion
        self.folder, self.vm, self.te = Path(folder), video_model, text_encoder
        self.frames, self.size, self.max_objects, self.shadows = frames, size, max_objects, shadows
        self.max_length, self.vae_id, self.device, self.batch = max_length, vae_id, device, batch
        self.latent_shape = tuple(video_model.latent_shape(1, frames, size, size)[1:])
        self.renders = 0  # scenes rendered by this object (tests check cache reuse)

    def _meta(self, split: str, seed: int, start: int, count: int) -> dict[str, str]:
        return {k: str(v) for k, v in dict(
            split=split, seed=seed, start=start, count=count, frames=self.frames, size=self.size,
            max_objects=self.max_objects, shadows=int(self.shadows), max_length=self.max_length, vae=self.vae_id,
            latent_shape=json.dumps(list(self.latent_shape)),
            **({"motion": self.motion} if self.motion else {}),  # absent for the mix: older shards stay valid
        ).items()}  # fmt: skip

    def _text_encoder(self) -> TextEncoder:
        if self.te is None:
            from vist3a.models.text import minilm_l6

            try:
                self.te = minilm_l6(device=self.device, max_length=self.max_length)
            except MissingWeightsError as e:
                raise MissingWeightsError(f"building the latent cache needs MiniLM: {e}") from e
        return self.te

    def uncond(self) -> torch.Tensor:
        """``[1, max_length, D]`` fp16: the embedding of ``""`` (the mini pipeline's negative prompt)."""
        from safetensors import safe_open
        from safetensors.torch import save_file

        from vist3a.io_utils import atomic_path

        path = self.folder / "uncond.safetensors"
        if path.is_file():
            with safe_open(str(path), framework="pt") as f:
                emb = f.get_tensor("uncond")
            if emb.ndim != 3 or emb.shape[:2] != (1, self.max_length):
                raise CheckpointError(f"{path}: expected [1, {self.max_length}, D], got {tuple(emb.shape)}; delete it")
            return emb
        emb = self._text_encoder().encode([""], cache=False, device="cpu").embeds.to(torch.float16)
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            save_file({"uncond": emb.contiguous()}, str(tmp), metadata={"max_length": str(self.max_length)})
        return emb

    def _build_shard(self, path: Path, split: str, seed: int, start: int, count: int, progress: Any) -> None:
        from safetensors.torch import save_file

        from vist3a.io_utils import atomic_path
        from vist3a.world.sample import make_sample

        lats, caps = [], []
        for b0 in range(start, start + count, self.batch):
            idx = list(range(b0, min(b0 + self.batch, start + count)))
            clips = []
            for i in idx:
                s = make_sample(i, seed, self.frames, self.size, self.max_objects, motion=self.motion)
                clips.append(s.render(self.device, shadows=self.shadows).rgb)  # T, 3, S, S in [0, 1]
                caps.append([s.texts[k] for k in sorted(s.texts)])
                self.renders += 1
            video = torch.stack(clips).permute(0, 2, 1, 3, 4).float() * 2 - 1  # B, 3, T, S, S
            with torch.no_grad():
                lats.append(self.vm.encode(video.clamp(-1, 1), sample=False).to("cpu", torch.float16))
            progress.update(len(idx))
        flat = [p for c in caps for p in c]
        te = self._text_encoder()
        embs, masks = [], []
        for k in range(0, len(flat), 256):
            e = te.encode(flat[k : k + 256], cache=False, device="cpu")
            embs.append(e.embeds.to(torch.float16))
            masks.append(e.mask)
        emb, mask = torch.cat(embs), torch.cat(masks)
        keep = max(1, int(mask.sum(1).max()))
        counts = torch.tensor([len(c) for c in caps], dtype=torch.int64)
        meta = {**self._meta(split, seed, start, count), "captions": json.dumps(caps)}
        with atomic_path(path) as tmp:
            save_file({"latents": torch.cat(lats).contiguous(), "text": emb[:, :keep].contiguous(), "counts": counts},
                      str(tmp), metadata=meta)  # fmt: skip

    def _load_shard(self, path: Path, split: str, seed: int, start: int, count: int) -> dict[str, Any]:
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                t = {k: f.get_tensor(k) for k in ("latents", "text", "counts")}
        except Exception as e:  # safetensors raises its own types on corrupt files
            raise CheckpointError(f"{path}: unreadable latent-cache shard ({e}); delete it to rebuild") from e
        want = self._meta(split, seed, start, count)
        # "motion" is compared even when this run has none: a restricted shard is not the mix
        bad = [f"{k}={meta.get(k)!r} (this run: {want.get(k)!r})" for k in {*want, "motion"} if meta.get(k) != want.get(k)]
        if bad:
            raise InputError(
                f"{path} was built with other settings: {', '.join(bad)}; delete {self.folder} or pick a new --out"
            )
        lat, text, counts = t["latents"], t["text"], t["counts"]
        caps = json.loads(meta.get("captions", "[]"))
        if tuple(lat.shape) != (count, *self.latent_shape) or counts.shape != (count,) or len(caps) != count:
            raise CheckpointError(
                f"{path}: expected {count} latents of shape {self.latent_shape}, got {tuple(lat.shape)} "
                f"({counts.numel()} caption counts, {len(caps)} captions); delete it to rebuild"
            )
        if text.ndim != 3 or text.shape[0] != int(counts.sum()) or text.shape[1] > self.max_length:
            raise CheckpointError(f"{path}: text embeddings {tuple(text.shape)} do not match {int(counts.sum())} phrasings")
        return {"latents": lat, "text": text, "counts": counts, "captions": caps}

    def load(self, split: str, seed: int, n: int, progress: bool = True) -> LatentSet:
        """Scenes ``0..n-1`` of world seed ``seed`` (building missing shards first)."""
        from tqdm import tqdm

        if n < 1:
            raise InputError(f"need at least one scene in the {split} cache, got {n}")
        self.folder.mkdir(parents=True, exist_ok=True)
        stale = sorted(p.name for p in self.folder.glob(f"{split}_*.safetensors")
                       if int(p.stem.rsplit("_", 1)[1]) * SHARD >= n)  # fmt: skip
        if stale:
            raise InputError(
                f"{self.folder} holds {split} shards past {n} scenes ({', '.join(stale[:3])}...): it was built for a "
                "larger --cache-scenes/--eval-scenes; pass the same number or pick a new --out"
            )
        shards = [(k, k * SHARD, min(SHARD, n - k * SHARD)) for k in range((n + SHARD - 1) // SHARD)]
        missing = [s for s in shards if not (self.folder / f"{split}_{s[0]:05d}.safetensors").is_file()]
        if missing:
            todo = sum(c for _, _, c in missing)
            log.info("latent cache: rendering and encoding %d %s scenes into %s", todo, split, self.folder)
            with tqdm(total=todo, desc=f"cache {split}", unit="scene", disable=not progress) as bar:
                for k, start, count in missing:
                    self._build_shard(self.folder / f"{split}_{k:05d}.safetensors", split, seed, start, count, bar)
        parts = [self._load_shard(self.folder / f"{split}_{k:05d}.safetensors", split, seed, s, c) for k, s, c in shards]
        width = max(p["text"].shape[1] for p in parts)
        text = torch.cat([F.pad(p["text"], (0, 0, 0, width - p["text"].shape[1])) for p in parts])
        counts = torch.cat([p["counts"] for p in parts])
        first = torch.cat([torch.zeros(1, dtype=torch.int64), counts.cumsum(0)])
        return LatentSet(torch.cat([p["latents"] for p in parts]), text, first, [c for p in parts for c in p["captions"]])


# ============================================================================ flow matching
def shift_sigma(u: torch.Tensor, shift: float) -> torch.Tensor:
    """The flow-matching schedulers' time shift ``σ = s·u / (1 + (s − 1)·u)``."""
    return shift * u / (1 + (shift - 1) * u)


def flow_pair(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x_t, v)`` with ``x_t = (1 − σ)·x0 + σ·ε`` and target ``v = ε − x0`` (σ ``[B]``)."""
    s = sigma.view(-1, *([1] * (x0.ndim - 1))).to(x0)
    return (1 - s) * x0 + s * noise, noise - x0


class DitTask:
    """The DiT stage for :func:`~vist3a.train.mini_loop.run_loop`.

    Args:
        video_model: a :class:`VideoModel` with the trained VAE and the DiT to train (text encoder unused).
        vae_dir: the VAE's folder (copied into the export).
        config: run settings; ``config.train_scenes`` is the cache size, ``config.extra``:
            ``cfg_drop`` (0.1), ``max_length`` (64), ``encode_batch`` (16), ``progress`` (True), ``motion``
            (None: the world's mix of camera motions; ``"orbit"``: orbit videos only).
        device: where the model, the cache tensors and the renders live.
        text_encoder: MiniLM for building the cache (None: loaded when needed).
    """

    name = "dit"

    def __init__(
        self,
        video_model: VideoModel,
        vae_dir: Path,
        config: MiniTrainConfig,
        device: torch.device,
        text_encoder: TextEncoder | None = None,
    ) -> None:
        if video_model.transformer is None:
            raise InputError("the DiT stage needs a VideoModel with a transformer")
        self.vm, self.vae_dir, self.config, self.device = video_model, Path(vae_dir), config, device
        self.model = video_model.transformer.requires_grad_(True)
        video_model.vae.requires_grad_(False)
        ex = config.extra
        self.cfg_drop = float(ex.get("cfg_drop", 0.1))
        if not 0.0 <= self.cfg_drop <= 1.0:
            raise InputError(f"--cfg-drop must be in [0, 1], got {self.cfg_drop}")
        self.max_length = int(ex.get("max_length", 64))
        text_dim = int(self.model.config.text_dim)
        self.cache = LatentCache(
            Path(config.out) / CACHE_DIR, video_model, text_encoder, config.frames, config.size, config.max_objects,
            config.shadows, self.max_length, _file_sha1(self.vae_dir / "vae"), device, int(ex.get("encode_batch", 16)),
            motion=ex.get("motion") or None,
        )  # fmt: skip
        progress = bool(ex.get("progress", True))
        self.uncond = self.cache.uncond().to(device)
        self.train_set = self.cache.load("train", config.seed, config.train_scenes, progress).to(device)
        self.eval_set = self.cache.load("eval", config.eval_seed, config.eval_scenes, progress).to(device)
        if self.uncond.shape[-1] != text_dim or self.train_set.text.shape[-1] != text_dim:
            raise CheckpointError(f"cached text embeddings have width {self.uncond.shape[-1]}, the DiT takes {text_dim}")

    # ------------------------------------------------------------------ batches
    def _text(self, ds: LatentSet, rows: torch.Tensor) -> torch.Tensor:
        """Embeddings ``[B, max_length, D]`` (float32) of phrasing rows ``rows`` (-1 = unconditional)."""
        emb = ds.text[rows.clamp_min(0).to(ds.text.device)].float()
        emb = F.pad(emb, (0, 0, 0, self.max_length - emb.shape[1]))
        drop = (rows < 0).to(emb.device).view(-1, 1, 1)
        return torch.where(drop, self.uncond.float().expand_as(emb), emb)

    def draw_text_rows(self, indices: list[int], step: int) -> torch.Tensor:
        """Phrasing rows of the step's scenes: one per scene from the step's generator, ``-1`` where CFG drops it."""
        g = torch.Generator().manual_seed(mix_seed(self.config.seed, step, 2))
        first = self.train_set.first
        idx = torch.as_tensor(indices, dtype=torch.int64)
        n = first[idx + 1] - first[idx]
        pick = (torch.rand(len(indices), generator=g) * n).long().clamp(max=n - 1)
        drop = torch.rand(len(indices), generator=g) < self.cfg_drop
        return torch.where(drop, torch.full_like(pick, -1), first[idx] + pick)

    def fm_loss(self, x0: torch.Tensor, text: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        x_t, v = flow_pair(x0, noise, sigma)
        pred = self.vm.velocity(x_t, sigma * 1000.0, text)
        return F.mse_loss(pred.float(), v)

    def loss(self, indices: list[int], step: int, autocast: contextlib.AbstractContextManager) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(indices, device=self.device)
        x0 = self.vm.normalize(self.train_set.latents[idx].float())
        text = self._text(self.train_set, self.draw_text_rows(indices, step))
        g = torch.Generator().manual_seed(mix_seed(self.config.seed, step, 3))
        sigma = shift_sigma(torch.rand(len(indices), generator=g), self.vm.flow_shift).to(self.device)
        gn = torch.Generator(device=self.device).manual_seed(mix_seed(self.config.seed, step, 1))
        noise = torch.randn(x0.shape, generator=gn, device=self.device)
        with autocast:
            mse = self.fm_loss(x0, text, sigma, noise)
        return {"mse": mse, "total": mse}

    def evaluate(self) -> dict[str, float]:
        ds = self.eval_set
        n = len(ds)
        g = torch.Generator().manual_seed(self.config.eval_seed)
        noise = torch.randn((n, *ds.latents.shape[1:]), generator=g)
        out: dict[str, float] = {}
        for s in EVAL_SIGMAS:
            tot = 0.0
            for b0 in range(0, n, self.config.batch):
                sl = slice(b0, min(n, b0 + self.config.batch))
                x0 = self.vm.normalize(ds.latents[sl].float())
                text = self._text(ds, ds.first[:-1][sl])
                sigma = torch.full((x0.shape[0],), s, device=self.device)
                tot += float(self.fm_loss(x0, text, sigma, noise[sl].to(self.device))) * x0.shape[0]
            out[f"fm_loss@{s:g}"] = tot / n
        out["fm_loss"] = sum(out[f"fm_loss@{s:g}"] for s in EVAL_SIGMAS) / len(EVAL_SIGMAS)
        return out

    # ------------------------------------------------------------------ export
    def export(self, out: Path) -> dict[str, Any]:
        dit16 = cast_keeping_fp32(copy.deepcopy(self.model).to("cpu"), torch.float16).eval()
        dst = Path(out) / EXPORT_DIR
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{EXPORT_DIR}.", dir=dst.parent))
        old = dst.parent / f".{EXPORT_DIR}.old"
        try:
            shutil.copytree(self.vae_dir / "vae", tmp / "vae")
            dit16.save_pretrained(str(tmp / "transformer"))
            meta = {"name": "wan-mini", "flow_shift": self.vm.flow_shift}
            (tmp / "video_model.json").write_text(json.dumps(meta, indent=2))
            shutil.rmtree(old, ignore_errors=True)
            if dst.exists():
                dst.rename(old)
            os.replace(tmp, dst)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(old, ignore_errors=True)
        return {"folder": str(dst), "dtype": "float16", "vae": str(self.vae_dir), "cache_scenes": len(self.train_set),
                "phrasings": int(self.train_set.text.shape[0]), "eval_sigmas": list(EVAL_SIGMAS)}  # fmt: skip


def load_dit_init(dit: torch.nn.Module, init: str | os.PathLike[str]) -> None:
    """Copy the weights of a trained DiT (``init``: a wan-mini folder with ``transformer/``, or that folder) into
    ``dit`` (float32 in memory whatever the dtype on disk); a missing folder or another architecture is one line."""
    from vist3a.models.checkpoint import load_weights

    folder = Path(init).expanduser()
    folder = folder / "transformer" if (folder / "transformer").is_dir() else folder
    if not folder.is_dir() or not any(folder.glob("*.safetensors")):
        raise MissingWeightsError(f"--init {init}: no DiT weights (transformer/*.safetensors) there")
    try:
        load_weights(dit, folder, allow_download=False)
    except CheckpointError as exc:
        raise CheckpointError(f"--init {folder}: not a DiT of this configuration ({exc})") from None


def train_dit(
    config: MiniTrainConfig,
    vae: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    dit_config: dict[str, Any] | None = None,
    text_encoder: TextEncoder | None = None,
    resume: str | Path | bool | None = False,
    stop_after: int | None = None,
    progress: bool = True,
    clock: Any = None,
    cache_only: bool = False,
    init: str | os.PathLike[str] | None = None,
) -> MiniResult:
    """Train (or continue training) the wan-mini DiT; see the module docstring.

    Args:
        config: run settings; ``train_scenes`` = scenes in the latent cache, ``frames`` = 1+4k,
            ``size`` a multiple of 16; ``extra``: ``cfg_drop``, ``max_length``, ``encode_batch``.
        vae: the VAE stage's export (``RUN/wan_mini``, or the run folder ``RUN``).
        dit_config: overrides of :data:`~vist3a.models.video.MINI_DIT` (tests); the DiT is initialised
            under ``config.seed``.
        text_encoder: MiniLM for building the cache (default: :func:`~vist3a.models.text.minilm_l6`).
        resume, stop_after, progress, clock: see :func:`~vist3a.train.mini_loop.run_loop`.
        cache_only: build (or check) the latent cache and return without training (``step`` 0), so
            a device session can spend one piece on the cache and the next ones on training.
        init: start from trained DiT weights instead of random ones: a wan-mini folder with
            ``transformer/`` (a DiT-stage export) or that ``transformer/`` folder itself, e.g. to carry a DiT
            over to a fine-tuned VAE's latents with a fresh optimizer and schedule. Ignored on ``resume``.
    """
    from diffusers import WanTransformer3DModel

    config.check()
    dev = torch.device(device)
    vm, folder = load_trained_vae(vae, dev)
    vm.latent_shape(1, config.frames, config.size, config.size)  # frames 1+4k, size a multiple of 16
    dit = _build_random(WanTransformer3DModel, {**MINI_DIT, **(dit_config or {})}, dev, None, config.seed)
    if init is not None:
        load_dit_init(dit, init)
    video_model = VideoModel(vm.vae, dit, None, flow_shift=vm.flow_shift, name="wan-mini")
    config.extra = {"progress": progress, **config.extra}
    task = DitTask(video_model, folder, config, dev, text_encoder=text_encoder)
    if cache_only:
        log.info("latent cache ready: %d training and %d held-out scenes", len(task.train_set), len(task.eval_set))
        return MiniResult([], [], 0, finished=False)
    kw = {"clock": clock} if clock is not None else {}
    return run_loop(task, config, dev, resume=resume, stop_after=stop_after, progress=progress, **kw)
