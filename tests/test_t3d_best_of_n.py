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


def test_score_world_ranks_by_the_caption_scores_beside_each_run(tmp_path, capsys):
    """--score world: the candidate with the highest world reward (caption_scores.csv) is kept, consistency
    breaking ties; a run without the file is refused with the command that writes it."""
    m = _script()
    # world per seed: ONE 0.1, 0.2, 0.9 (consistency would keep seed 1); TWO 0.3 everywhere (a tie: consistency)
    paths = []
    for k, (p, world) in enumerate(zip(_runs(tmp_path), ((0.1, 0.3), (0.2, 0.3), (0.9, 0.3)), strict=True)):
        d = tmp_path / f"run{k}"
        d.mkdir()
        paths.append(p.rename(d / "per_scene.csv"))
        with (d / "caption_scores.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["scene", "prompt", "world", "relation"])
            w.writerow([f"s{k}-0", ONE, world[0], 0.0])
            w.writerow([f"s{k}-1", TWO, world[1], 1.0])
    runs = [m.by_prompt(p, "world") for p in paths]
    r = m.best_of_n(runs, 2, sorted([ONE, TWO]))
    # ONE, pairs (0,1) (0,2) (1,2) keep seeds 1, 2, 2 -> judge 0, 50, 50; TWO as by consistency (gain 20)
    assert r["one"]["selected"] == pytest.approx(100 / 3) and r["several"]["gain"] == pytest.approx(20)
    three = m.best_of_n(runs, 3, sorted([ONE, TWO]))
    assert three["one"]["selected"] == 50  # seed 2 (world 0.9), not consistency's seed 1 (judge 0)
    assert three["several"]["selected"] == 60  # a tie in world: seed 1 by consistency (24 dB)
    both = [m.by_prompt(p, "world+relation") for p in paths]
    assert both[0][TWO][2] == pytest.approx(1.3)
    (paths[2].parent / "caption_scores.csv").unlink()
    with pytest.raises(SystemExit, match="t3d_caption_scores.py"):
        m.main(["--run", str(paths[0]), "--run", str(paths[2]), "--score", "world"])
