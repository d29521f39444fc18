"""How faithful is the CPU preview merge on a scene of the shipped mini model? (`vist3a generate`'s video.mp4)

    python benchmarks/preview_merge_lowpass.py --out benchmarks/results/preview_merge_lowpass_cpu.json

Generates the given prompts with the shipped mini set (CPU, the pipeline's defaults), merges each scene to the
CPU preview budget (``CPU_DEFAULTS.preview_splats``) twice — without the cameras (the opacity rule counts the
splats' own areas) and with them (the areas include the renderers' low-pass at the cameras' pixel size,
``LOW_PASS_PX2``) — and renders both and the full scene at predicted cameras (``--size`` px, white background).
Records the PSNR of each preview against the full render and the merged opacity quantiles.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

PROMPTS = (
    "a red cube to the left of a small blue sphere",
    "a small red cube to the left of a large green sphere on a gray floor",
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompts", nargs="+", default=list(PROMPTS))
    p.add_argument("--views", type=int, nargs="+", default=[0, 6, 12], help="predicted cameras to render")
    p.add_argument("--size", type=int, default=112, help="render size (px; the footprints follow it)")
    p.add_argument("--out", type=Path)
    a = p.parse_args(argv)

    import torch

    import vist3a
    from vist3a.commands.generate import CPU_DEFAULTS
    from vist3a.eval.metrics import psnr
    from vist3a.gaussians.render import render
    from vist3a.io_utils import atomic_write_text
    from vist3a.pipelines.export import reduce_splats

    pipe = vist3a.load_pipeline("mini", device="cpu")
    rows = []
    for prompt in a.prompts:
        res = pipe(prompt, seed=pipe.settings.seed, progress=False)
        g = reduce_splats(res.gaussians, None)  # pruned, every visible splat
        cams = res.cameras.resized(a.size, a.size)
        t0 = time.perf_counter()
        old = reduce_splats(g, CPU_DEFAULTS.preview_splats)
        t1 = time.perf_counter()
        new = reduce_splats(g, CPU_DEFAULTS.preview_splats, cameras=cams)
        t2 = time.perf_counter()
        row = {"prompt": prompt, "splats": len(g), "preview_splats": [len(old), len(new)],
               "merge_s": [round(t1 - t0, 2), round(t2 - t1, 2)], "views": {}}  # fmt: skip
        for i in a.views:
            full = render(g, cams[i], background=1.0).rgb
            row["views"][str(i)] = {
                name: round(float(psnr(render(m, cams[i], background=1.0).rgb, full)[0]), 2)
                for name, m in (("without_cameras", old), ("with_cameras", new))
            }
        q = torch.tensor([0.1, 0.25, 0.5])
        row["opacity_quantiles_10_25_50"] = {
            "without_cameras": [round(v, 3) for v in torch.quantile(old.opacities.float(), q).tolist()],
            "with_cameras": [round(v, 3) for v in torch.quantile(new.opacities.float(), q).tolist()],
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    res = {"what": __doc__.splitlines()[0], "size": a.size, "budget": CPU_DEFAULTS.preview_splats, "rows": rows,
           "date": time.strftime("%Y-%m-%d"), "machine": "2-core CPU (torch renderer)"}  # fmt: skip
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(a.out, json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
