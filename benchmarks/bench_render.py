"""Benchmark of the renderers: the PyTorch reference (CPU or GPU) and gsplat (GPU).

Scenes of 10k / 100k / 1M random Gaussians (a unit-sphere cloud with per-Gaussian scale
``0.6·N^(-1/3)`` so that coverage is similar at every N, SH degree 3) rendered at 256² and 512² from
one camera; the time is the median of ``--repeats`` runs after a warm-up (forward only, no_grad;
``--backward`` also times forward+backward). Configurations whose first run exceeds
``--slow-seconds`` are measured once.

    python benchmarks/bench_render.py --device cpu --out benchmarks/results/render_cpu
    python benchmarks/bench_render.py --device cuda --backward --out benchmarks/results/render_gpu

writes ``<out>.json`` and ``<out>.md`` and prints the markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from vist3a.gaussians.cameras import Cameras
from vist3a.gaussians.gaussians import Gaussians
from vist3a.gaussians.render import render
from vist3a.io_utils import atomic_write_text


def random_scene(n: int, device: torch.device, seed: int = 0) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    means = torch.nn.functional.normalize(torch.randn(n, 3, generator=gen), dim=-1) * torch.rand(n, 1, generator=gen) ** (1 / 3)
    quats = torch.nn.functional.normalize(torch.randn(n, 4, generator=gen), dim=-1)
    scales = 0.6 * n ** (-1 / 3) * torch.exp(torch.randn(n, 3, generator=gen) * 0.5)
    opac = torch.rand(n, generator=gen) * 0.9 + 0.05
    sh = torch.randn(n, 16, 3, generator=gen) * 0.3
    return Gaussians(means, quats, scales, opac, sh).to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_render(g: Gaussians, cams: Cameras, backend: str, backward: bool, repeats: int, slow: float) -> dict:
    device = g.device

    cpu_times: list[float] = []

    def once() -> float:
        c0 = time.process_time()
        if backward:
            params = {k: getattr(g, k).detach().clone().requires_grad_() for k in ("means", "quats", "scales", "opacities", "sh")}
            _sync(device)
            t0 = time.perf_counter()
            out = render(Gaussians(**params), cams, backend=backend)
            (out.rgb.sum() + out.alpha.sum()).backward()
        else:
            _sync(device)
            t0 = time.perf_counter()
            with torch.no_grad():
                render(g, cams, backend=backend)
        _sync(device)
        wall = time.perf_counter() - t0
        cpu_times.append(time.process_time() - c0)
        return wall

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    first = once()  # warm-up (kernel compilation/caches); also decides whether to repeat
    times = [first] if first > slow else [once() for _ in range(repeats)]
    res = {"median_s": statistics.median(times), "runs": len(times), "warmup_s": first}
    if device.type == "cpu":  # process CPU time (all threads): robust when the CPU is shared
        res["cpu_median_s"] = statistics.median(cpu_times[-len(times) :])
    if device.type == "cuda":
        res["peak_mem_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
    return res


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--counts", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--backends", nargs="+", default=None, help="default: torch (+ gsplat on CUDA)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--slow-seconds", type=float, default=20.0, help="measure once when the warm-up exceeds this")
    ap.add_argument("--skip-seconds", type=float, default=300.0, help="skip larger N once a run exceeded this")
    ap.add_argument("--backward", action="store_true", help="also time forward+backward")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--note", default="", help="a line for the report (e.g. 'CPU shared with other jobs')")
    ap.add_argument("--out", default=None, help="write <out>.json and <out>.md")
    args = ap.parse_args(argv)

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    backends = args.backends or (["gsplat", "torch"] if device.type == "cuda" else ["torch"])
    modes = ["forward"] + (["forward+backward"] if args.backward else [])
    rows = []
    too_slow: set[tuple[str, str, int]] = set()
    for n in args.counts:
        g = random_scene(n, device)
        for size in args.sizes:
            cams = Cameras.orbit(1, radius=3.0, elevation_deg=20.0, fov_x_deg=60.0, width=size, height=size).to(device)
            for backend in backends:
                for mode in modes:
                    key = (backend, mode, size)
                    if key in too_slow:
                        rows.append({"n": n, "size": size, "backend": backend, "mode": mode, "skipped": "too slow"})
                        continue
                    try:
                        res = time_render(g, cams, backend, mode != "forward", args.repeats, args.slow_seconds)
                    except Exception as exc:  # noqa: BLE001 - report and go on (e.g. out of memory)
                        res = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
                    row = {"n": n, "size": size, "backend": backend, "mode": mode, **res}
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
                    if res.get("median_s", 0) > args.skip_seconds:
                        too_slow.add(key)
                    if device.type == "cuda":
                        torch.cuda.empty_cache()

    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = [
        f"# Renderer benchmark ({device.type})",
        "",
        f"- date: {stamp}",
        f"- machine: {machine(device)}",
        "- scene: random Gaussians in a unit ball, scale 0.6·N^(-1/3)·lognormal, SH degree 3; one camera at distance 3, fov 60°",
        f"- time: median of {args.repeats} runs after a warm-up (one run when the warm-up exceeded {args.slow_seconds:g} s)",
        "- command: `python benchmarks/bench_render.py " + shlex.join(argv if argv is not None else sys.argv[1:]) + "`",
    ]
    if args.note:
        header.append(f"- note: {args.note}")
    table = [
        "",
        "| Gaussians | image | backend | pass | wall time (ms) | CPU time (ms) | runs | peak GPU mem (GB) |",
        "|---:|---:|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "median_s" in r:
            t = f"{r['median_s'] * 1000:.1f}"
        else:
            t = r.get("skipped") or r.get("error", "?")
        mem = f"{r['peak_mem_gb']:.2f}" if "peak_mem_gb" in r else "–"
        cpu = f"{r['cpu_median_s'] * 1000:.1f}" if "cpu_median_s" in r else "–"
        table.append(
            f"| {r['n']:,} | {r['size']}² | {r['backend']} | {r['mode']} | {t} | {cpu} | {r.get('runs', 0)} | {mem} |"
        )
    md = "\n".join(header + table) + "\n"
    print(md)
    if args.out:
        out = Path(args.out)
        meta = {"date": stamp, "machine": machine(device), "device": device.type, "note": args.note, "rows": rows}
        atomic_write_text(out.with_suffix(".json"), json.dumps(meta, indent=2) + "\n")
        atomic_write_text(out.with_suffix(".md"), md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
