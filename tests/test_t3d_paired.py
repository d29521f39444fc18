"""benchmarks/t3d_paired.py: the paired comparison of two candidates' held-out text-to-3D scores."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from repo_scripts import load_script


def _script():
    return load_script("benchmarks/t3d_paired.py")


def _csv(path: Path, rows: list[tuple[str, str, float, float]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "scene",
                "prompt",
                "judge_entity",
                "judge_attribute",
                "judge_relation",
                "judge_overall",
                "consistency_psnr",
            ]
        )
        for scene, prompt, overall, cons in rows:
            w.writerow([scene, prompt, 0, 0, "", overall, cons])
    return path


def test_objects_are_counted_by_shape_words():
    m = _script()
    assert m.objects_in("a large blue sphere on a white floor") == 1
    assert (
        m.objects_in("a small red cube, a medium orange cylinder and a medium purple sphere on a gray floor")
        == 3
    )
    assert m.objects_in("two cones to the left of a cube") == 2


def test_paired_differences_split_by_object_count(tmp_path):
    m = _script()
    one, two = "a red cube on a floor", "a red cube to the left of a blue cone"
    base = _csv(tmp_path / "b.csv", [("s0", one, 50, 20.0), ("s1", two, 25, 21.0), ("s2", two, 0, 22.0)])
    cand = _csv(tmp_path / "c.csv", [("s0", one, 100, 21.0), ("s1", two, 25, 22.0), ("s2", two, 30, 23.5)])
    res = m.compare([(base, cand)])
    assert res["all"]["overall"] | {"se": 0} == {
        "n": 3,
        "wins": 2,
        "losses": 0,
        "ties": 1,
        "mean": 80 / 3,
        "se": 0,
    }
    assert res["all"]["overall"]["se"] == pytest.approx(
        math.sqrt(((50 - 80 / 3) ** 2 + (80 / 3) ** 2 + (30 - 80 / 3) ** 2) / 2 / 3)
    )
    assert res["one"]["overall"]["n"] == 1 and math.isnan(res["one"]["overall"]["se"])
    assert res["several"]["overall"]["mean"] == 15 and res["several"]["consistency"]["mean"] == pytest.approx(
        1.25
    )
    # a second seed pools; different caption sets are refused
    assert m.compare([(base, cand), (cand, base)])["all"]["overall"]["mean"] == 0
    other = _csv(tmp_path / "o.csv", [("s9", one, 0, 20.0)])
    with pytest.raises(SystemExit, match="different scenes"):
        m.compare([(base, other)])
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(SystemExit, match="not a per_scene.csv"):
        m.compare([(tmp_path / "bad.csv", cand)])
