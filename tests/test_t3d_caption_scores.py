"""benchmarks/t3d_caption_scores.py: the world rewards of finished eval scenes, or the selector's recorded ones."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from repo_scripts import load_script
from vist3a.gaussians.cameras import Cameras
from vist3a.gaussians.formats import save_scene
from vist3a.gaussians.gaussians import Gaussians
from vist3a.world.palette import COLOUR_BY_NAME


def _scene(folder: Path, prompt: str, colour: str, caption_colour: str, seed: int = 0) -> Path:
    """A scene folder: a large blob of ``colour`` filling the middle of 4 cameras, captioned a ``caption_colour`` cube."""
    folder.mkdir(parents=True)
    n = 400
    gen = torch.Generator().manual_seed(0)
    means = torch.rand(n, 3, generator=gen) - 0.5
    g = Gaussians.from_colors(means, torch.tensor([COLOUR_BY_NAME[colour].rgb]).expand(n, 3),
                              torch.full((n, 3), 0.12), torch.full((n,), 0.99))  # fmt: skip
    save_scene(g, folder / "scene.ply")
    Cameras.orbit(4, radius=2.5, arc_deg=30, width=32, height=32).save_json(folder / "cameras.json")
    (folder / "world_caption.json").write_text(json.dumps(
        {"objects": [{"shape": "cube", "colour": caption_colour, "size": "large"}], "relations": []}))  # fmt: skip
    (folder / "prompt.txt").write_text(prompt + "\n")
    (folder / "settings.json").write_text(json.dumps({"prompt": prompt, "seed": seed}))
    return folder


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_world_score_is_high_for_the_caption_colour_and_low_for_another(tmp_path):
    m = load_script("benchmarks/t3d_caption_scores.py")
    _scene(tmp_path / "run" / "scenes" / "a", "a large red cube", "red", "red")
    _scene(tmp_path / "run" / "scenes" / "b", "a large blue cube", "red", "blue")
    assert m.main([str(tmp_path / "run")]) == 0
    rows = {r["scene"]: r for r in _read(tmp_path / "run" / "caption_scores.csv")}
    assert float(rows["a"]["world"]) > 0.5  # red shown, red asked: presence near 1, no other colour
    assert float(rows["b"]["world"]) < -0.05  # blue asked, red shown: an unasked colour present
    assert float(rows["a"]["relation"]) == 0.0  # no relation in the caption
    with pytest.raises(SystemExit, match="no scenes"):
        m.main([str(tmp_path / "empty")])


def test_recorded_scores_of_a_best_of_n_run_go_to_its_candidate_seeds(tmp_path):
    m = load_script("benchmarks/t3d_caption_scores.py")
    p = "a large red cube"
    bon = tmp_path / "bon" / "scenes" / "x"
    bon.mkdir(parents=True)
    (bon / "settings.json").write_text(json.dumps({"prompt": p, "seed": 100008, "select": "world",
                                                   "candidate_seeds": [5, 100008], "candidate_scores": [0.1, 0.7]}))  # fmt: skip
    _scene(tmp_path / "s5" / "scenes" / "x", p, "red", "red", seed=5)
    _scene(tmp_path / "s100008" / "scenes" / "x", p, "red", "red", seed=100008)
    assert m.main([str(tmp_path / "s5"), str(tmp_path / "s100008"), "--from-best-of-n", str(tmp_path / "bon")]) == 0
    assert _read(tmp_path / "s5" / "caption_scores.csv") == [{"scene": "x", "prompt": p, "world": "0.100000"}]
    assert _read(tmp_path / "s100008" / "caption_scores.csv")[0]["world"] == "0.700000"
    _scene(tmp_path / "s9" / "scenes" / "x", p, "red", "red", seed=9)
    with pytest.raises(SystemExit, match="seed 9 is not a candidate"):
        m.main([str(tmp_path / "s9"), "--from-best-of-n", str(tmp_path / "bon")])
