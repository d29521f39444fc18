"""`vist3a world make`: the DL3DV, ScanNet and RE10K layouts, read back in their own conventions."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vist3a.cli import main
from vist3a.world.layouts import CV_TO_GL, DL3DV_DOWNSCALE
from vist3a.world.make import MakeConfig, make_dataset
from vist3a.world.sample import make_sample

SIZE, FRAMES = 40, 12


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("world")
    out = {}
    for layout in ("dl3dv", "scannet", "re10k"):
        make_dataset(MakeConfig(layout, str(root / layout), scenes=2, frames=FRAMES, size=SIZE, seed=4), workers=1, progress=False)
        out[layout] = root / layout
    return out


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_dl3dv_layout_and_nerfstudio_cameras(sets):
    root = sets["dl3dv"]
    scenes = sorted(p for p in root.glob("*/*/") if p.is_dir())  # the loader's glob(root/*/*/)
    assert [p.name for p in scenes] == ["world_000000", "world_000001"] and scenes[0].parent.name == "1K"
    frames = sorted((scenes[0] / "images_4").glob("frame_*.png"))
    assert [p.name for p in frames][:2] == ["frame_00000.png", "frame_00001.png"] and len(frames) == FRAMES
    assert Image.open(frames[0]).size == (SIZE, SIZE)
    meta = json.loads((scenes[0] / "transforms.json").read_text())
    sample = make_sample(0, seed=4, frames=FRAMES, size=SIZE)
    assert meta["w"] == SIZE * DL3DV_DOWNSCALE and meta["camera_model"] == "OPENCV"
    scale = SIZE / meta["w"]  # what a loader does: K for the images it reads
    k = torch.tensor([[meta["fl_x"], 0, meta["cx"]], [0, meta["fl_y"], meta["cy"]], [0, 0, 1]], dtype=torch.float64)
    k[:2] *= scale
    torch.testing.assert_close(k, sample.cameras.K[0].double(), atol=1e-4, rtol=0)
    for i, fr in enumerate(meta["frames"]):
        assert fr["file_path"] == f"images/frame_{i:05d}.png"
        c2w_cv = torch.tensor(fr["transform_matrix"], dtype=torch.float64) @ CV_TO_GL  # OpenGL → OpenCV
        torch.testing.assert_close(c2w_cv, sample.cameras.c2w[i].double(), atol=1e-6, rtol=0)
    # OpenGL: the camera looks down its −z axis, towards the scene.
    c2w_gl = torch.tensor(meta["frames"][0]["transform_matrix"])
    to_target = torch.tensor(sample.scene.centre) - c2w_gl[:3, 3]
    assert float(-c2w_gl[:3, 2] @ to_target) > 0


def test_scannet_layout_poses_intrinsics_depth(sets):
    scene = sets["scannet"] / "scans" / "scene0000_00" / "frames"
    colours = sorted((scene / "color").glob("*.jpg"), key=lambda p: int(p.stem))
    assert [p.name for p in colours[:3]] == ["0.jpg", "1.jpg", "2.jpg"] and len(colours) == FRAMES
    sample = make_sample(0, seed=4, frames=FRAMES, size=SIZE)
    render = sample.render()
    for i in (0, FRAMES - 1):
        pose = torch.tensor(np.loadtxt(scene / "pose" / f"{i}.txt"))
        torch.testing.assert_close(pose, sample.cameras.c2w[i].double(), atol=2e-6, rtol=0)
        depth = np.asarray(Image.open(scene / "depth" / f"{i}.png"))
        assert depth.dtype == np.uint16
        ref = render.depth[i].numpy()
        ok = ref < 65.5
        np.testing.assert_allclose(depth[ok] / 1000.0, ref[ok], atol=6e-4)
        assert (depth[~ok] == 0).all()
    k4 = np.loadtxt(scene / "intrinsic" / "intrinsic_color.txt")
    assert k4.shape == (4, 4)
    np.testing.assert_allclose(k4[:3, :3], sample.cameras.K[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(np.loadtxt(scene / "intrinsic" / "extrinsic_color.txt"), np.eye(4))
    jpg = np.asarray(Image.open(colours[0])).astype(np.float64) / 255
    assert np.abs(jpg - render.rgb[0].permute(1, 2, 0).numpy()).mean() < 0.03


def test_re10k_layout_annotations_and_index_map(sets):
    root = sets["re10k"]
    seqs = (root / "re10k_test.txt").read_text().split()
    assert len(seqs) == 2 and all(len(s) == 16 for s in seqs)
    imap = json.loads((root / "re10k_indexmap.json").read_text())
    sample = make_sample(0, seed=4, frames=FRAMES, size=SIZE)
    for seq in seqs:
        ann = json.loads((root / seq / "annotations.json").read_text())
        assert [a["idx"] for a in ann] == list(range(FRAMES))
        assert (root / ann[0]["filepath"]).is_file()
        idx = imap[seq]
        assert len(idx) == 12 and sorted(idx)[0] == 0 and sorted(idx)[-1] == FRAMES - 1
        gaps = np.diff(sorted(idx))
        assert gaps.max() - gaps.min() <= 1
    ann = json.loads((root / seqs[0] / "annotations.json").read_text())
    w2c = torch.tensor(ann[3]["extrinsics"], dtype=torch.float64)
    torch.testing.assert_close(torch.linalg.inv(w2c), sample.cameras.c2w[3].double(), atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.tensor(ann[3]["intrinsics"]), sample.cameras.K[3], atol=1e-5, rtol=0)


def test_captions_json_in_dl3dv_caption_format(sets):
    for layout, root in sets.items():
        caps = json.loads((root / "captions.json").read_text())
        assert len(caps) == 2
        for entry in caps:
            assert set(entry) >= {"scene_name", "caption", "structured"}
            for key, text in entry["caption"].items():
                style, start, end = key.rsplit("_", 2)
                assert (int(start), int(end)) == (0, FRAMES - 1) and style and isinstance(text, str) and text
            assert entry["structured"]["objects"]
        if layout == "dl3dv":
            assert (root / "1K" / caps[0]["scene_name"]).is_dir()


def test_same_seed_gives_the_same_files(sets, tmp_path):
    make_dataset(MakeConfig("re10k", str(tmp_path / "again"), scenes=2, frames=FRAMES, size=SIZE, seed=4), workers=2, progress=False)
    assert _digest(tmp_path / "again") == _digest(sets["re10k"])


def test_cli_make_and_errors(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["world", "make", "--layout", "scannet", "--scenes", "1", "--frames", "2", "--size", "32", "--out", str(out), "--workers", "1"]) == 0
    assert (out / "scans" / "scene0000_00" / "frames" / "color" / "1.jpg").is_file()
    assert "wrote 1 scannet scenes" in capsys.readouterr().out
    assert main(["world", "make", "--layout", "scannet", "--scenes", "0", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--scenes must be >= 1" in err[0]
    with pytest.raises(SystemExit):
        main(["world", "make", "--layout", "co3d", "--scenes", "1", "--out", str(out)])
    assert main(["world", "make", "--layout", "re10k", "--scenes", "1", "--frames", "4", "--size", "32", "--out", str(tmp_path / "r"), "--workers", "1"]) == 0
    assert not (tmp_path / "r" / "re10k_indexmap.json").exists()  # fewer than 12 frames: no index map
