"""Text-to-3D evaluation (paper App. C.2; METHOD.md §7.1): generate or reuse one scene per prompt,
render a fixed set of views, score them with generation metrics, write tables and a contact sheet.

Output folder ``OUT``::

    OUT/scenes/<slug>-<hash>/        one per prompt (same names as `vist3a generate`)
        scene.ply, cameras.json, prompt.txt, settings.json   (generated here, or already there)
        world_caption.json          structured caption (--world prompts only)
        consistency.json            multi-view consistency (PSNR of renders at the predicted cameras vs
                                    the decoded frames; written when the scene is generated here)
    OUT/views/<scene>/<mode>/view_00.png ... + views.json   cached renders (reused when present)
    OUT/per_view.csv                scene, view, one column per score
    OUT/per_scene.csv               scene, prompt, mean over views per column (+ consistency_psnr)
    OUT/overall.json, overall.csv   mean over scenes (NaN-free scenes per column), settings, throughput
    OUT/contact_sheet.png           the scored views, one row per scene (first 16 scenes)

Views (``views``):

- ``trajectory`` (the official code, ``t3_scene_evaluation.py``): 8 evenly spaced frames of the
  interpolated trajectory video ``gs.mp4`` — 10 cameras per consecutive pair of predicted cameras,
  the last camera dropped (120 frames for 13 views), frames ``linspace(0, F−1, 8)`` rounded down.
- ``orbit`` (the paper's text, "8 random viewpoints"): 8 cameras at seeded random azimuths on the
  orbit :meth:`Cameras.orbit_of_reconstruction` places around the scene from its predicted cameras.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vist3a.errors import InputError
from vist3a.eval.gen_metrics import GenMetric
from vist3a.gaussians.cameras import Cameras
from vist3a.io_utils import atomic_path, atomic_write_text

log = logging.getLogger(__name__)

VIEW_MODES = ("trajectory", "orbit")
NUM_VIEWS = 8
FRAMES_PER_PAIR = 10  # official save_interpolated_video
SCENES_DIR = "scenes"
VIEWS_DIR = "views"
WORLD_CAPTION = "world_caption.json"
CONSISTENCY_JSON = "consistency.json"
CONSISTENCY = "consistency_psnr"
PER_VIEW_CSV = "per_view.csv"
PER_SCENE_CSV = "per_scene.csv"
OVERALL_JSON = "overall.json"
OVERALL_CSV = "overall.csv"
CONTACT_SHEET = "contact_sheet.png"
#: Column order of the paper's tables (Table 1/6, then the judge, then Table 2), for printing.
TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("imaging", "Img"), ("aesthetic", "Aes"), ("clip", "CLIP"),
    ("ur_alignment", "UR-Al"), ("ur_coherence", "UR-Co"), ("ur_style", "UR-St"),
    ("judge_entity", "J-Ent"), ("judge_attribute", "J-Att"), ("judge_relation", "J-Rel"), ("judge_overall", "Judge"),
    ("consistency_psnr", "MV-PSNR"),
    ("dpg_global", "DPG-Glob"), ("dpg_entity", "DPG-Ent"), ("dpg_attribute", "DPG-Att"),
    ("dpg_relation", "DPG-Rel"), ("dpg_other", "DPG-Oth"), ("dpg_score", "DPG"),
)  # fmt: skip


@dataclass
class EvalScene:
    """One prompt to evaluate.

    Attributes:
        prompt: the prompt (without the generation template).
        name: folder name under ``OUT/scenes``.
        seed: generation seed.
        info: extra facts for the metrics (``caption``: a world ``StructuredCaption``; ``index``).
    """

    prompt: str
    name: str
    seed: int
    info: dict[str, Any] = field(default_factory=dict)


# ====================================================================== prompts
def read_prompt_file(path: str | os.PathLike[str]) -> list[str]:
    """One prompt per line; blank lines and ``#`` lines are skipped."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"prompt file not found: {p}")
    prompts = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
    prompts = [t for t in prompts if t and not t.startswith("#")]
    if not prompts:
        raise InputError(f"no prompts in {p}")
    return prompts


def prompt_scenes(prompts: list[str], seed: int) -> list[EvalScene]:
    """Scenes for a prompt list, named as `vist3a generate` names them (a repeated prompt gets seed + k)."""
    from vist3a.pipelines.export import occurrences, prompt_folder_name

    occ = occurrences(prompts)
    return [EvalScene(p, prompt_folder_name(p, seed + k, k), seed + k) for p, k in zip(prompts, occ, strict=True)]


def world_scenes(
    n: int, world_seed: int, seed: int, style: str = "short", frames: int = 13, size: int = 256
) -> list[EvalScene]:
    """The first ``n`` scenes of world set ``world_seed`` (as ``make_sample(i, world_seed, frames, size)``
    draws them): prompt = their ``style`` caption, with the structured caption for the judge."""
    from vist3a.world.sample import make_sample

    if n < 1:
        raise InputError(f"--world needs N >= 1, got {n}")
    out = []
    for i in range(n):
        s = make_sample(i, seed=world_seed, frames=frames, size=size)
        if style not in s.texts:
            raise InputError(f"unknown caption style {style!r}; choose from {', '.join(s.texts)}")
        prompt = s.texts[style]
        from vist3a.pipelines.export import prompt_folder_name

        out.append(EvalScene(prompt, f"world{world_seed}-{i:04d}-{prompt_folder_name(prompt, seed)}", seed,
                             {"caption": s.caption, "index": i, "world_seed": world_seed}))  # fmt: skip
    return out


# ====================================================================== views
def trajectory_views(cameras: Cameras, n: int = NUM_VIEWS, frames_per_pair: int = FRAMES_PER_PAIR) -> Cameras:
    """The official scored views: ``n`` evenly spaced frames of the interpolated trajectory video.

    The video has ``frames_per_pair`` cameras per consecutive pair and drops the last camera
    (``(V−1)·frames_per_pair`` frames); frame indices are ``linspace(0, F−1, n)`` rounded down.
    """
    if len(cameras) < 2:
        path = cameras.interpolate(n)
    else:
        full = cameras.interpolate((len(cameras) - 1) * frames_per_pair + 1)
        path = full[: len(full) - 1]
    idx = torch.from_numpy(np.linspace(0, len(path) - 1, n).astype(np.int64))
    return path[idx]


def orbit_views(gaussians: Any, cameras: Cameras, n: int = NUM_VIEWS, seed: int = 0) -> Cameras:
    """``n`` cameras at seeded random azimuths (one degree apart at least) on the scene's orbit: the circle of
    :meth:`Cameras.orbit_of_reconstruction` (that of `vist3a generate`'s orbit.mp4)."""
    ring = Cameras.orbit_of_reconstruction(gaussians, cameras, 360)
    gen = torch.Generator().manual_seed(int(seed))
    idx = torch.randperm(360, generator=gen)[:n].sort().values
    return ring[idx]


def _views_key(mode: str, cameras: Cameras, n: int, seed: int, size: tuple[int, int]) -> dict[str, Any]:
    return {"mode": mode, "views": n, "seed": seed, "width": size[0], "height": size[1],
            "cameras": [[round(v, 6) for v in row] for row in cameras.c2w.reshape(len(cameras), -1).double().tolist()]}  # fmt: skip


def load_views(folder: Path, n: int) -> torch.Tensor | None:
    """Cached renders ``view_00.png ...`` → ``[n,3,H,W]`` in [0,1], or None when incomplete."""
    import imageio.v3 as iio

    files = [folder / f"view_{i:02d}.png" for i in range(n)]
    if not all(f.is_file() for f in files):
        return None
    try:
        arrs = [iio.imread(f) for f in files]
    except Exception as exc:  # noqa: BLE001 - unreadable cache: re-render
        log.warning("unreadable cached view in %s (%s); rendering again", folder, exc)
        return None
    arrs = [a[..., :3] if a.ndim == 3 else np.repeat(a[..., None], 3, -1) for a in arrs]
    if len({a.shape for a in arrs}) != 1:
        return None
    return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).float() / 255


def save_png(img: torch.Tensor, path: Path) -> Path:
    """``[3,H,W]`` in [0,1] → 8-bit PNG, atomically."""
    import imageio.v3 as iio

    arr = (img.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, arr, extension=".png")
    return path


def scene_views(
    folder: Path,
    cache: Path,
    mode: str,
    n: int = NUM_VIEWS,
    seed: int = 0,
    size: int | None = None,
    device: torch.device | str = "cpu",
    background: float = 1.0,
) -> tuple[torch.Tensor, bool]:
    """The scored views of a scene folder (``scene.ply`` + ``cameras.json``) as ``[n,3,H,W]`` in [0,1]
    (8-bit, as stored) and whether they came from the cache folder ``cache``.

    Renders are cached as PNG with ``views.json``; a cache whose cameras, size or seed differ is
    rendered again.
    """
    from vist3a.gaussians.formats import load_scene
    from vist3a.gaussians.render import render

    if mode not in VIEW_MODES:
        raise InputError(f"unknown view mode {mode!r}; choose from {', '.join(VIEW_MODES)}")
    manifest = cache / "views.json"
    cams_file, ply = folder / "cameras.json", folder / "scene.ply"
    if not cams_file.is_file():
        raise InputError(f"{folder}: no cameras.json")
    cams = Cameras.load_json(cams_file)
    if size is not None:
        cams = cams.resized(size, size)
    gaussians = None
    if mode == "trajectory":
        views = trajectory_views(cams, n)
    else:
        if not ply.is_file():
            raise InputError(f"{folder}: no scene.ply")
        gaussians = load_scene(ply)
        views = orbit_views(gaussians, cams, n, seed)
    key = _views_key(mode, views, n, seed, (cams.width, cams.height))
    if manifest.is_file():
        try:
            same = json.loads(manifest.read_text()) == key
        except (OSError, ValueError):
            same = False
        if same:
            cached = load_views(cache, n)
            if cached is not None:
                return cached, True
    if not ply.is_file():
        raise InputError(f"{folder}: no scene.ply")
    if gaussians is None:
        gaussians = load_scene(ply)
    dev = torch.device(device)
    g = gaussians.to(dev, torch.float32)
    imgs = []
    with torch.no_grad():
        for i in range(len(views)):
            imgs.append(render(g, views[i].to(dev), background=background).rgb[0].clamp(0, 1).cpu())
    imgs_t = torch.round(torch.stack(imgs) * 255) / 255
    cache.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        save_png(imgs_t[i], cache / f"view_{i:02d}.png")
    atomic_write_text(manifest, json.dumps(key) + "\n")
    return imgs_t, False


# ====================================================================== generation
def generate_scene(pipe: Any, scene: EvalScene, folder: Path, device: torch.device, gen_kwargs: dict[str, Any]) -> dict[str, float]:
    """Generate ``scene.prompt`` with ``pipe`` into ``folder`` (scene.ply, cameras.json, prompt.txt,
    settings.json; no videos). Returns the pipeline's timings."""
    from vist3a.pipelines.export import export_scene, write_json

    res = pipe(scene.prompt, seed=scene.seed, progress=False, **gen_kwargs)
    if res.frames is not None:
        from vist3a.eval.consistency import multiview_consistency

        # a best-of-N result carries its kept scene's score: not rendered twice
        mvc = getattr(res, "consistency", None) or multiview_consistency(res.gaussians, res.cameras, res.frames)
        atomic_write_text(folder / CONSISTENCY_JSON, json.dumps(mvc) + "\n")
    export_scene(folder, res.gaussians, res.cameras, frames_per_view=0, orbit_frames=0, device=device, progress=False)
    atomic_write_text(folder / "prompt.txt", scene.prompt + "\n")
    base = pipe.settings.to_dict() if hasattr(getattr(pipe, "settings", None), "to_dict") else {}
    write_json(folder / "settings.json", {
        **base, **{k: v for k, v in gen_kwargs.items() if v is not None},
        "prompt": scene.prompt, "full_prompt": res.full_prompt, "model": getattr(pipe, "name", "?"), "seed": res.seed,
        "timings": {k: round(float(v), 4) for k, v in res.timings.items()},
        **({"candidate_seeds": res.candidate_seeds, "candidate_psnr": res.candidate_psnr,
            "candidate_scores": getattr(res, "candidate_scores", [])}
           if getattr(res, "candidate_seeds", None) else {}),
    })  # fmt: skip
    return dict(res.timings)


def read_consistency(folder: Path) -> float:
    """Mean multi-view consistency PSNR of a scene folder (NaN when it has no readable consistency.json)."""
    f = folder / CONSISTENCY_JSON
    if not f.is_file():
        return math.nan
    try:
        vals = [float(v) for v in json.loads(f.read_text())["psnr"]]
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("%s: unreadable, consistency left out", f)
        return math.nan
    return _nanmean([v for v in vals if math.isfinite(v)])


def is_scene_folder(folder: Path) -> bool:
    return (folder / "scene.ply").is_file() and (folder / "cameras.json").is_file()


def discover_scenes(root: str | os.PathLike[str]) -> list[EvalScene]:
    """Pre-generated scene folders under ``root`` (each with scene.ply, cameras.json and prompt.txt),
    in name order; ``world_caption.json`` next to them is read for the judge."""
    from vist3a.world.captions import StructuredCaption

    r = Path(root)
    if not r.is_dir():
        raise InputError(f"--scenes: not a folder: {r}")
    out = []
    for d in sorted(p for p in r.iterdir() if p.is_dir()):
        if not is_scene_folder(d):
            continue
        pt = d / "prompt.txt"
        if not pt.is_file():
            log.warning("%s: no prompt.txt, skipped", d)
            continue
        info: dict[str, Any] = {"folder": d}
        if (d / WORLD_CAPTION).is_file():
            info["caption"] = StructuredCaption.from_dict(json.loads((d / WORLD_CAPTION).read_text()))
        out.append(EvalScene(pt.read_text(encoding="utf-8").strip(), d.name, -1, info))
    if not out:
        raise InputError(f"--scenes {r}: no scene folders (scene.ply + cameras.json + prompt.txt)")
    return out


# ====================================================================== the run
def check_reuse(scenes: list[EvalScene], out: Path, reuse: bool) -> None:
    """Without ``reuse``, refuse scenes already generated in ``out/scenes`` (one clear line)."""
    if reuse:
        return
    taken = [sc.name for sc in scenes if "folder" not in sc.info and is_scene_folder(out / SCENES_DIR / sc.name)]
    if taken:
        raise InputError(
            f"{out / SCENES_DIR / taken[0]} already holds a scene ({len(taken)} in all); pass --reuse to evaluate "
            "them again (cached views are reused too)"
        )


@dataclass
class EvalResult:
    """What :func:`evaluate` produced.

    Attributes:
        out: the output folder. columns: score columns. per_view, per_scene: table rows.
        overall: ``{column: mean over scenes}``. n_generated / n_reused / n_cached_views: counts.
        seconds: wall time; scenes_per_min: throughput (generation + rendering + scoring).
    """

    out: Path
    columns: list[str]
    per_view: list[dict[str, Any]]
    per_scene: list[dict[str, Any]]
    overall: dict[str, float]
    n_generated: int = 0
    n_reused: int = 0
    n_cached_views: int = 0
    seconds: float = 0.0
    failed: dict[str, str] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=lambda: {"generate": 0.0, "views": 0.0, "metrics": 0.0})

    @property
    def scenes_per_min(self) -> float:
        return 60 * len(self.per_scene) / self.seconds if self.seconds > 0 else math.nan


def _nanmean(vals: list[float]) -> float:
    v = [x for x in vals if x is not None and not math.isnan(x)]
    return float(sum(v) / len(v)) if v else math.nan


def evaluate(
    scenes: list[EvalScene],
    metrics: list[GenMetric],
    out: str | os.PathLike[str],
    pipe: Any = None,
    views: str = "trajectory",
    reuse: bool = False,
    n_views: int = NUM_VIEWS,
    view_seed: int = 0,
    render_size: int | None = None,
    device: torch.device | str = "cpu",
    gen_kwargs: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    progress: bool = True,
) -> EvalResult:
    """Generate (``pipe``) or reuse each scene, render its views, score them, write every table.

    A scene whose folder ``OUT/scenes/<name>`` (or ``info["folder"]``) already holds scene.ply and
    cameras.json is reused when ``reuse`` is set; without ``reuse`` an existing folder is an error.
    A scene that fails (bad files) is logged, listed in ``failed`` and left out of the means.
    """
    from tqdm.auto import tqdm

    from vist3a.errors import Vist3aError

    if not scenes:
        raise InputError("no scenes to evaluate")
    if not metrics:
        raise InputError("no metrics to compute")
    out_p = Path(out)
    out_p.mkdir(parents=True, exist_ok=True)
    dev = torch.device(device)
    columns = [c for m in metrics for c in m.columns]
    result = EvalResult(out_p, columns, [], [], {})
    check_reuse(scenes, out_p, reuse)
    sheet: list[torch.Tensor] = []
    t0 = time.perf_counter()
    for sc in tqdm(scenes, desc="eval text-to-3d", unit="scene", disable=not progress):
        folder = Path(sc.info.get("folder") or out_p / SCENES_DIR / sc.name)
        try:
            if is_scene_folder(folder):
                result.n_reused += 1
            else:
                if pipe is None:
                    raise InputError(f"{folder}: no generated scene and no model to generate it")
                folder.mkdir(parents=True, exist_ok=True)  # OUT/scenes/<name>
                t = time.perf_counter()
                generate_scene(pipe, sc, folder, dev, gen_kwargs or {})
                result.stage_seconds["generate"] += time.perf_counter() - t
                result.n_generated += 1
            if "caption" in sc.info and not (folder / WORLD_CAPTION).is_file():
                atomic_write_text(folder / WORLD_CAPTION, json.dumps(sc.info["caption"].to_dict()) + "\n")
            cache = out_p / VIEWS_DIR / sc.name / views
            t = time.perf_counter()
            imgs, cached = scene_views(folder, cache, views, n_views, view_seed, render_size, dev)
            result.stage_seconds["views"] += time.perf_counter() - t
            result.n_cached_views += int(cached)
            t = time.perf_counter()
            scores: dict[str, list[float]] = {}
            for m in metrics:
                got = m(imgs, sc.prompt, sc.info)
                for c in m.columns:
                    vals = [float(v) for v in got[c]]
                    if len(vals) != imgs.shape[0]:
                        raise InputError(f"metric {m.name} returned {len(vals)} scores for {imgs.shape[0]} views")
                    scores[c] = vals
            result.stage_seconds["metrics"] += time.perf_counter() - t
        except Vist3aError as exc:
            log.warning("scene %s failed: %s", sc.name, exc)
            result.failed[sc.name] = str(exc)
            continue
        for v in range(imgs.shape[0]):
            result.per_view.append({"scene": sc.name, "view": v, **{c: scores[c][v] for c in columns}})
        row = {"scene": sc.name, "prompt": sc.prompt, **{c: _nanmean(scores[c]) for c in columns}}
        row[CONSISTENCY] = read_consistency(folder)
        result.per_scene.append(row)
        if len(sheet) < 16:
            sheet.append(imgs)
    result.seconds = time.perf_counter() - t0
    if not result.per_scene:
        raise InputError(f"every scene failed, e.g. {next(iter(result.failed.values()))}")
    if any(not math.isnan(r[CONSISTENCY]) for r in result.per_scene):
        result.columns.append(CONSISTENCY)
    else:  # reused scenes from elsewhere: no decoded frames were kept, so no column
        for r in result.per_scene:
            del r[CONSISTENCY]
    result.overall = {c: _nanmean([r[c] for r in result.per_scene]) for c in result.columns}
    write_outputs(result, sheet, {**(settings or {}), "views": views, "n_views": n_views, "view_seed": view_seed})
    return result


# ====================================================================== outputs
def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6f}"
    return v


def csv_text(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _fmt(v) for k, v in r.items()})
    return buf.getvalue()


def contact_sheet(rows: list[torch.Tensor], tile: int = 96) -> torch.Tensor:
    """One row of ``tile``-high thumbnails per scene: ``[3, rows·tile, views·tile]``."""
    import torch.nn.functional as F

    out = []
    width = max(r.shape[0] for r in rows)
    for r in rows:
        t = F.interpolate(r, size=(tile, tile), mode="bilinear", antialias=True, align_corners=False)
        line = torch.ones(3, tile, width * tile)
        line[:, :, : r.shape[0] * tile] = torch.cat(list(t), dim=-1)
        out.append(line)
    return torch.cat(out, dim=1).clamp(0, 1)


def write_outputs(result: EvalResult, sheet: list[torch.Tensor], settings: dict[str, Any]) -> None:
    out = result.out
    atomic_write_text(out / PER_VIEW_CSV, csv_text(result.per_view))
    atomic_write_text(out / PER_SCENE_CSV, csv_text(result.per_scene))
    counts = {c: sum(1 for r in result.per_scene if not math.isnan(r[c])) for c in result.columns}
    atomic_write_text(out / OVERALL_CSV, csv_text([{"scenes": len(result.per_scene), **result.overall}]))
    data = {
        "metrics": {c: (None if math.isnan(v) else v) for c, v in result.overall.items()},
        "scored_scenes": counts,
        "scenes": len(result.per_scene),
        "failed": result.failed,
        "generated": result.n_generated,
        "reused": result.n_reused,
        "cached_views": result.n_cached_views,
        "seconds": round(result.seconds, 3),
        "stage_seconds": {k: round(v, 3) for k, v in result.stage_seconds.items()},
        "scenes_per_min": round(result.scenes_per_min, 4),
        "settings": settings,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_text(out / OVERALL_JSON, json.dumps(data, indent=2, default=str) + "\n")
    if sheet:
        save_png(contact_sheet(sheet), out / CONTACT_SHEET)


# ====================================================================== compare
def load_run(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """``overall.json`` of an evaluation folder (or the file itself)."""
    p = Path(folder)
    f = p / OVERALL_JSON if p.is_dir() else p
    if not f.is_file():
        raise InputError(f"{p}: no {OVERALL_JSON} (run `vist3a eval text-to-3d --out {p}` first)")
    try:
        data = json.loads(f.read_text())
        _ = data["metrics"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{f}: not an evaluation summary ({exc})") from exc
    return data


def compare_rows(folders: list[str | os.PathLike[str]], digits: int = 2) -> tuple[list[str], list[dict[str, str]]]:
    """One row per run in the column order of the paper's tables; only columns some run has.

    Returns ``(header, rows)``; values formatted with ``digits`` decimals (UnifiedReward 3), ``—`` when absent.
    """
    runs = [load_run(f) for f in folders]
    names = [Path(f).name or str(f) for f in folders]
    if len(set(names)) != len(names):
        names = [str(f) for f in folders]
    present = {k for r in runs for k, v in r["metrics"].items() if v is not None}
    known = [c for c, _ in TABLE_COLUMNS]
    cols = [c for c in known if c in present] + sorted(present - set(known))
    labels = dict(TABLE_COLUMNS)
    header = ["run", *[labels.get(c, c) for c in cols], "scenes"]
    rows = []
    for name, r in zip(names, runs, strict=True):
        row = {"run": name}
        for c in cols:
            v = r["metrics"].get(c)
            d = 3 if c.startswith("ur_") else digits
            row[labels.get(c, c)] = "—" if v is None else f"{v:.{d}f}"
        row["scenes"] = str(r.get("scenes", ""))
        rows.append(row)
    return header, rows
