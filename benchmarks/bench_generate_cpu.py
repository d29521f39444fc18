"""The README's main command on a CPU, stage by stage: ``vist3a generate "a red cube to the left of a small
blue sphere"`` with the mini model and the CLI's CPU defaults.

    python benchmarks/bench_generate_cpu.py --threads 2 --out benchmarks/results/generate_cpu.json

Measures, in one process with ``torch.set_num_threads(--threads)``: import (torch, diffusers), model
load, text encoding, denoising, VAE decode, stitched decode, and each export part (splat reduction,
scene files, decoded video, preview merge, fly-through render) — then the whole command in a fresh
process (``python -m vist3a generate``, wall clock, ``OMP_NUM_THREADS`` = threads).

A random model's scene is cheap to render (trained weights ship since 2026-12-02; `--no-proxy` skips
this). The export is also timed on a **proxy scene** with the cost of a trained one: a procedural-world sample
(13 views at 224², its exact depth) unprojected to 652k pixel-aligned splats — what the stitched
decoder predicts without voxel fusion — with the same export defaults, and (``--quality``) the PSNR of
the preview renders against renders of the full scene.

Writes the JSON and a short Markdown table beside it (same name, ``.md``).
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

PROMPT = "a red cube to the left of a small blue sphere"


def proxy_scene(frames: int = 13, size: int = 224, seed: int = 0):
    """Pixel-aligned splats of a procedural-world sample: ``frames·size²`` splats (sky at 1.5× the
    farthest floor depth), footprint 0.8 px, opacity U(0.3, 1), and its cameras."""
    import torch

    from vist3a.gaussians.gaussians import Gaussians
    from vist3a.world.raycast import render_world
    from vist3a.world.sample import make_sample

    sample = make_sample(0, seed=seed, frames=frames, size=size)
    cams = sample.trajectory.cameras
    wr = render_world(sample.scene, cams)
    depth = wr.depth.clone().float()
    depth[depth <= 0] = float(depth[depth > 0].max()) * 1.5
    n, h, w = depth.shape
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    K, c2w = cams.K.float(), cams.c2w.float()
    x = (xs[None] - K[:, 0, 2, None, None]) / K[:, 0, 0, None, None] * depth
    y = (ys[None] - K[:, 1, 2, None, None]) / K[:, 1, 1, None, None] * depth
    pc = torch.stack([x, y, depth], -1)
    pw = pc @ c2w[:, None, :3, :3].transpose(-1, -2) + c2w[:, None, None, :3, 3]
    scale = (0.8 * depth / K[:, 0, 0, None, None])[..., None].expand(n, h, w, 3).reshape(-1, 3).clone()
    gen = torch.Generator().manual_seed(seed)
    opac = 0.3 + 0.7 * torch.rand(n * h * w, generator=gen)
    colors = wr.rgb.permute(0, 2, 3, 1).reshape(-1, 3).float()
    return Gaussians.from_colors(pw.reshape(-1, 3), colors, scale, opac), cams


def _psnr(a, b) -> float:
    mse = float(((a - b) ** 2).mean())
    return 99.0 if mse <= 0 else -10 * math.log10(mse)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/generate_cpu.json")
    ap.add_argument("--no-cli", action="store_true", help="skip the end-to-end run in a fresh process")
    ap.add_argument("--no-proxy", action="store_true", help="skip the proxy-scene export")
    ap.add_argument("--quality", action="store_true", help="PSNR of the proxy previews against the full scene (slow)")
    ap.add_argument("--baseline", action="store_true",
                    help="the previous CPU export defaults on the proxy scene (every splat, 37 + 36 frames at 224², "
                         "8 px tiles), extrapolated from 6 of those frames")
    ap.add_argument("--note", default="", help="free text stored in the JSON (e.g. 'machine shared with 7 jobs')")
    args = ap.parse_args()

    import torch

    from vist3a.gaussians.cameras import Cameras

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    import diffusers  # noqa: F401  (the models' import cost, counted here)

    from vist3a.commands.generate import CPU_DEFAULTS
    from vist3a.pipelines.export import export_scene, reduce_splats, trajectory_cameras
    from vist3a.pipelines.loading import load_pipeline
    import_s = time.perf_counter() - T_START
    res: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores visible",
        "threads": args.threads,
        "torch": torch.__version__,
        "note": args.note,
        "prompt": PROMPT,
        "defaults": {**CPU_DEFAULTS.__dict__},
        "stages_s": {"import": round(import_s, 3)},
    }
    st = res["stages_s"]
    t0 = time.perf_counter()
    pipe = load_pipeline("mini", device="cpu")
    st["model_load"] = round(time.perf_counter() - t0, 3)
    res["steps"] = pipe.settings.steps
    out = pipe(PROMPT, progress=False)
    for k, v in out.timings.items():
        st[k] = round(v, 3)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        rep = export_scene(
            tmp, out.gaussians, out.cameras, frames_per_view=CPU_DEFAULTS.frames_per_view,
            orbit_frames=CPU_DEFAULTS.orbit_frames, preview_splats=CPU_DEFAULTS.preview_splats,
            tile_size=CPU_DEFAULTS.tile_size, render_size=CPU_DEFAULTS.render_size, device="cpu", progress=False,
            decoded_frames=out.frames,
        )  # fmt: skip
        st["export"] = round(time.perf_counter() - t0, 3)
        res["export_parts_s"] = {k: round(v, 3) for k, v in rep.timings.items()}
        res["splats"] = {"generated": len(out.gaussians), "written": rep.splats_written, "rendered": rep.splats_rendered}
    st["total_in_process"] = round(time.perf_counter() - T_START, 3)
    print(json.dumps(res, indent=1), flush=True)

    if not args.no_proxy:
        g, cams = proxy_scene()
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            rep = export_scene(
                tmp, g, cams, frames_per_view=CPU_DEFAULTS.frames_per_view, orbit_frames=CPU_DEFAULTS.orbit_frames,
                preview_splats=CPU_DEFAULTS.preview_splats, tile_size=CPU_DEFAULTS.tile_size,
                render_size=CPU_DEFAULTS.render_size, device="cpu", progress=False, decoded_frames=out.frames,
            )  # fmt: skip
            proxy = {
                "export_s": round(time.perf_counter() - t0, 3),
                "parts_s": {k: round(v, 3) for k, v in rep.timings.items()},
                "splats": {"scene": len(g), "written": rep.splats_written, "rendered": rep.splats_rendered},
            }
        if args.quality:
            from vist3a.gaussians.render import render

            path = trajectory_cameras(cams, CPU_DEFAULTS.frames_per_view)  # PSNR at the recon size
            pick = path[:: max(1, len(path) // 4)]
            full = [render(g, pick[i : i + 1], background=1.0).rgb for i in range(len(pick))]
            q = {}
            for budget in (CPU_DEFAULTS.preview_splats, 2 * CPU_DEFAULTS.preview_splats):
                r = reduce_splats(g, budget, cameras=cams)  # as export_scene merges (the low-pass at its pixels)
                prev = [render(r, pick[i : i + 1], background=1.0).rgb for i in range(len(pick))]
                q[str(budget)] = round(sum(_psnr(a, b) for a, b in zip(prev, full, strict=True)) / len(full), 2)
            proxy["preview_psnr_db"] = q
        if args.baseline:
            from vist3a.gaussians.render import render

            old = Cameras.cat([trajectory_cameras(cams, 3), Cameras.orbit_around(g, 36, cams.width, cams.height, up="-y")])
            pick = torch.linspace(0, len(old) - 1, 6).round().long()
            t0 = time.perf_counter()
            for i in pick.tolist():
                render(g, old[i : i + 1], background=1.0)
            per = (time.perf_counter() - t0) / len(pick)
            proxy["baseline_previous_defaults"] = {
                "frames": len(old), "s_per_frame": round(per, 3), "videos_s_extrapolated": round(per * len(old), 1)
            }  # fmt: skip
        res["proxy_export"] = proxy
        print(json.dumps(proxy, indent=1), flush=True)

    if not args.no_cli:
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            r = subprocess.run([sys.executable, "-m", "vist3a", "generate", PROMPT, "--out", tmp, "--device", "cpu"],
                               env=env, capture_output=True, text=True)  # fmt: skip
            res["cli_wall_s"] = round(time.perf_counter() - t0, 3)
            if r.returncode != 0:
                print(r.stderr[-2000:], file=sys.stderr)
                return 1
            (folder,) = [p for p in Path(tmp).iterdir() if p.is_dir()]
            res["cli_timings"] = json.loads((folder / "timings.json").read_text())
            res["cli_files"] = sorted(p.name for p in folder.iterdir())
        print("cli wall", res["cli_wall_s"], flush=True)
        if "proxy_export" in res:  # the same command with the export cost of a trained-size scene
            est = res["cli_wall_s"] - res["cli_timings"]["export_s"] + res["proxy_export"]["export_s"]
            res["cli_wall_with_proxy_export_s"] = round(est, 3)

    outp = Path(args.out)
    outp.parent.mkdir(parents=True, exist_ok=True)
    outp.write_text(json.dumps(res, indent=1) + "\n")
    rows = [f"| {k} | {v} |" for k, v in st.items()]
    md = [
        f"# `vist3a generate` on CPU ({res['date']}, {args.threads} threads, {res['machine']})",
        "",
        f"Prompt: {PROMPT!r}; mini model ({res['steps']} steps); {args.note}",
        "",
        "| stage (in process) | seconds |",
        "|---|---|",
        *rows,
    ]
    if "cli_wall_s" in res:
        md += ["", f"Whole command in a fresh process (`python -m vist3a generate`): **{res['cli_wall_s']} s** wall "
               f"(its export: {res['cli_timings']['export_s']} s)."]  # fmt: skip
        if "cli_wall_with_proxy_export_s" in res:
            md += [f"With the proxy scene's export instead: **{res['cli_wall_with_proxy_export_s']} s**."]
    if "proxy_export" in res:
        p = res["proxy_export"]
        md += ["", f"Export of the proxy scene ({p['splats']['scene']} pixel-aligned splats, rendered from "
               f"{p['splats']['rendered']}): {p['export_s']} s ({p['parts_s']})."]  # fmt: skip
        if "preview_psnr_db" in p:
            md += [f"Preview PSNR against the full scene at 224² (budget: dB): {p['preview_psnr_db']}."]
        if "baseline_previous_defaults" in p:
            b = p["baseline_previous_defaults"]
            md += [f"Previous CPU defaults on the proxy (all splats, {b['frames']} frames at 224²): "
                   f"{b['s_per_frame']} s per frame, about {b['videos_s_extrapolated']} s of video rendering."]  # fmt: skip
    outp.with_suffix(".md").write_text("\n".join(md) + "\n")
    print(f"wrote {outp} and {outp.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
