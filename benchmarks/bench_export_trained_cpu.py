"""The export of a scene generated with TRAINED mini weights on a CPU (issue 10).

    python benchmarks/bench_export_trained_cpu.py --threads 2 --out benchmarks/results/generate_cpu_trained.json

The trained (still blurry) mini networks predict large, opaque splats: merged to the CPU preview budget
(40k) they are tens of pixels wide at 224², so with 4 px tiles every tile lists thousands of them. This
script generates one scene with the trained weights of a local training run (``--runs``, default
``runs/mini``: ``dit/wan_mini``, ``stitch``, ``recon/anysplat_mini``; prompt and seed fixed), caches it
(``--scene-cache``; generation takes minutes on a loaded 2-core machine), then, with
``torch.set_num_threads(--threads)``:

- times :func:`export_scene` with the CLI's CPU defaults ``--repeat`` times (per part, as timings.json;
  also the process CPU time, a steadier measure than wall time on a shared machine);
- for a few trajectory frames: with the tile edge the export picks, the binned and the composited
  (tile, Gaussian) pairs, the splats' screen radii and the single-thread render time — and the same
  frames with 4 px tiles forced (``--fixed-tile``), the previous default.

Writes the JSON and a Markdown summary beside it (same name, ``.md``). ``--before`` stores numbers
measured with an earlier version of the renderer (free text, JSON object) for the record.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

PROMPT = "a red cube to the left of a small blue sphere"
SEED = 12413


def _scene(runs: Path, cache: Path):
    """(gaussians, cameras, decoded frames, generation timings) from the cache or a fresh generation."""
    import torch

    from vist3a.gaussians.cameras import Cameras
    from vist3a.gaussians.gaussians import Gaussians

    if cache.is_file():
        d = torch.load(cache, weights_only=True)
        gen_timings = json.loads(d["timings"]) if "timings" in d else {}
    else:
        from vist3a import registry
        from vist3a.pipelines.loading import MINI_SETTINGS
        from vist3a.pipelines.text_to_3d import TextTo3DPipeline
        from vist3a.stitching.stitched import stitched_mini

        video = registry.build("wan-mini", weights=str(runs / "dit" / "wan_mini"))
        dec = stitched_mini(weights=str(runs / "stitch"), recon_weights=str(runs / "recon" / "anysplat_mini"))
        pipe = TextTo3DPipeline(video, dec, MINI_SETTINGS, name="mini")
        out = pipe(PROMPT, seed=SEED, progress=False)
        g, c = out.gaussians, out.cameras
        gen_timings = {k: round(v, 3) for k, v in out.timings.items()}
        d = {"means": g.means, "quats": g.quats, "scales": g.scales, "opacities": g.opacities, "sh": g.sh,
             "c2w": c.c2w, "K": c.K, "wh": torch.tensor([c.width, c.height]), "frames": out.frames,
             "timings": json.dumps(gen_timings)}  # fmt: skip
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(d, cache)
    g = Gaussians(d["means"], d["quats"], d["scales"], d["opacities"], d["sh"])
    cams = Cameras(d["c2w"], d["K"], int(d["wh"][0]), int(d["wh"][1]))
    return g, cams, d["frames"], gen_timings


def _frame_stats(preview, cam, tile_size: int) -> dict:
    import torch

    from vist3a.gaussians.render_torch import project_gaussians, render_torch

    w2c = torch.linalg.inv(cam.c2w)
    proj = project_gaussians(preview.means, preview.quats, preview.scales, preview.opacities, w2c[0], cam.K[0],
                             cam.width, cam.height)  # fmt: skip
    r = proj.radii[proj.valid].float().amax(1)
    q = torch.quantile(r, torch.tensor([0.5, 0.9, 0.99])).tolist() if r.numel() else [0.0] * 3
    st: dict = {}
    t0 = time.perf_counter()
    render_torch(preview.means, preview.quats, preview.scales, preview.opacities, preview.sh, w2c, cam.K,
                 cam.width, cam.height, preview.sh_degree, tile_size=tile_size, stats=st)  # fmt: skip
    dt = time.perf_counter() - t0
    n_tiles = -(-cam.width // tile_size) * -(-cam.height // tile_size)
    return {
        "tile_size": tile_size, "render_s": round(dt, 3), "splats_on_screen": int(proj.valid.sum()),
        "radius_px_p50_p90_p99": [round(v, 1) for v in q], "pairs_binned": st["intersections"],
        "pairs_composited": st["visited"], "mean_list_per_tile": round(st["intersections"] / n_tiles, 1),
    }  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/generate_cpu_trained.json")
    ap.add_argument("--runs", default="runs/mini", help="the mini training run holding the trained weights")
    ap.add_argument("--scene-cache", default=os.path.join(tempfile.gettempdir(), "vist3a_trained_scene.pt"))
    ap.add_argument("--repeat", type=int, default=2, help="export repetitions")
    ap.add_argument("--frames", type=int, default=3, help="trajectory frames analysed one by one")
    ap.add_argument("--fixed-tile", type=int, default=4, help="also render those frames with this tile edge (0 = skip)")
    ap.add_argument("--before", default="", help="JSON object of earlier measurements, stored as is")
    ap.add_argument("--note", default="", help="free text stored in the JSON (e.g. 'machine shared with 7 jobs')")
    args = ap.parse_args()

    import torch

    from vist3a.commands.generate import CPU_DEFAULTS as D
    from vist3a.pipelines.export import export_scene, reduce_splats, trajectory_cameras, video_tile_size

    torch.set_num_threads(args.threads)
    res: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores visible",
        "load_avg_1min_start": round(os.getloadavg()[0], 2),
        "threads": args.threads, "torch": torch.__version__, "note": args.note, "prompt": PROMPT, "seed": SEED,
        "weights": args.runs, "defaults": {**D.__dict__},
    }  # fmt: skip
    if args.before:
        res["before"] = json.loads(args.before)
    g, cams, frames, gen_t = _scene(Path(args.runs), Path(args.scene_cache))
    res["generation_s"] = gen_t
    res["scene"] = {"splats": len(g), "sh_degree": g.sh_degree, "size": [cams.width, cams.height],
                    "opacity_p50": round(float(g.opacities.median()), 4),
                    "scale_max_p50": round(float(g.scales.amax(1).median()), 4)}  # fmt: skip
    runs = []
    for _ in range(max(1, args.repeat)):
        with tempfile.TemporaryDirectory() as tmp:
            t0, c0 = time.perf_counter(), time.process_time()
            rep = export_scene(
                tmp, g, cams, frames_per_view=D.frames_per_view, orbit_frames=D.orbit_frames,
                preview_splats=D.preview_splats, tile_size=D.tile_size, render_size=D.render_size, device="cpu",
                progress=False, decoded_frames=frames,
            )  # fmt: skip
            runs.append({"export_s": round(time.perf_counter() - t0, 3), "cpu_s": round(time.process_time() - c0, 3),
                         "parts_s": {k: round(v, 3) for k, v in rep.timings.items()},
                         "splats_rendered": rep.splats_rendered})  # fmt: skip
            print(json.dumps(runs[-1]), flush=True)
    res["export_runs"] = runs
    res["export_s_best"] = min(r["export_s"] for r in runs)
    res["videos_s_best"] = min(r["parts_s"]["videos"] for r in runs)

    torch.set_num_threads(1)  # one frame per thread, as the export renders them
    preview = reduce_splats(g, D.preview_splats)
    cams_r = cams if D.render_size is None else cams.resized(D.render_size, D.render_size)
    path = trajectory_cameras(cams_r, D.frames_per_view)
    pick = torch.linspace(0, len(path) - 1, max(1, args.frames)).round().long().unique().tolist()
    per = []
    auto = video_tile_size(preview, path, D.tile_size)
    res["video_tile_size"] = auto
    for i in pick:
        cam = path[i : i + 1]
        row = {"frame": i, "auto": _frame_stats(preview, cam, auto)}
        if args.fixed_tile:
            row["fixed"] = _frame_stats(preview, cam, args.fixed_tile)
        per.append(row)
        print(json.dumps(row), flush=True)
    res["frames"] = per
    res["load_avg_1min_end"] = round(os.getloadavg()[0], 2)

    outp = Path(args.out)
    outp.parent.mkdir(parents=True, exist_ok=True)
    outp.write_text(json.dumps(res, indent=1) + "\n")
    md = [
        f"# Export of a trained-weights mini scene on CPU ({res['date']}, {args.threads} threads, {res['machine']})",
        "",
        f"Prompt {PROMPT!r}, seed {SEED}, weights from `{args.runs}`; {res['scene']['splats']} splats "
        f"(median opacity {res['scene']['opacity_p50']}, median largest scale {res['scene']['scale_max_p50']}). "
        f"Load average {res['load_avg_1min_start']} → {res['load_avg_1min_end']}. {args.note}",
        "",
        "| run | export s (wall) | CPU s (all threads) | parts (s) |",
        "|---|---|---|---|",
        *[f"| {k + 1} | {r['export_s']} | {r['cpu_s']} | {r['parts_s']} |" for k, r in enumerate(runs)],
        "",
        "| frame | tile | render s (1 thread) | pairs binned | pairs composited | screen radius px p50/p90/p99 |",
        "|---|---|---|---|---|---|",
    ]
    for row in per:
        for key in ("auto", "fixed"):
            if key in row:
                f = row[key]
                md.append(f"| {row['frame']} ({key}) | {f['tile_size']} | {f['render_s']} | {f['pairs_binned']} | "
                          f"{f['pairs_composited']} | {f['radius_px_p50_p90_p99']} |")  # fmt: skip
    if "before" in res:
        md += ["", f"Before (earlier renderer): {json.dumps(res['before'])}"]
    outp.with_suffix(".md").write_text("\n".join(md) + "\n")
    print(f"wrote {outp} and {outp.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
