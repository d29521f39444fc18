"""ScanNet loader on a hand-made SensReader layout, and the official train name list."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vist3a.data.scannet import ScanNetDataset, read_matrix, read_name_list
from vist3a.errors import FormatError

W, H = 26, 20  # stands in for 1296x968


def pose(i: int) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = [0.1 * i, 0.0, 1.0]
    return m


def make_scene(base: Path, name: str, n: int, bad_pose: set[int] = frozenset()) -> Path:
    d = base / name / "frames"
    for sub in ("color", "pose", "intrinsic", "depth"):
        (d / sub).mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((H, W, 3), i * 10, dtype=np.uint8)).save(d / "color" / f"{i}.jpg", quality=100)
        p = np.full((4, 4), -np.inf) if i in bad_pose else pose(i)
        np.savetxt(d / "pose" / f"{i}.txt", p)
    K = np.array([[20.0, 0, 13.0, 0], [0, 20.0, 10.0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    np.savetxt(d / "intrinsic" / "intrinsic_color.txt", K)
    return base / name


@pytest.fixture
def scannet_root(tmp_path: Path) -> Path:
    root = tmp_path / "scannet"
    base = root / "scans"
    make_scene(base, "scene0000_00", 12, bad_pose={5})
    make_scene(base, "scene0001_00", 12)
    make_scene(base, "scene0002_00", 3)  # too short
    make_scene(base, "scene0999_00", 12)  # not in the list
    return root


def test_scannet_sampling_cameras_and_filters(scannet_root, tmp_path):
    names = tmp_path / "names.json"
    names.write_text(json.dumps(["scene0000_00", "scene0001_00", "scene0002_00", "scene0003_00", "00000-kfPV7w3FaU5"]))
    ds = ScanNetDataset(scannet_root, name_list=names, num_views=4, window=(4, 11), size=10, seed=0)
    assert [n for n, _, _ in ds.items] == ["scene0000_00", "scene0001_00"]
    assert ds.filtered_out == 1
    # scene0003_00 is listed but absent; the HM3D-style id is not a ScanNet scene and is not counted
    assert ds.skipped.counts == {"missing": 1, "too short": 1}
    for _ in range(15):  # the frame with a -inf pose is never sampled in the default protocol
        s = ds[0]
        ids = s["frame_ids"].tolist()
        assert 5 not in ids and ids == sorted(set(ids))
        assert (s["images"][:, 0, 5, 5] * 255 / 10).round().tolist() == ids  # content = frame number
        cams = s["cameras"]
        assert torch.allclose(cams.c2w, torch.stack([torch.from_numpy(pose(i)).float() for i in ids]))
    # K: 26x20 → cover 10x10 (scale 0.5 → 13x10) → crop x0 = 1
    assert torch.allclose(cams.K[0], torch.tensor([[10.0, 0.0, 5.5], [0.0, 10.0, 5.0], [0.0, 0.0, 1.0]]))


def test_scannet_official_keeps_all_frames_and_drops_invalid_cameras(scannet_root):
    ds = ScanNetDataset(scannet_root, num_views=10, window=(11, 11), size=10, protocol="official", seed=1)
    assert [n for n, _, _ in ds.items] == ["scene0000_00", "scene0001_00", "scene0999_00"]
    s = ds[0]  # 12 frames, window 11 from start 0: frames 0..10, 10 of them, 0 included
    ids = s["frame_ids"].tolist()
    assert ids[0] == 0 and max(ids) <= 10
    assert (s["cameras"] is None) == (5 in ids)


def test_scannet_scene_folders_directly_under_root(tmp_path):
    make_scene(tmp_path / "flat", "scene0000_00", 6)
    ds = ScanNetDataset(tmp_path / "flat", num_views=3, window=(3, 6), size=8)
    assert len(ds) == 1 and ds[0]["images"].shape == (3, 3, 8, 8)


def test_read_matrix_errors(tmp_path):
    (tmp_path / "bad.txt").write_text("1 2 3\n4 5 6\n")
    with pytest.raises(FormatError, match="4x4"):
        read_matrix(tmp_path / "bad.txt")


def test_official_train_name_list(shared_dir):
    names = read_name_list(shared_dir / "reference" / "vist3a-data" / "train_name_list.json")
    assert len(names) == 2095  # METHOD §4.2
    assert sum(bool(re.fullmatch(r"scene\d{4}_\d{2}", n)) for n in names) == 1221
