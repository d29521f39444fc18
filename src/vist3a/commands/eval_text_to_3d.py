"""``vist3a eval text-to-3d`` and ``vist3a eval compare``.

Registered by :mod:`vist3a.commands.eval` (``EVAL_COMMANDS``). The library side is
:mod:`vist3a.eval.text_to_3d` (scenes, views, tables) and :mod:`vist3a.eval.gen_metrics` (metrics).
See docs/evaluation-text-to-3d.md.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from vist3a.train import HELD_OUT_SEED

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    from vist3a.commands.generate import add_select_flag
    from vist3a.models.text_cache import add_text_cache_args

    p = sub.add_parser(
        "text-to-3d",
        help="generate (or reuse) one scene per prompt, render 8 views, score CLIP / aesthetic / imaging / judge ...",
        description=(
            "Text-to-3D evaluation as in the paper (App. C.2): one scene per prompt, 8 views (evenly spaced along "
            "the predicted trajectory as the official code, or random orbit views as the paper text), metrics per "
            "view and per scene. Writes OUT/per_view.csv, per_scene.csv, overall.json/csv and contact_sheet.png; "
            "renders are cached as PNG, so re-running with --reuse and more metrics renders nothing again."
        ),
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompts", metavar="FILE", help="prompt file, one per line (e.g. scene_bench_80.txt)")
    src.add_argument("--world", type=int, metavar="N", help="the first N scenes of a procedural-world set (judge-able)")
    src.add_argument("--scenes", metavar="DIR", help="pre-generated scene folders (e.g. `vist3a generate --out DIR`)")
    p.add_argument("--model", default=None, help="mini | vist3a-1.3b | vist3a-14b | a pipeline folder | tiny (smoke test)")
    p.add_argument("--metrics", default=None,
                   help="comma list: clip, aesthetic, imaging, judge, unifiedreward, dpg (default with --world: judge)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--views", choices=["trajectory", "orbit"], default="trajectory",
                   help="trajectory: 8 evenly spaced frames of the trajectory video (official code); orbit: 8 random orbit views")
    p.add_argument("--reuse", action="store_true", help="evaluate scenes already in OUT/scenes instead of refusing")
    p.add_argument("--seed", type=int, default=HELD_OUT_SEED,
                   help=f"world set seed (with --world; default {HELD_OUT_SEED}: the mini model's held-out scenes)")
    p.add_argument("--caption-style", default="short", help="world caption used as prompt: short | long | list | camera")
    p.add_argument("--gen-seed", type=int, default=None, help="generation seed (default 12413, the official one)")
    p.add_argument("--view-seed", type=int, default=0, help="seed of the random orbit views")
    p.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (paper eval: 80; default the pipeline's)")
    p.add_argument("--frames", type=int, default=None, help="video frames (1+4k; default 13)")
    p.add_argument("--height", type=int, default=None)
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--cfg", type=float, default=None, help="guidance scale (default: the pipeline's; official 7.5, mini 3)")
    p.add_argument("--candidates", type=int, default=None, metavar="N",
                   help="best-of-N: N scenes per prompt, the best by --select kept (as `vist3a generate --candidates`)")  # fmt: skip
    add_select_flag(p)
    p.add_argument("--template", default=None,
                   help="prompt template containing {prompt} (default: the pipeline's: the official orbit template; none for mini)")
    p.add_argument("--render-size", type=int, default=None, help="render side of the scored views (default: the cameras')")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    add_text_cache_args(p, "the run's prompts", "evaluating")
    w = p.add_argument_group("metric weights (nothing is downloaded unless --allow-download)")
    w.add_argument("--clip-weights", default=None, help="CLIP ViT-B/16 folder or HF id (default openai/clip-vit-base-patch16)")
    w.add_argument("--aesthetic-weights", default=None, help="CLIP ViT-L/14 folder or HF id (default openai/clip-vit-large-patch14)")
    w.add_argument("--aesthetic-head", default=None, help="LAION head sa_0_4_vit_l_14_linear.pth")
    w.add_argument("--musiq-weights", default=None, help="MUSIQ-SPAQ checkpoint for pyiqa (musiq_spaq_ckpt-358bb6af.pth)")
    w.add_argument("--vlm-weights", default=None, help="UnifiedReward-qwen-7b folder or HF id")
    w.add_argument("--dpg-questions", default=None, help="DPG-Bench question CSV (dpg metric)")
    w.add_argument("--allow-download", action="store_true", help="let transformers download missing HF weights")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)

    c = sub.add_parser(
        "compare",
        help="one table across text-to-3D evaluation folders, in the paper's column order",
        description="Read OUT/overall.json of each `vist3a eval text-to-3d` run and print them as one table.",
    )
    c.add_argument("dirs", nargs="+", metavar="DIR", help="evaluation output folders")
    c.add_argument("--out", metavar="FILE", help="also write the table (.csv or .json)")
    c.add_argument("--title", default="text-to-3D evaluation", help="table title")
    c.set_defaults(func=run_compare)


def _load_model(name: str, device, text_cache: Path | str | None = None):  # noqa: ANN001, ANN202 - torch.device -> TextTo3DPipeline
    from vist3a.pipelines.loading import load_pipeline, tiny_pipeline, use_text_cache

    if name == "tiny":
        log.warning("the tiny pipeline has random weights: a smoke test of the evaluation, not a model")
        pipe = tiny_pipeline(device=device)
        if text_cache:
            use_text_cache(pipe.video, text_cache, device)
        return pipe
    return load_pipeline(name, device=device, text_cache=text_cache)


def _texts(args: argparse.Namespace, settings, scenes: list) -> tuple[list[str], str | None]:  # noqa: ANN001
    """What the text encoder sees in this run: the templated prompts, and the negative prompt (None when guidance
    is off). ``settings``: the model's GenerationSettings."""
    template = True if args.template is None else args.template
    texts = [settings.full_prompt(s.prompt, template) for s in scenes]
    cfg = settings.guidance_scale if args.cfg is None else args.cfg
    return texts, (settings.negative_prompt if cfg != 1.0 else None)


def run(args: argparse.Namespace) -> int:
    import torch

    from vist3a.commands.generate import check_best_of_n
    from vist3a.errors import InputError
    from vist3a.eval import text_to_3d as t23d
    from vist3a.eval.gen_metrics import build_metric, parse_metrics

    if args.metrics is None and args.world is None:
        raise InputError("--metrics is required with --prompts or --scenes (e.g. --metrics clip,aesthetic)")
    names = parse_metrics(args.metrics or "judge")
    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit must be >= 1, got {args.limit}")
    if args.template is not None and "{prompt}" not in args.template:
        raise InputError("--template must contain {prompt}")
    check_best_of_n(args.candidates, args.select, args.model)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.scenes is not None and args.model is not None:
        raise InputError("--scenes evaluates existing scenes; drop --model")
    if args.text_cache and args.write_text_cache:
        raise InputError("--text-cache reads a cache, --write-text-cache writes one: give one of them")
    if (args.text_cache or args.write_text_cache) and args.model is None:
        raise InputError("--text-cache and --write-text-cache go with --model (the model that generates)")
    if args.text_cache and not Path(args.text_cache).expanduser().is_file():  # before any model loads
        raise InputError(f"--text-cache {args.text_cache}: file not found")
    if args.write_text_cache:
        return _write_text_cache(args, device)
    # metrics first: a missing weight fails before any generation
    opts = {k: getattr(args, k) for k in ("clip_weights", "aesthetic_weights", "aesthetic_head", "musiq_weights",
                                           "vlm_weights", "dpg_questions", "allow_download")}  # fmt: skip
    metrics = [build_metric(n, device, **opts) for n in names]
    pipe = None
    gen_seed = 12413 if args.gen_seed is None else args.gen_seed
    if args.scenes is not None:
        scenes = t23d.discover_scenes(args.scenes)
    elif args.world is not None:
        scenes = t23d.world_scenes(args.world, args.seed, gen_seed, args.caption_style)
    else:
        scenes = t23d.prompt_scenes(t23d.read_prompt_file(args.prompts), gen_seed)
    if args.limit is not None:
        scenes = scenes[: args.limit]
    if any(m.needs_caption for m in metrics) and not any("caption" in s.info for s in scenes):
        log.warning("the judge needs structured captions (--world prompts); its columns will be empty")
    out = Path(args.out)
    t23d.check_reuse(scenes, out, args.reuse)
    missing = [s for s in scenes if "folder" not in s.info and not t23d.is_scene_folder(out / t23d.SCENES_DIR / s.name)]
    if missing and args.model is None:
        raise InputError(
            f"{len(missing)} scene(s) not generated yet (e.g. {out / t23d.SCENES_DIR / missing[0].name}): pass --model "
            "to generate them, or --scenes DIR to evaluate existing scene folders"
        )
    if missing:
        pipe = _load_model(args.model, device, args.text_cache)
        if args.text_cache:
            from vist3a.models.text_cache import require_cached

            texts, negative = _texts(args, pipe.settings, missing)
            require_cached(pipe.video.text_encoder, [*texts, *([negative] if negative is not None else [])],
                           args.text_cache,
                           "write it with --write-text-cache and the same prompts, --limit, --template and --cfg")  # fmt: skip
    gen_kwargs = {"steps": args.steps, "num_frames": args.frames, "height": args.height, "width": args.width,
                  "guidance_scale": args.cfg, "candidates": args.candidates, "select": args.select}  # fmt: skip
    if args.template is not None:  # absent: the pipeline's own template (None would mean "no template")
        gen_kwargs["template"] = args.template
    settings = {"model": args.model, "metrics": names, "source": args.prompts or args.scenes or f"world:{args.seed}",
                "gen_seed": gen_seed, **{k: v for k, v in gen_kwargs.items() if v is not None},
                "render_size": args.render_size, "device": str(device)}  # fmt: skip
    result = t23d.evaluate(
        scenes, metrics, out, pipe=pipe, views=args.views, reuse=args.reuse, view_seed=args.view_seed,
        render_size=args.render_size, device=device, gen_kwargs=gen_kwargs, settings=settings,
        progress=not args.no_progress,
    )  # fmt: skip
    print(
        f"text-to-3d: {len(result.per_scene)} scenes ({result.n_generated} generated, {result.n_reused} reused, "
        f"{result.n_cached_views} with cached views, {len(result.failed)} failed) in {result.seconds:.1f} s "
        f"= {result.scenes_per_min:.2f} scenes/min; results in {out}"
    )
    return run_compare(argparse.Namespace(dirs=[str(out)], out=None, title=f"text-to-3D: {out.name}"))


def _write_text_cache(args: argparse.Namespace, device) -> int:  # noqa: ANN001 - torch.device
    """``--write-text-cache FILE``: the prompts of --world/--prompts encoded by the model's text encoder alone."""
    from vist3a.errors import InputError
    from vist3a.eval import text_to_3d as t23d
    from vist3a.models.text_cache import write_text_cache
    from vist3a.pipelines.loading import load_text_encoder, pipeline_settings

    if args.world is None and args.prompts is None:
        raise InputError("--write-text-cache needs the run's prompts: --world N or --prompts FILE")
    scenes = (t23d.world_scenes(args.world, args.seed, 0, args.caption_style) if args.world is not None
              else t23d.prompt_scenes(t23d.read_prompt_file(args.prompts), 0))  # fmt: skip
    scenes = scenes[: args.limit] if args.limit is not None else scenes
    texts, negative = _texts(args, pipeline_settings(args.model), scenes)
    te = load_text_encoder(args.model, device=device)
    path = write_text_cache(te, texts, args.write_text_cache, negative=negative or "")
    print(f"wrote {len(dict.fromkeys([*texts, negative or '']))} prompt embeddings to {path}")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console
    from rich.table import Table

    from vist3a.errors import InputError
    from vist3a.eval.text_to_3d import compare_rows, csv_text
    from vist3a.io_utils import atomic_write_text, check_output_path

    if args.out:
        check_output_path(args.out)
        if Path(args.out).suffix.lower() not in (".csv", ".json"):
            raise InputError(f"--out must end in .csv or .json, got {args.out}")
    header, rows = compare_rows(args.dirs)
    table = Table(title=args.title)
    for h in header:
        table.add_column(h, justify="left" if h == "run" else "right")
    for r in rows:
        table.add_row(*[r[h] for h in header])
    console = Console()
    console.print(table)
    if args.out:
        out = Path(args.out)
        text = json.dumps(rows, indent=2) + "\n" if out.suffix.lower() == ".json" else csv_text(rows)
        atomic_write_text(out, text)
        console.print(f"wrote {out}")
    return 0
