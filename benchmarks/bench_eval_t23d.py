"""Throughput of the text-to-3D evaluation (`vist3a eval text-to-3d`), random weights, no download.

Three measurements:

1. **metrics**: images/s of each local metric on 8-view batches — CLIP score with a random model of the
   real ``openai/clip-vit-base-patch16`` configuration, the LAION aesthetic head on a random
   ``openai/clip-vit-large-patch14``, and the world judge.
2. **scoring a generated scene** (``evaluate`` on pre-generated folders): load scene.ply, render the 8
   trajectory views, write the PNG cache, score clip + aesthetic + judge; scenes/min. The scenes are
   random Gaussians of ``--splats`` splats (the official decoder's output is ~13·448²/voxel-merge).
3. **end to end with the mini model** (``--generate N``): generation (random mini weights, its 30
   steps at 256²) + export + views + metrics; scenes/min.

    # GPU (< 3 min on an H100):
    python benchmarks/bench_eval_t23d.py --device cuda --scenes 8 --generate 4 \
        --out benchmarks/results/eval_t23d_gpu.json
    # CPU (small):
    python benchmarks/bench_eval_t23d.py --device cpu --scenes 1 --generate 0 --splats 20000 --size 224 \
        --out benchmarks/results/eval_t23d_cpu.json

Writes the JSON and a markdown table (same name, ``.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from vist3a.eval import gen_metrics as gm  # noqa: E402
from vist3a.eval import text_to_3d as t23d  # noqa: E402
from vist3a.io_utils import atomic_write_text  # noqa: E402

#: The published CLIP configurations (architecture only; weights are random here).
CLIP_B16 = dict(
    text_config=dict(vocab_size=49408, hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
                     num_attention_heads=8, max_position_embeddings=77, bos_token_id=101, eos_token_id=102),
    vision_config=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                       image_size=224, patch_size=16),
    projection_dim=512,
)  # fmt: skip
CLIP_L14 = dict(
    text_config=dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                     num_attention_heads=12, max_position_embeddings=77, bos_token_id=101, eos_token_id=102),
    vision_config=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                       image_size=224, patch_size=14),
    projection_dim=768,
)  # fmt: skip


def _save_clip(cfg: dict, folder: Path) -> Path:
    from transformers import AutoTokenizer, CLIPConfig, CLIPModel

    from vist3a.models.text import minilm_path

    torch.manual_seed(0)
    CLIPModel(CLIPConfig(**cfg)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True).save_pretrained(folder)
    return folder


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _random_scene(folder: Path, n: int, size: int, seed: int) -> None:
    """Random Gaussians in a unit ball seen by 13 cameras on an arc (a stand-in for a generated scene)."""
    from vist3a.gaussians.cameras import Cameras
    from vist3a.gaussians.formats import save_scene
    from vist3a.gaussians.gaussians import Gaussians

    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g) * 0.5
    colors = torch.rand(n, 3, generator=g)
    gs = Gaussians.from_colors(means, colors, scales=torch.full((n, 3), 0.01), opacities=torch.full((n,), 0.5))
    folder.mkdir(parents=True)
    save_scene(gs, folder / "scene.ply")
    Cameras.orbit(13, radius=2.5, arc_deg=120, width=size, height=size).save_json(folder / "cameras.json")
    (folder / "prompt.txt").write_text(f"random scene {seed}\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--scenes", type=int, default=8, help="pre-generated scenes to score")
    ap.add_argument("--generate", type=int, default=4, help="scenes to generate with the mini model (0 = skip)")
    ap.add_argument("--splats", type=int, default=500_000, help="splats per pre-generated scene")
    ap.add_argument("--size", type=int, default=448, help="render side of the scored views")
    ap.add_argument("--repeats", type=int, default=5, help="metric timing repeats")
    ap.add_argument("--out", default=None, help="JSON output (a .md table goes next to it)")
    args = ap.parse_args()
    dev = torch.device(args.device)
    res: dict = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "loadavg_start": round(os.getloadavg()[0], 2),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "weights": "random (CLIP-B/16 and ViT-L/14 architectures; mini pipeline untrained)",
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        b16 = _save_clip(CLIP_B16, root / "clip-b16")
        l14 = _save_clip(CLIP_L14, root / "clip-l14")
        head = root / "head.pth"
        torch.save({"weight": torch.randn(1, 768) * 0.01, "bias": torch.tensor([5.0])}, head)
        res["setup_s"] = round(time.perf_counter() - t0, 2)
        metrics = [
            gm.CLIPScore(b16, device=dev),
            gm.AestheticScore(l14, head, device=dev),
            gm.WorldJudgeMetric(),
        ]
        # 1. metrics alone
        imgs = torch.rand(8, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
        res["metric_images_per_s"] = {}
        for m in metrics:
            m(imgs, "a red cube to the left of a blue sphere", {})  # warm-up
            _sync(dev)
            t = time.perf_counter()
            for _ in range(args.repeats):
                m(imgs, "a red cube to the left of a blue sphere", {})
            _sync(dev)
            res["metric_images_per_s"][m.name] = round(8 * args.repeats / (time.perf_counter() - t), 2)
            print(f"{m.name}: {res['metric_images_per_s'][m.name]} images/s", flush=True)
        # 2. scoring pre-generated scenes
        scenes_dir = root / "scenes"
        for i in range(args.scenes):
            _random_scene(scenes_dir / f"s{i:03d}", args.splats, args.size, i)
        scenes = t23d.discover_scenes(scenes_dir)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        r = t23d.evaluate(scenes, metrics, root / "eval", device=dev, progress=False)
        res["score_scenes"] = len(r.per_scene)
        res["score_splats"] = args.splats
        res["score_scenes_per_min"] = round(r.scenes_per_min, 2)
        res["score_stage_seconds"] = {k: round(v, 2) for k, v in r.stage_seconds.items()}
        r2 = t23d.evaluate(scenes, metrics, root / "eval", device=dev, progress=False, reuse=True)
        res["score_cached_scenes_per_min"] = round(r2.scenes_per_min, 2)
        print(f"scoring: {r.scenes_per_min:.2f} scenes/min ({r2.scenes_per_min:.2f} with cached views)", flush=True)
        # 3. end to end with the mini model
        if args.generate > 0:
            from vist3a.pipelines.loading import load_pipeline

            t = time.perf_counter()
            pipe = load_pipeline("mini", device=dev)
            res["mini_load_s"] = round(time.perf_counter() - t, 2)
            ws = t23d.world_scenes(args.generate, 0, 12413)
            r3 = t23d.evaluate(ws, metrics, root / "gen", pipe=pipe, device=dev, progress=False)
            res["e2e_mini_scenes"] = len(r3.per_scene)
            res["e2e_mini_scenes_per_min"] = round(r3.scenes_per_min, 2)
            res["e2e_mini_stage_seconds"] = {k: round(v, 2) for k, v in r3.stage_seconds.items()}
            print(f"end to end (mini, generation included): {r3.scenes_per_min:.2f} scenes/min", flush=True)
        if dev.type == "cuda":
            res["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated(dev) / 2**30, 2)
    res["loadavg_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(res, indent=2))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, json.dumps(res, indent=2) + "\n")
        lines = ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in res.items()]
        atomic_write_text(out.with_suffix(".md"), "# `vist3a eval text-to-3d` throughput\n\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
