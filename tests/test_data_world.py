"""The loaders read what ``vist3a world make --layout dl3dv|scannet|re10k`` writes, cameras included.

The world writes each scene's cameras in our convention to ``world.json``; the loaders must recover
them from the dataset-specific files (nerfstudio OpenGL, SensReader poses, RE10K world-to-camera).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

world_make = pytest.importorskip("vist3a.world.make")

from vist3a.data.captions import DL3DVCaptionDataset  # noqa: E402
from vist3a.data.dl3dv import DL3DVDataset  # noqa: E402
from vist3a.data.re10k import RE10KDataset  # noqa: E402
from vist3a.data.scannet import ScanNetDataset  # noqa: E402

FRAMES, SIZE = 12, 32


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("world")
    for layout in ("dl3dv", "scannet", "re10k"):
        cfg = world_make.MakeConfig(layout, str(root / layout), scenes=1, frames=FRAMES, size=SIZE, seed=3, max_objects=2)
        world_make.make_dataset(cfg, workers=1, progress=False)
    return root


def _world_cameras(world_json: Path) -> tuple[torch.Tensor, torch.Tensor]:
    cams = json.loads(world_json.read_text())["cameras"]
    return torch.tensor(cams["c2w"], dtype=torch.float32), torch.tensor(cams["K"], dtype=torch.float32)


def test_dl3dv_layout(world):
    ds = DL3DVDataset(world / "dl3dv", num_views=5, window=(5, FRAMES), size=SIZE, seed=0)
    assert len(ds) == 1 and ds.skipped.total == 0
    s = ds[0]
    c2w, K = _world_cameras(next((world / "dl3dv").glob("*/*/world.json")))
    ids = s["frame_ids"]
    assert s["images"].shape == (5, 3, SIZE, SIZE)
    assert torch.allclose(s["cameras"].c2w, c2w[ids], atol=1e-5)
    assert torch.allclose(s["cameras"].K, K[ids], atol=1e-4)


def test_scannet_layout(world):
    ds = ScanNetDataset(world / "scannet", num_views=5, window=(5, FRAMES), size=SIZE, seed=0)
    assert len(ds) == 1 and ds.skipped.total == 0
    s = ds[0]
    c2w, K = _world_cameras(next((world / "scannet" / "scans").glob("*/world.json")))
    ids = s["frame_ids"]
    assert torch.allclose(s["cameras"].c2w, c2w[ids], atol=1e-5)
    assert torch.allclose(s["cameras"].K, K[ids], atol=1e-4)


def test_re10k_layout(world):
    root = world / "re10k"
    for protocol in ("default", "official"):
        ds = RE10KDataset(root, root / "re10k_indexmap.json", sequences=root / "re10k_test.txt", size=SIZE, protocol=protocol)
        assert len(ds) == 1 and ds.skipped.total == 0
        s = ds[0]
        assert s["images"].shape == (12, 3, SIZE, SIZE) and s["num_context"] == 8
        c2w, K = _world_cameras(next(root.glob("*/world.json")))
        ids = s["frame_ids"]
        assert torch.allclose(s["cameras"].c2w, c2w[ids], atol=1e-4)
        assert torch.allclose(s["cameras"].K, K[ids], atol=1e-4)  # square frames: no swap, no crop


def test_caption_file(world):
    root = world / "dl3dv"
    ds = DL3DVCaptionDataset(root, root / "captions.json", num_frames=5, size=SIZE, seed=0)
    texts = json.loads(next(root.glob("*/*/world.json")).read_text())["captions"]
    assert len(ds) == len(texts) and ds.skipped.total == 0
    s = ds[0]
    assert s["text"] in texts.values()
    assert s["frame_ids"][0] == 0 and s["frame_ids"][-1] == FRAMES - 1
