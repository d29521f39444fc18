"""``vist3a generate PROMPT... [--prompts-file F] [--model mini|vist3a-1.3b|vist3a-14b|DIR] [--out DIR]``.

Text → 3D Gaussians. Per prompt a folder ``<out>/<slug>-<hash>/`` with ``scene.ply`` (+ ``.spz`` /
``.splat``), ``cameras.json``, ``video.mp4`` (a fly-through render along the predicted trajectory),
``decoded.mp4`` (the video model's decoded frames), ``orbit.mp4`` (CUDA default), ``prompt.txt``,
``settings.json`` and ``timings.json``. Under ``torchrun --nproc_per_node N`` the prompts are split
round-robin across the processes; each prompt is generated exactly once.

``--write-text-cache F`` encodes the prompts (after the template) and the negative prompt with the
model's text encoder alone and exits; ``--text-cache F`` then generates from F without loading the
text encoder (e.g. on a machine that lacks its weights).
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from vist3a.errors import InputError

log = logging.getLogger(__name__)

DTYPES = {"auto": None, "fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class ExportDefaults:
    """Video defaults per device kind (each overridable by its flag). On a CPU the PyTorch renderer's cost
    grows with splats × frames × pixels, so the CPU defaults keep the README's main command (mini model,
    2 cores) near 30 s including the render of a trained-size scene: docs/generate.md has the measurements.

    Attributes:
        frames_per_view: fly-through frames per pair of predicted cameras (``video.mp4``).
        orbit_frames: frames of ``orbit.mp4`` (0 = none).
        preview_splats: the videos render the scene merged to at most this many splats (0 = all).
        render_size: rendered video size (None = the reconstruction size, 224² for mini).
        tile_size: renderer tile edge (None = the renderer's default).
    """

    frames_per_view: int
    orbit_frames: int
    preview_splats: int
    render_size: int | None
    tile_size: int | None


#: CUDA (gsplat): the official export's videos, every splat, at the reconstruction size.
GPU_DEFAULTS = ExportDefaults(frames_per_view=10, orbit_frames=120, preview_splats=0, render_size=None, tile_size=None)
#: CPU: a 25-frame fly-through (13 cameras, 2 frames per pair) at the reconstruction size (224² for mini)
#: of the scene merged to 40k splats (4 px tiles: fastest for the PyTorch renderer); no orbit video
#: (``--orbit-frames 24`` adds one).
CPU_DEFAULTS = ExportDefaults(frames_per_view=2, orbit_frames=0, preview_splats=40_000, render_size=None, tile_size=4)


def export_defaults(device: torch.device) -> ExportDefaults:
    """The video defaults for ``device`` (also used by `lift` and `reconstruct`): CPU renders are slow."""
    return GPU_DEFAULTS if device.type == "cuda" else CPU_DEFAULTS


def register(subparsers: argparse._SubParsersAction) -> None:
    from vist3a.models.text_cache import add_text_cache_args

    p = subparsers.add_parser(
        "generate",
        help="text -> 3D Gaussians (+ cameras and videos)",
        description=(
            "Generate a 3D Gaussian scene per prompt: a video latent from the DiT (UniPC, CFG), decoded by the "
            "stitched AnySplat decoder. Writes one folder per prompt into --out with scene.ply, cameras.json, "
            "video.mp4 (fly-through along the predicted trajectory), decoded.mp4 (the decoded video), orbit.mp4 "
            "(CUDA default), prompt.txt, settings.json and timings.json. "
            "Run under torchrun to split the prompts across processes/GPUs."
        ),
    )
    p.add_argument("prompts", nargs="*", metavar="PROMPT", help="text prompts (quote each one)")
    p.add_argument("--prompts-file", metavar="F", help="a text file with one prompt per line ('#' lines skipped)")
    p.add_argument(
        "--model", default="mini",
        help="mini (default, embedded, runs on a CPU), vist3a-1.3b, vist3a-14b (see docs/weights.md) or a pipeline folder",
    )  # fmt: skip
    p.add_argument("--out", default="generated", help="output folder (default ./generated)")
    p.add_argument("--seed", type=int, default=None, help="noise seed (default 12413, the official); a repeated prompt gets seed+1, seed+2, ...")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (official 50)")
    p.add_argument("--cfg", type=float, default=None, help="classifier-free guidance scale (default: the model's; official 7.5, mini 3)")
    p.add_argument("--frames", type=int, default=None, help="video frames, 1+4k (official 13)")
    p.add_argument("--height", type=int, default=None, help="video height, a multiple of 16 (official 512)")
    p.add_argument("--width", type=int, default=None, help="video width, a multiple of 16 (official 512)")
    p.add_argument("--flow-shift", type=float, default=None, help="scheduler flow shift (official 5.0)")
    p.add_argument("--candidates", type=int, default=None, metavar="N",
                   help="generate N scenes per prompt and keep the best by --select (N times the time; ranking by "
                   "consistency can prefer near-empty scenes: docs/generate.md; default 1)")  # fmt: skip
    add_select_flag(p)
    p.add_argument("--no-template", action="store_true", help="use the prompts as they are (no orbit template)")
    p.add_argument("--template", default=None, help="a custom prompt template containing {prompt}")
    p.add_argument("--negative-prompt", default=None, help="negative prompt (default: the official one)")
    add_camera_guard_flag(p, "the model's: mini 90, official off")
    p.add_argument("--formats", default="ply", help="scene formats, comma-separated: ply,spz,splat (default ply)")
    p.add_argument(
        "--sh-degree", type=int, default=0,
        help="SH degree kept in the scene files (default 0 = colour only, as the official export; up to 4)",
    )  # fmt: skip
    p.add_argument("--frames-per-view", type=int, default=None,
                   help=f"fly-through frames per camera pair (default {GPU_DEFAULTS.frames_per_view} on CUDA, "
                        f"{CPU_DEFAULTS.frames_per_view} on CPU; 0 = no video.mp4)")
    p.add_argument("--orbit-frames", type=int, default=None,
                   help=f"frames of orbit.mp4 (default {GPU_DEFAULTS.orbit_frames} on CUDA, {CPU_DEFAULTS.orbit_frames} on CPU; 0 = none)")
    p.add_argument("--preview-splats", type=int, default=None,
                   help=f"the videos render the scene merged to at most N splats (default {CPU_DEFAULTS.preview_splats} "
                        "on CPU, all on CUDA; 0 = all)")
    p.add_argument("--max-splats", type=int, default=0,
                   help="merge the scene files to at most N splats (default 0 = every visible splat)")
    p.add_argument("--fps", type=float, default=20.0, help="video frame rate (20)")
    p.add_argument("--render-size", type=int, default=None,
                   help="rendered video size (default: the reconstruction size)")
    p.add_argument("--no-video", action="store_true", help="write no videos (video.mp4, orbit.mp4, decoded.mp4)")
    p.add_argument("--device", default="auto", help="'auto' (CUDA if available), 'cpu', 'cuda', 'cuda:1', ...")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="auto", help="DiT/text encoder dtype (auto: bf16 on CUDA)")
    add_text_cache_args(p, "the prompts", "generating")
    p.add_argument(
        "--low-vram", action="store_true",
        help="text encoder and DiT offloaded to the CPU when idle, VAE tiling (less GPU memory, slower)",
    )  # fmt: skip
    p.set_defaults(func=run)


def read_prompts(prompts: list[str], prompts_file: str | None) -> list[str]:
    """Positional prompts, then the file's non-empty, non-comment lines; at least one."""
    out = [p.strip() for p in prompts]
    if any(not p for p in out):
        raise InputError("empty prompt given")
    if prompts_file:
        f = Path(prompts_file).expanduser()
        if not f.is_file():
            raise InputError(f"prompts file not found: {f}")
        try:
            lines = f.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise InputError(f"{f}: not a UTF-8 text file") from None
        out += [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if not out:
        raise InputError("no prompts: give PROMPT arguments or --prompts-file")
    return out


def add_camera_guard_flag(p: argparse.ArgumentParser, default: str) -> None:
    """``--camera-guard DEG`` (``vist3a.models.camera_guard``), shared by `generate` and `lift`."""
    p.add_argument("--camera-guard", type=float, default=None, metavar="DEG",
                   help="place every frame from the first camera when the predicted cameras turn more than DEG "
                   f"between neighbouring frames (0 = off; default: {default})")  # fmt: skip


def add_select_flag(p: argparse.ArgumentParser) -> None:
    """``--select SPEC`` (:mod:`vist3a.pipelines.selection`), shared by `generate` and `eval text-to-3d`."""
    p.add_argument("--select", default=None, metavar="SPEC",
                   help="how --candidates are ranked: consistency (the scene that re-renders its frames best) or a reward, "
                   "e.g. world (the caption's colours present, others absent; mini-world prompts; world:frames reads "
                   "the decoded video alone, before the 3D stage) or clip:PATH (default: the model's; mini world, "
                   "official consistency; docs/generate.md)")  # fmt: skip


def check_best_of_n(candidates: int | None, select: str | None, model: str | None = None) -> None:
    """One-line errors for ``--candidates`` below 1, an unknown ``--select`` reward, or ``--select`` with fewer than
    2 candidates (``--candidates``, else the settings of ``model``, read without loading it), before any model
    is loaded."""
    if candidates is not None and candidates < 1:
        raise InputError(f"--candidates must be >= 1, got {candidates}")
    if select is not None:
        from vist3a.pipelines.selection import check_select

        check_select(select)
        if candidates is None and model not in (None, "tiny"):
            from vist3a.pipelines.loading import pipeline_settings

            candidates = pipeline_settings(model).candidates
        if (candidates or 1) < 2:
            raise InputError("--select ranks candidates: give --candidates N with N >= 2")


def check_camera_guard(value: float | None) -> None:
    """One-line error for a negative or NaN ``--camera-guard`` (None = the default, 0 = off)."""
    if value is not None and not value >= 0:
        raise InputError(f"--camera-guard must be >= 0 degrees (0 = off), got {value}")


def _check_args(args: argparse.Namespace) -> None:
    check_best_of_n(args.candidates, args.select, args.model)
    if args.frames is not None and (args.frames < 1 or (args.frames - 1) % 4):
        raise InputError(f"--frames {args.frames}: the Wan VAE needs 1+4k frames (e.g. 9, 13, 17)")
    for name in ("steps", "height", "width", "render_size"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise InputError(f"--{name.replace('_', '-')} must be positive, got {v}")
    for name in ("height", "width"):
        v = getattr(args, name)
        if v is not None and v % 16:
            raise InputError(f"--{name} {v}: must be a multiple of 16")
    if args.template is not None and "{prompt}" not in args.template:
        raise InputError("--template must contain {prompt}")
    if args.template is not None and args.no_template:
        raise InputError("--template and --no-template exclude each other")
    check_camera_guard(args.camera_guard)
    if args.sh_degree < 0:
        raise InputError(f"--sh-degree must be >= 0, got {args.sh_degree}")
    if (args.frames_per_view or 0) < 0 or (args.orbit_frames or 0) < 0 or args.fps <= 0:
        raise InputError("--frames-per-view and --orbit-frames must be >= 0 and --fps > 0")
    if (args.preview_splats or 0) < 0 or (args.max_splats or 0) < 0:
        raise InputError("--preview-splats and --max-splats must be >= 0 (0 = no limit)")
    if args.text_cache and args.write_text_cache:
        raise InputError("--text-cache reads a cache, --write-text-cache writes one: give one of them")
    if args.text_cache and not Path(args.text_cache).expanduser().is_file():  # before any model loads
        raise InputError(f"--text-cache {args.text_cache}: file not found")


def _template(args: argparse.Namespace) -> str | bool:
    """The pipeline's ``template`` argument of --no-template / --template (True = the model's own)."""
    return False if args.no_template else (args.template if args.template is not None else True)


def _texts(args: argparse.Namespace, settings, prompts: list[str]) -> tuple[list[str], str | None]:
    """What the text encoder sees for these prompts and flags: the templated prompts, and the negative
    prompt (None when guidance is off)."""
    negative = settings.negative_prompt if args.negative_prompt is None else args.negative_prompt
    cfg = settings.guidance_scale if args.cfg is None else args.cfg
    texts = [settings.full_prompt(p, _template(args)) for p in dict.fromkeys(prompts)]
    return texts, (negative if cfg != 1.0 else None)


def _write_text_cache(args: argparse.Namespace, prompts: list[str], device: torch.device, dtype) -> None:
    """``--write-text-cache FILE``: the text encoder alone (no DiT, no decoder), stored in its own dtype."""
    from vist3a.models.text_cache import write_text_cache
    from vist3a.pipelines.loading import load_text_encoder, pipeline_settings

    texts, negative = _texts(args, pipeline_settings(args.model), prompts)
    te = load_text_encoder(args.model, device=device, dtype=dtype)
    path = write_text_cache(te, texts, args.write_text_cache, negative=negative or "", dtype=None)
    print(f"wrote {len(texts) + 1} prompt embeddings to {path}")


def _check_text_cache(args: argparse.Namespace, pipe, prompts: list[str]) -> None:
    """Every text the run will encode is in ``--text-cache`` (one error before any generation)."""
    from vist3a.models.text_cache import require_cached

    texts, negative = _texts(args, pipe.settings, prompts)
    require_cached(pipe.video.text_encoder, [*texts, *([negative] if negative is not None else [])], args.text_cache,
                   "write it with --write-text-cache and the same prompts, --template/--no-template, --negative-prompt "
                   "and --cfg")  # fmt: skip


def _or(value: int | None, default: int | None) -> int | None:
    return default if value is None else value


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from vist3a import __version__
    from vist3a.io_utils import atomic_write_text
    from vist3a.pipelines.export import (
        claim_folder,
        export_scene,
        occurrences,
        parse_formats,
        prompt_folder_name,
        write_json,
    )
    from vist3a.pipelines.loading import load_pipeline, unknown_words
    from vist3a.train import distributed

    _check_args(args)
    formats = parse_formats(args.formats)
    prompts = read_prompts(args.prompts, args.prompts_file)
    occ = occurrences(prompts)
    out_root = Path(args.out).expanduser()
    if out_root.exists() and not out_root.is_dir():
        raise InputError(f"--out {out_root} exists and is not a folder")

    want = None if args.device == "auto" else args.device
    ctx = distributed.init(want)
    device = ctx.device if ctx.distributed or args.device == "auto" else torch.device(args.device)
    dtype = DTYPES[args.dtype] or (torch.bfloat16 if device.type == "cuda" else None)
    if args.write_text_cache:
        try:
            if ctx.is_main:
                _write_text_cache(args, prompts, device, dtype)
            distributed.barrier()
        finally:
            distributed.shutdown()
        return 0
    vd = export_defaults(device)
    mine = distributed.shard(list(range(len(prompts))), ctx.rank, ctx.world_size)
    if args.model == "mini":
        for p in dict.fromkeys(prompts):
            unk = unknown_words(p)
            if unk and ctx.is_main:
                print(
                    "note: the mini model only knows simple primitive scenes (the shapes, colours, sizes and "
                    f"relations of the procedural world, e.g. 'a red cube to the left of a small blue sphere'); "
                    f"unknown words in {p[:60]!r}: {', '.join(unk[:8])}"
                )
    try:
        t_load = time.perf_counter()
        # --low-vram loads on the CPU; parts visit the GPU only while they run
        pipe = load_pipeline(args.model, device="cpu" if args.low_vram else device, dtype=dtype, text_cache=args.text_cache)
        if args.text_cache:
            _check_text_cache(args, pipe, prompts)
        if args.low_vram:
            pipe.enable_low_vram(device)
        if args.camera_guard is not None:
            pipe = pipe.with_settings(camera_guard_deg=args.camera_guard or None)  # 0 = off
        load_s = time.perf_counter() - t_load
        s = pipe.settings
        template = _template(args)
        seed = s.seed if args.seed is None else args.seed
        out_root.mkdir(parents=True, exist_ok=True)
        written = []
        bar = tqdm(mine, desc=f"generate (rank {ctx.rank})" if ctx.distributed else "generate", unit="prompt")
        for idx in bar:
            prompt = prompts[idx]
            seed_i = seed + occ[idx]  # a repeated prompt is a new sample (seed + 1, + 2, ...), in its own folder
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            t_all = time.perf_counter()
            res = pipe(
                prompt, negative_prompt=args.negative_prompt, num_frames=args.frames, height=args.height,
                width=args.width, steps=args.steps, guidance_scale=args.cfg, flow_shift=args.flow_shift, seed=seed_i,
                template=template, progress=True, candidates=args.candidates, select=args.select,
            )  # fmt: skip
            folder = claim_folder(out_root, prompt_folder_name(prompt, seed_i, occ[idx]))
            t0 = time.perf_counter()
            report = export_scene(
                folder, res.gaussians, res.cameras, formats=formats,
                frames_per_view=0 if args.no_video else _or(args.frames_per_view, vd.frames_per_view),
                orbit_frames=0 if args.no_video else _or(args.orbit_frames, vd.orbit_frames),
                fps=args.fps, render_size=_or(args.render_size, vd.render_size), device=device, sh_degree=args.sh_degree,
                max_splats=args.max_splats, preview_splats=_or(args.preview_splats, vd.preview_splats),
                tile_size=vd.tile_size, decoded_frames=None if args.no_video else res.frames,
            )  # fmt: skip
            atomic_write_text(folder / "prompt.txt", prompt + "\n")
            timings = {**{f"{k}_s": round(v, 4) for k, v in res.timings.items()}}
            timings["export_s"] = round(time.perf_counter() - t0, 4)
            timings.update({f"export_{k}_s": round(v, 4) for k, v in report.timings.items()})
            timings["total_s"] = round(time.perf_counter() - t_all, 4)
            timings["model_load_s"] = round(load_s, 4)
            if device.type == "cuda":
                timings["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 3)
            settings = {
                "prompt": prompt,
                "full_prompt": res.full_prompt,
                "negative_prompt": s.negative_prompt if args.negative_prompt is None else args.negative_prompt,
                "model": args.model,
                "pipeline": pipe.name,
                "seed": res.seed,
                "steps": s.steps if args.steps is None else args.steps,
                "guidance_scale": s.guidance_scale if args.cfg is None else args.cfg,
                "flow_shift": s.flow_shift if args.flow_shift is None else args.flow_shift,
                "scheduler": s.scheduler,
                "num_frames": len(res.cameras),
                "height": int(res.frames.shape[-2]) if res.frames is not None else args.height,
                "width": int(res.frames.shape[-1]) if res.frames is not None else args.width,
                "recon_size": [res.cameras.height, res.cameras.width],
                "template": bool(template),
                "camera_guard_deg": s.camera_guard_deg,
                "camera_guarded": res.camera_guarded,
                "candidates": {"seeds": res.candidate_seeds, "consistency_psnr": res.candidate_psnr,
                               "select": s.select if args.select is None else args.select,
                               "scores": res.candidate_scores}
                if res.candidate_seeds else None,
                "device": str(device),
                "dtype": args.dtype,
                "low_vram": bool(args.low_vram),
                "text_cache": str(Path(args.text_cache).expanduser().resolve()) if args.text_cache else None,
                "formats": list(formats),
                "sh_degree": min(args.sh_degree, res.gaussians.sh_degree),
                "gaussians": report.splats_written,
                "video_splats": report.splats_rendered,
                "frames_per_view": 0 if args.no_video else _or(args.frames_per_view, vd.frames_per_view),
                "orbit_frames": 0 if args.no_video else _or(args.orbit_frames, vd.orbit_frames),
                "render_size": _or(args.render_size, vd.render_size),
                "rank": ctx.rank,
                "world_size": ctx.world_size,
                "vist3a_version": __version__,
                "torch_version": torch.__version__,
            }
            write_json(folder / "settings.json", settings)
            write_json(folder / "timings.json", timings)
            written.append(folder)
            log.info("%s: %s", prompt[:60], ", ".join(f"{k} {v}" for k, v in timings.items()))
        for f in written:
            print(f"wrote {f}")
        distributed.barrier()
    finally:
        distributed.shutdown()
    return 0
