"""Does the mini DiT place objects left/right as its caption says? (issue 10: relation 0 in the judge)

The judge's relation question counts only when both objects are found with the right colour *and* shape
(DPG-style dependencies), so a relation score of 0 can mean "the left/right order is wrong" or "a shape was
missed". This asks the first question alone: for held-out world captions with a left/right relation, it
generates each scene, finds the two objects by colour in the first decoded frame (the caption's view;
`Judge.detect`, shapes ignored) and checks their order. The same check on the world's own first frame
is the reference (the judge's detection is right about the scene's true order). ``generated_3d`` is the
view the judge reads: the generated 3DGS rendered at its first predicted camera (white background, as
`vist3a eval text-to-3d` renders); ``vae`` is the VAE round trip of the true clip and ``vae_3d`` the stitched
decoder's scene of the true clip's latent (with that round trip as its RGB input, as in generation).

    python benchmarks/relation_probe.py --scenes 12 --out benchmarks/results/relation_probe.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenes", type=int, default=12, help="captions with a left/right relation")
    p.add_argument("--model", default="mini")
    p.add_argument("--seed", type=int, default=None, help="world seed of the captions (default: the held-out one)")
    p.add_argument("--gen-seed", type=int, default=12413)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--cfg", type=float, default=None)
    p.add_argument("--style", default="short", help="caption style used as the prompt")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)

    import torch

    import vist3a
    from vist3a.gaussians.render import render
    from vist3a.io_utils import atomic_write_text
    from vist3a.train import HELD_OUT_SEED
    from vist3a.world.judge import Judge
    from vist3a.world.sample import make_sample

    seed = HELD_OUT_SEED if a.seed is None else a.seed

    def first_view(gaussians: object, cameras: object) -> torch.Tensor:
        """The scene at its first camera ``[1, 3, H, W]``, white background, 8-bit (as the evaluation stores views)."""
        with torch.no_grad():
            view = render(gaussians.to("cpu", torch.float32), cameras[0], background=1.0).rgb  # type: ignore[attr-defined]
        return torch.round(view[:1].clamp(0, 1) * 255) / 255

    pipe = vist3a.load_pipeline(a.model, device="cpu")
    frames = pipe.settings.num_frames
    size = pipe.settings.height
    judge = Judge()
    rows, i = [], 0
    t0 = time.time()
    while len(rows) < a.scenes and i < 50 * a.scenes:
        s = make_sample(i, seed, frames, size, 3)
        i += 1
        rels = [r for r in s.caption.relations if r[1] in ("left of", "right of")]
        if not rels:
            continue
        prompt = s.texts[a.style]
        res = pipe(prompt, seed=a.gen_seed, steps=a.steps, guidance_scale=a.cfg, progress=False)
        clip = s.render("cpu").rgb.float()  # T, 3, H, W
        with torch.no_grad():  # the VAE round trip of the true clip: what the latent space keeps of the objects
            raw = pipe.video.encode(clip.permute(1, 0, 2, 3)[None] * 2 - 1, sample=False)
            decoded, rec = pipe.latents_to_3d(raw)
        images = {"generated": res.frames[:1].float(), "generated_3d": first_view(res.gaussians, res.cameras),
                  "vae": decoded[:1], "vae_3d": first_view(rec.gaussians[0], rec.cameras[0]), "world": clip[:1]}  # fmt: skip
        for oi, rel, oj in rels:
            ci, cj = s.caption.objects[oi].colour, s.caption.objects[oj].colour
            row = {"scene": i - 1, "prompt": prompt, "relation": [ci, rel, cj]}
            for name, img in images.items():
                dets = judge.detect(img)
                ui, uj = dets[ci].u, dets[cj].u
                found = ui is not None and uj is not None
                row[name] = {"found": [ui is not None, uj is not None],
                             "correct": bool(found and ((ui < uj) if rel == "left of" else (ui > uj)))}  # fmt: skip
            rows.append(row)
        print(f"{len(rows)}: {prompt!r}: " + ", ".join(f"{n} {rows[-1][n]}" for n in images), flush=True)
    summary = {}
    for name in ("generated", "generated_3d", "vae", "vae_3d", "world"):
        found = [r for r in rows if all(r[name]["found"])]
        summary[name] = {"relations": len(rows), "both_found": len(found),
                         "first_found": sum(r[name]["found"][0] for r in rows),
                         "second_found": sum(r[name]["found"][1] for r in rows),
                         "correct_of_found": sum(r[name]["correct"] for r in found) / max(len(found), 1)}  # fmt: skip
    print(json.dumps(summary), f"({time.time() - t0:.0f} s)")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(a.out, json.dumps({"args": {k: str(v) for k, v in vars(a).items()}, "summary": summary,
                                             "rows": rows}, indent=1) + "\n")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
