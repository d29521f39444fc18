"""Pick PHASE=2's recon recipe from PHASE=1's camera proxies (scripts/device/mini_s8_call.sh).

Reads ``RUN/camfit_*.json`` (benchmarks/camera_overfit.py) and prints one word:
``mix`` when a proxy on the world's mix (``shipped``, ``v13``, ``base``) ends with its held-out rotation error
clearly below the static camera's (ratio < THRESHOLD), ``easy`` when only the restricted-motion proxies
(``easy``, ``arc``) do, else ``render``. The ratios go to stderr.
With ``--broadest NAME ...`` (broadest motion set first) it prints instead the ``--motion`` of the first of those
runs below the threshold (``mix`` for a run on the world's mix), or ``none``.

    python scripts/device/camfit_pick.py runs/mini
    python scripts/device/camfit_pick.py runs/mini --broadest mix noorbit pantruck pan

With ``--best-stage NAME ...`` it reads recon stage runs instead (``RUN/NAME/metrics.json``, whose evaluations
are all on the world's mix) and prints the name whose last evaluation has the lowest ``rot_deg`` /
``rot_deg_static``, if that ratio is below the threshold, else ``none`` (mini_s9_call.sh's PHASE=3).

    python scripts/device/camfit_pick.py runs/mini --best-stage c1a c1b c1c
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

THRESHOLD = 0.85  # below the static camera by 15 %: beyond the 16-clip noise seen in session 7's runs


def _ratio_and_args(path: Path) -> tuple[float | None, dict]:
    """(last held-out mean rotation error / the static camera's, the run's arguments); (None, {}) if unreadable."""
    try:
        res = json.loads(path.read_text())
        held, static = res["log"][-1]["held_rot_deg"], res["held_static_rot_deg"]
        return statistics.fmean(held) / max(statistics.fmean(static), 1e-6), res.get("args", {})
    except (OSError, ValueError, KeyError, IndexError, statistics.StatisticsError):
        return None, {}


def ratio(path: Path) -> float | None:
    """Last held-out mean rotation error / the static camera's (None: unreadable or nothing measured)."""
    return _ratio_and_args(path)[0]


def pick(run: Path) -> str:
    ratios = {n: ratio(run / f"camfit_{n}.json") for n in ("shipped", "v13", "base", "easy", "arc", "pan2")}
    print("held-out rot err / static: " + ", ".join(f"{n} {r:.2f}" if r is not None else f"{n} -"
                                                   for n, r in ratios.items()), file=sys.stderr)  # fmt: skip
    def below(names: tuple[str, ...]) -> bool:
        return any(ratios[n] is not None and ratios[n] < THRESHOLD for n in names)

    if below(("shipped", "v13", "base")):
        return "mix"
    if below(("easy", "arc")):
        return "easy"
    return "render"


def broadest(run: Path, names: list[str]) -> str:
    for n in names:
        r, args = _ratio_and_args(run / f"camfit_{n}.json")
        print(f"{n}: held-out rot err / static {r:.2f}" if r is not None else f"{n}: -", file=sys.stderr)
        if r is not None and r < THRESHOLD:
            motion = args.get("motion", "None")
            return "mix" if motion in ("None", "", None) else motion
    return "none"


def stage_ratio(path: Path) -> float | None:
    """A recon stage run's last held-out ``rot_deg / rot_deg_static`` (None: unreadable or not evaluated)."""
    try:
        e = json.loads(path.read_text())["evals"][-1]
        return float(e["rot_deg"]) / max(float(e["rot_deg_static"]), 1e-6)
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def best_stage(run: Path, names: list[str]) -> str:
    ratios = {n: stage_ratio(run / n / "metrics.json") for n in names}
    print("rot err / static: " + ", ".join(f"{n} {r:.2f}" if r is not None else f"{n} -"
                                           for n, r in ratios.items()), file=sys.stderr)  # fmt: skip
    done = {n: r for n, r in ratios.items() if r is not None}
    if not done:
        return "none"
    name = min(done, key=done.__getitem__)
    return name if done[name] < THRESHOLD else "none"


if __name__ == "__main__":
    args = sys.argv[1:]
    run = Path(args[0] if args and not args[0].startswith("--") else "runs/mini")
    if "--best-stage" in args:
        print(best_stage(run, args[args.index("--best-stage") + 1 :]))
    elif "--broadest" in args:
        print(broadest(run, args[args.index("--broadest") + 1 :]))
    else:
        print(pick(run))
