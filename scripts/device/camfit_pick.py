"""Pick PHASE=2's recon recipe from PHASE=1's camera proxies (scripts/device/mini_s8_call.sh).

Reads ``RUN/camfit_*.json`` (benchmarks/camera_overfit.py) and prints one word:
``mix`` when a proxy on the world's mix (``shipped``, ``v13``, ``base``) ends with its held-out rotation error
clearly below the static camera's (ratio < THRESHOLD), ``easy`` when only the restricted-motion proxies
(``easy``, ``arc``) do, else ``render``. The ratios go to stderr.

    python scripts/device/camfit_pick.py runs/mini
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

THRESHOLD = 0.85  # below the static camera by 15 %: beyond the 16-clip noise seen in session 7's runs


def ratio(path: Path) -> float | None:
    """Last held-out mean rotation error / the static camera's (None: unreadable or nothing measured)."""
    try:
        res = json.loads(path.read_text())
        held, static = res["log"][-1]["held_rot_deg"], res["held_static_rot_deg"]
        return statistics.fmean(held) / max(statistics.fmean(static), 1e-6)
    except (OSError, ValueError, KeyError, IndexError, statistics.StatisticsError):
        return None


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


if __name__ == "__main__":
    print(pick(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/mini")))
