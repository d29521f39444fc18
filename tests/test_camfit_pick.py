"""scripts/device/camfit_pick.py: which recon recipe the device session takes from the camera proxies."""

from __future__ import annotations

import json
from pathlib import Path

from repo_scripts import load_script


def _script():
    return load_script("scripts/device/camfit_pick.py")


def _run(folder: Path, name: str, held: list[float], static: list[float], motion: str | None) -> None:
    res = {"args": {"motion": str(motion)}, "held_static_rot_deg": static,
           "log": [{"step": 0, "held_rot_deg": [99.0] * len(held)}, {"step": 250, "held_rot_deg": held}]}  # fmt: skip
    (folder / f"camfit_{name}.json").write_text(json.dumps(res))


def test_ratio_uses_the_last_measurement(tmp_path):
    m = _script()
    _run(tmp_path, "pan", [6.0, 10.0], [16.0, 16.0], "pan")
    assert m.ratio(tmp_path / "camfit_pan.json") == 0.5
    assert m.ratio(tmp_path / "camfit_missing.json") is None
    (tmp_path / "camfit_bad.json").write_text("{not json")
    assert m.ratio(tmp_path / "camfit_bad.json") is None


def test_broadest_set_below_the_static_camera_wins(tmp_path):
    m = _script()
    _run(tmp_path, "mix", [40.0], [39.0], None)  # at the static camera
    _run(tmp_path, "noorbit", [17.0], [19.0], "arc,dolly,pan,truck,rise")  # 0.89: not clearly below
    _run(tmp_path, "pantruck", [8.0], [12.0], "pan,truck")  # 0.67
    _run(tmp_path, "pan", [5.0], [14.0], "pan")
    assert m.broadest(tmp_path, ["mix", "noorbit", "pantruck", "pan"]) == "pan,truck"
    _run(tmp_path, "mix", [20.0], [39.0], None)
    assert m.broadest(tmp_path, ["mix", "noorbit", "pantruck", "pan"]) == "mix"
    assert m.broadest(tmp_path, ["noorbit"]) == "none"
    # session 8's rule (mix / easy / render), on its run names
    assert m.pick(tmp_path) == "render"
    _run(tmp_path, "easy", [4.0], [6.0], "pan,truck,dolly,rise")
    assert m.pick(tmp_path) == "easy"
    _run(tmp_path, "shipped", [20.0], [39.0], None)
    assert m.pick(tmp_path) == "mix"


def _stage(folder: Path, name: str, evals: list[tuple[float, float]]) -> None:
    (folder / name).mkdir()
    res = {"evals": [{"step": 500 * (i + 1), "rot_deg": r, "rot_deg_static": s} for i, (r, s) in enumerate(evals)]}
    (folder / name / "metrics.json").write_text(json.dumps(res))


def test_best_stage_takes_the_lowest_last_ratio_below_the_threshold(tmp_path):
    m = _script()
    _stage(tmp_path, "c1a", [(20.0, 40.0), (36.0, 40.0)])  # moved once, back at the static camera at the end
    _stage(tmp_path, "c1b", [(30.0, 30.0), (24.0, 30.0)])  # 0.80
    _stage(tmp_path, "c1c", [(35.0, 35.0)])
    assert m.stage_ratio(tmp_path / "c1a" / "metrics.json") == 0.9
    assert m.best_stage(tmp_path, ["c1a", "c1b", "c1c", "c1d"]) == "c1b"
    _stage(tmp_path, "c1d", [(10.0, 40.0)])
    assert m.best_stage(tmp_path, ["c1a", "c1b", "c1c", "c1d"]) == "c1d"
    assert m.best_stage(tmp_path, ["c1a", "c1c"]) == "none"
    assert m.best_stage(tmp_path, ["missing"]) == "none"
