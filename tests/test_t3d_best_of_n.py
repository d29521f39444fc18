"""benchmarks/t3d_best_of_n.py: best-of-N by consistency, estimated from eval runs at several seeds."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from repo_scripts import load_script


def _script():
    return load_script("benchmarks/t3d_best_of_n.py")


def _csv(path: Path, rows: list[tuple[str, float, float]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["scene", "prompt", "judge_entity", "judge_attribute", "judge_relation", "judge_overall",
                    "consistency_psnr"])  # fmt: skip
        for i, (prompt, overall, cons) in enumerate(rows):
            w.writerow([f"{path.stem}-{i}", prompt, 0, 0, "", overall, cons])
    return path


ONE, TWO = "a red cube on a floor", "a red cube to the left of a blue cone"


def _runs(tmp_path):
    # (judge, dB) per seed: ONE (100, 20) (0, 25) (50, 22); TWO (0, 20) (60, 24) (30, 21)
    return [
        _csv(tmp_path / "s0.csv", [(ONE, 100, 20.0), (TWO, 0, 20.0)]),
        _csv(tmp_path / "s1.csv", [(ONE, 0, 25.0), (TWO, 60, 24.0)]),
        _csv(tmp_path / "s2.csv", [(ONE, 50, 22.0), (TWO, 30, 21.0)]),
    ]


def test_best_of_two_averages_every_pair_of_seeds(tmp_path):
    m = _script()
    runs = [m.by_prompt(p) for p in _runs(tmp_path)]
    r = m.best_of_n(runs, 2, sorted([ONE, TWO]))
    assert r["subsets"] == 3
    # ONE: pairs pick seed 1, 2, 1 -> judge 0, 50, 0; random 50, 75, 25; oracle 100, 100, 50
    # TWO: pairs pick seed 1, 2, 1 -> 60, 30, 60; random 30, 15, 45; oracle 60, 30, 60
    assert r["all"]["selected"] == pytest.approx((50 / 3 + 50) / 2)
    assert r["all"]["random"] == pytest.approx((50 + 30) / 2)
    assert r["all"]["gain"] == pytest.approx((50 / 3 - 50 + 20) / 2)
    assert r["all"]["oracle_gain"] == pytest.approx((250 / 3 - 50 + 50 - 30) / 2)
    assert r["one"]["gain"] == pytest.approx(50 / 3 - 50) and r["several"]["gain"] == pytest.approx(20)
    # dB: ONE picks 25, 22, 25 against means 22.5, 21, 23.5
    assert r["one"]["gain_db"] == pytest.approx((25 + 22 + 25) / 3 - (22.5 + 21 + 23.5) / 3)


def test_best_of_one_gains_nothing_and_best_of_all_is_one_subset(tmp_path):
    m = _script()
    runs = [m.by_prompt(p) for p in _runs(tmp_path)]
    one = m.best_of_n(runs, 1, sorted([ONE, TWO]))
    assert one["all"]["gain"] == 0 and one["all"]["gain_db"] == 0
    three = m.best_of_n(runs, 3, sorted([ONE, TWO]))
    assert three["subsets"] == 1
    assert three["one"]["selected"] == 0 and three["several"]["selected"] == 60


def test_runs_must_share_captions_and_have_consistency(tmp_path, capsys):
    m = _script()
    a, b, _ = _runs(tmp_path)
    other = _csv(tmp_path / "other.csv", [(ONE, 10, 20.0), ("a blue cone on a floor", 0, 20.0)])
    with pytest.raises(SystemExit, match="not the same captions"):
        m.main(["--run", str(a), "--run", str(other)])
    nan = _csv(tmp_path / "nan.csv", [(ONE, 10, float("nan")), (TWO, 0, 20.0)])
    with pytest.raises(SystemExit, match="no consistency"):
        m.main(["--run", str(a), "--run", str(nan)])
    assert m.main(["--run", str(a), "--run", str(b), "--json", str(tmp_path / "r.json")]) == 0
    assert "2 captions, 2 seeds" in capsys.readouterr().out
    assert (tmp_path / "r.json").is_file()
