"""``vist3a eval``: evaluations.

``vist3a eval metrics DIR [DIR...]`` scores folders of rendered/ground-truth image pairs
(``DIR/<sample>/gt/*.png`` + ``DIR/<sample>/pred/*.png``, see docs/evaluation.md).

Registration point for further evaluations: each lives in ``vist3a.commands.eval_<name>`` (e.g.
``eval_nvs.py``, ``eval_text_to_3d.py``) and exposes ``register(eval_subparsers)``, which adds its
parser to the ``eval`` sub-parsers and sets ``func``. Modules listed in :data:`EVAL_COMMANDS` that do
not exist yet are skipped.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import io
import json
import logging
import math
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Order = order in `vist3a eval --help`. "metrics" is defined here; the others are modules
# vist3a.commands.eval_<name> with register(eval_subparsers).
EVAL_COMMANDS = ["metrics", "nvs", "text_to_3d"]

PER_SAMPLE_CSV = "metrics_per_sample.csv"
OVERALL_CSV = "metrics_overall.csv"
OVERALL_JSON = "metrics_overall.json"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="evaluations: image metrics, novel-view synthesis, text-to-3D")
    sub = parser.add_subparsers(dest="eval_command", metavar="EVAL")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])
    for name in EVAL_COMMANDS:
        if name == "metrics":
            _register_metrics(sub)
            continue
        try:
            module = importlib.import_module(f"vist3a.commands.eval_{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"vist3a.commands.eval_{name}":
                continue  # not built yet
            raise
        module.register(sub)


def _register_metrics(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "metrics",
        help="PSNR / SSIM / LPIPS-VGG of gt-pred image pairs in one or more result folders",
        description=(
            "Score DIR/<sample>/gt/*.png against DIR/<sample>/pred/*.png (paired by file name; the official "
            "DIR/images/<sample>/… layout works too). Writes metrics_per_sample.csv, metrics_overall.csv and "
            "metrics_overall.json into each DIR and prints a table; several DIRs give one comparison table."
        ),
    )
    p.add_argument("dirs", nargs="+", metavar="DIR", help="result folder(s)")
    p.add_argument("--out", metavar="FILE", help="also write the table of all DIRs (.csv or .json)")
    p.add_argument("--no-lpips", action="store_true", help="skip LPIPS (PSNR and SSIM only)")
    p.add_argument("--vgg-weights", metavar="FILE", help="torchvision vgg16-397923af.pth (default: torch hub cache)")
    p.add_argument("--lpips-weights", metavar="FILE", help="lpips v0.1 vgg.pth linear layers (see docs/evaluation.md)")
    p.add_argument("--device", default=None, help="device for LPIPS (default: cuda if available, else cpu)")
    p.add_argument("--no-write", action="store_true", help="do not write CSV/JSON files into the DIRs")
    p.set_defaults(func=run_metrics)


def _fmt(v: float | None, digits: int) -> str:
    if v is None:
        return "n/a"
    if math.isinf(v):
        return "inf"
    return f"{v:.{digits}f}"


def _json_num(v: float | None) -> Any:
    if v is None:
        return None
    return "inf" if math.isinf(v) else v


def _csv_text(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return buf.getvalue()


def _row(name: str, score) -> dict[str, Any]:  # noqa: ANN001 - DirScore
    o = score.overall
    return {
        "run": name,
        "PSNR": _fmt(o.psnr, 4),
        "SSIM": _fmt(o.ssim, 4),
        "LPIPS": _fmt(o.lpips, 4),
        "samples": o.n,
        "images": score.n_images,
        "identical_images": score.n_identical_images,
        "skipped_samples": len(score.skipped),
    }


def _write_dir_outputs(score) -> list[Path]:  # noqa: ANN001 - DirScore
    from vist3a.io_utils import atomic_write_text

    root: Path = score.root
    per = [
        {"sample": s.sample, "PSNR": _fmt(s.psnr, 6), "SSIM": _fmt(s.ssim, 6), "LPIPS": _fmt(s.lpips, 6),
         "images": s.n_images, "identical_images": s.n_identical}
        for s in score.samples
    ]  # fmt: skip
    o = score.overall
    overall = {"PSNR": _fmt(o.psnr, 6), "SSIM": _fmt(o.ssim, 6), "LPIPS": _fmt(o.lpips, 6)}
    data = {
        "PSNR": _json_num(o.psnr),
        "SSIM": o.ssim,
        "LPIPS": o.lpips,
        "samples": o.n,
        "images": score.n_images,
        "identical_images": score.n_identical_images,
        "identical_samples": o.n_identical,
        "skipped_samples": score.skipped,
        "note": "PSNR: mean over finite per-image values; identical pairs (PSNR = inf) are counted, not averaged",
    }
    written = [
        atomic_write_text(root / PER_SAMPLE_CSV, _csv_text(per)),
        atomic_write_text(root / OVERALL_CSV, _csv_text([overall])),
        atomic_write_text(root / OVERALL_JSON, json.dumps(data, indent=2, allow_nan=False) + "\n"),
    ]
    return written


def run_metrics(args: argparse.Namespace) -> int:
    import torch
    from rich.console import Console
    from rich.table import Table

    from vist3a.errors import InputError, MissingWeightsError
    from vist3a.eval.metrics import load_lpips, score_dir
    from vist3a.io_utils import atomic_write_text, check_output_path

    dirs = [Path(d) for d in args.dirs]
    for d in dirs:
        if not d.is_dir():
            raise InputError(f"not a folder: {d}")
    if args.out:
        check_output_path(args.out)
        if Path(args.out).suffix.lower() not in (".csv", ".json"):
            raise InputError(f"--out must end in .csv or .json, got {args.out}")
    for given in (args.vgg_weights, args.lpips_weights):
        if given and not Path(given).is_file():
            raise InputError(f"weights file not found: {given}")
    lpips = None
    if not args.no_lpips:
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            lpips = load_lpips(device, args.vgg_weights, args.lpips_weights)
        except MissingWeightsError as exc:
            log.warning("LPIPS skipped: %s. PSNR and SSIM are still reported.", exc)
    console = Console(stderr=False)
    names = _run_names(dirs)
    rows = []
    for name, d in zip(names, dirs, strict=True):
        score = score_dir(d, lpips)
        if score.skipped:
            log.warning("%s: %d sample(s) skipped, e.g. %s", d, len(score.skipped), next(iter(score.skipped.values())))
        if score.n_identical_images:
            log.info("%s: %d identical image pair(s) (PSNR = inf) left out of the PSNR mean", d, score.n_identical_images)
        if not args.no_write:
            try:
                for f in _write_dir_outputs(score):
                    console.print(f"wrote {f}")
            except (OSError, InputError) as exc:
                log.warning("could not write results into %s: %s", d, exc)
        rows.append(_row(name, score))
    table = Table(title="image metrics (mean over samples of per-sample means)")
    for col in rows[0]:
        table.add_column(col, justify="left" if col == "run" else "right")
    for r in rows:
        table.add_row(*[str(v) for v in r.values()])
    console.print(table)
    if args.out:
        out = Path(args.out)
        if out.suffix.lower() == ".json":
            atomic_write_text(out, json.dumps(rows, indent=2) + "\n")
        else:
            atomic_write_text(out, _csv_text(rows))
        console.print(f"wrote {out}")
    return 0


def _run_names(dirs: list[Path]) -> list[str]:
    """Short unique labels for the table: the folder names, or their full paths when names collide."""
    names = [d.name or str(d) for d in dirs]
    if len(set(names)) == len(names):
        return names
    return [str(d) for d in dirs]
