"""Distillation on generated latents: the DiT's own latents, paired with their VAE decode (not in the paper).

The paper distils the stitched decoder on VAE latents of real videos; in generation it is fed the DiT's latents.
On the mini model the two differ enough to matter: session 20 (docs/mini.md) found the object-weighted decoders
11 judge points below their teacher on the DiT's latents, while the teacher on the same latents' decoded frames
keeps its gain. A *generated set* stores, per caption, the DiT's raw latent and its VAE decode;
``vist3a stitch train --dataset generated:DIR`` then runs the teacher on the decoded frames and the student on the
stored latent (no VAE encode), so the student learns exactly the inputs generation gives it.

Layout of DIR: ``generated.json`` (format, settings, one entry per clip: prompt, seed, file) and one
``clip_NNNNNN.safetensors`` per clip with ``latent [C, T', h, w]`` (fp16, raw = de-normalised) and
``frames [T, 3, H, W]`` (uint8). Writing is resumable: clips already on disk are kept.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from vist3a.errors import CheckpointError, InputError

FORMAT = "vist3a-generated-latents-v1"
INDEX = "generated.json"


def _clip_name(i: int) -> str:
    return f"clip_{i:06d}.safetensors"


def write_generated_set(pipe: Any, prompts: Sequence[str], seeds: Sequence[int], out: Path,
                        progress: bool = True, batch_size: int = 1) -> Path:  # fmt: skip
    """Generate one clip per ``(prompt, seed)`` with ``pipe`` (a :class:`TextTo3DPipeline`) and write the set.

    Each clip is the pipeline's own raw latent (:meth:`TextTo3DPipeline.video_latents`, the settings' frames, size,
    steps and guidance) and its VAE decode; the stitched decoder is not run. ``batch_size`` clips are denoised and
    decoded together (each from its own seed: the same clip as alone, up to float rounding; on a GPU this is what
    makes a large set cheap). Clips already in ``out`` are kept, so an interrupted run continues where it stopped.
    Returns ``out``.
    """
    from safetensors.torch import save_file
    from tqdm.auto import tqdm

    from vist3a.io_utils import atomic_path
    from vist3a.pipelines.export import write_json

    if len(prompts) != len(seeds):
        raise InputError(f"got {len(seeds)} seeds for {len(prompts)} prompts")
    if not prompts:
        raise InputError("no prompts given")
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    s = pipe.settings
    settings = {"model": getattr(pipe, "name", type(pipe).__name__), "num_frames": s.num_frames, "height": s.height,
                "width": s.width, "steps": s.steps, "guidance_scale": s.guidance_scale, "flow_shift": s.flow_shift}  # fmt: skip
    index_path = out / INDEX
    clips = [{"prompt": p, "seed": int(sd), "file": _clip_name(i)} for i, (p, sd) in enumerate(zip(prompts, seeds, strict=True))]
    if index_path.is_file():
        old = read_index(out)
        if old["settings"] != settings:
            raise InputError(f"{out} holds a set generated with other settings ({old['settings']}): pick a new --out")
        # a clip on disk is kept only if it is the clip asked for (a rerun may extend the list, not reorder it)
        for was, now in zip(old["clips"], clips, strict=False):  # the new list may be longer or shorter
            if (was.get("prompt"), was.get("seed")) != (now["prompt"], now["seed"]) and (out / now["file"]).is_file():
                raise InputError(f"{out}: {now['file']} holds {was.get('prompt')!r} seed {was.get('seed')}, this run "
                                 f"asks for {now['prompt']!r} seed {now['seed']}: pick a new --out")  # fmt: skip
    write_json(index_path, {"format": FORMAT, "settings": settings, "clips": clips})
    todo = [c for c in clips if not (out / c["file"]).is_file()]
    bar = tqdm(total=len(clips), initial=len(clips) - len(todo), desc="generated set", unit="clip",
               disable=not progress)  # fmt: skip
    for b in range(0, len(todo), batch_size):
        chunk = todo[b : b + batch_size]
        with torch.no_grad():
            raw = pipe.video_latents([c["prompt"] for c in chunk], seed=[c["seed"] for c in chunk])  # [B, C, T', h, w]
            rgb = pipe.video.decode(raw)  # [B, 3, T, H, W] in [-1, 1]
        frames = ((rgb.float().permute(0, 2, 1, 3, 4) + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
        for c, lat, fr in zip(chunk, raw, frames, strict=True):
            with atomic_path(out / c["file"]) as tmp:
                save_file({"latent": lat.detach().to("cpu", torch.float16).contiguous(),
                           "frames": fr.cpu().contiguous()}, str(tmp))  # fmt: skip
        bar.update(len(chunk))
    bar.close()
    return out


def read_index(root: Path) -> dict[str, Any]:
    """The set's ``generated.json``, checked (one clear error for a missing or foreign file)."""
    path = Path(root) / INDEX
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"{root}: not a generated set (no {INDEX}; write one with `vist3a stitch generate-set`)") from exc
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: unreadable ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("clips"), list):
        raise CheckpointError(f"{path}: not a {FORMAT} index")
    return doc


class GeneratedLatents(torch.utils.data.Dataset):
    """The clips of a generated set that are on disk: items ``{"images": [T, 3, H, W] in [0, 1], "latents":
    [C, T', h, w] float32}``, checked against the ``frames`` and ``size`` the trainer asks for."""

    def __init__(self, root: Path, frames: int | None = None, size: int | None = None) -> None:
        self.root = Path(root)
        doc = read_index(self.root)
        st = doc["settings"]
        if frames is not None and int(st["num_frames"]) != frames:
            raise InputError(f"{root}: its clips have {st['num_frames']} frames, the training asks for {frames} "
                             f"(a generated set trains at its own frame count: pass --frames {st['num_frames']})")  # fmt: skip
        if size is not None and (int(st["height"]), int(st["width"])) != (size, size):
            raise InputError(f"{root}: its clips are {st['height']}x{st['width']}, the training asks for {size}x{size}")
        written = [c for c in doc["clips"] if (self.root / c["file"]).is_file()]
        self.files = [self.root / c["file"] for c in written]
        self.prompts = [c["prompt"] for c in written]
        self.skipped = f"{len(doc['clips']) - len(written)} of {len(doc['clips'])} clips not written yet"

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = self.files[i]
        try:
            t = load_file(str(path))
        except (OSError, SafetensorError) as exc:
            raise CheckpointError(f"{path}: corrupt clip ({exc})") from exc
        if "latent" not in t or "frames" not in t:
            raise CheckpointError(f"{path}: missing key {'latent' if 'latent' not in t else 'frames'}")
        latent, frames = t["latent"].float(), t["frames"]
        if latent.ndim != 4 or frames.ndim != 4 or frames.shape[1] != 3:
            raise CheckpointError(f"{path}: latent {list(latent.shape)} / frames {list(frames.shape)} are not "
                                  "[C, T', h, w] / [T, 3, H, W]")  # fmt: skip
        if not torch.isfinite(latent).all():
            raise CheckpointError(f"{path}: non-finite values in its latent")
        return {"images": frames.float() / 255.0, "latents": latent}
