"""DL3DV loader (layout, nerfstudio → OpenCV cameras, sampling, skips) and the DL3DV caption loader."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vist3a.data import collate
from vist3a.data.captions import DL3DVCaptionDataset, choose_frames, read_dl3dv_captions
from vist3a.data.dl3dv import DL3DVDataset, read_nerfstudio_transforms
from vist3a.errors import FormatError

FULL_W, FULL_H = 96, 64  # transforms.json describes the full-resolution images
IMG_W, IMG_H = 24, 16  # images_4 is 4x smaller


def gl_pose(i: int) -> list[list[float]]:
    """An OpenGL camera-to-world: yaw by 10°·i, translated along x."""
    a = math.radians(10 * i)
    return [
        [math.cos(a), 0.0, math.sin(a), 0.1 * i],
        [0.0, 1.0, 0.0, 0.5],
        [-math.sin(a), 0.0, math.cos(a), 2.0],
        [0.0, 0.0, 0.0, 1.0],
    ]


def make_scene(root: Path, batch: str, scene: str, n: int, first: int = 1, transforms: bool = True) -> Path:
    d = root / batch / scene
    (d / "images_4").mkdir(parents=True)
    frames = []
    for k in range(first, first + n):
        arr = np.full((IMG_H, IMG_W, 3), k % 256, dtype=np.uint8)
        Image.fromarray(arr).save(d / "images_4" / f"frame_{k:05d}.png")
        frames.append({"file_path": f"images/frame_{k:05d}.png", "transform_matrix": gl_pose(k), "colmap_im_id": k})
    if transforms:
        meta = {"w": FULL_W, "h": FULL_H, "fl_x": 80.0, "fl_y": 80.0, "cx": 48.0, "cy": 32.0,
                "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0, "camera_model": "OPENCV", "frames": frames}  # fmt: skip
        (d / "transforms.json").write_text(json.dumps(meta))
    return d


@pytest.fixture
def dl3dv_root(tmp_path: Path) -> Path:
    root = tmp_path / "DL3DV"
    make_scene(root, "1K", "aaa", 12)
    make_scene(root, "2K", "bbb", 12, transforms=False)
    make_scene(root, "1K", "short", 3)
    broken = make_scene(root, "1K", "broken", 12)
    for f in (broken / "images_4").iterdir():
        f.write_bytes(b"\x89PNG garbage")
    return root


def test_nerfstudio_pose_converts_to_opencv_and_projects_like_opengl(tmp_path):
    d = make_scene(tmp_path, "1K", "s", 3)
    cams = read_nerfstudio_transforms(d / "transforms.json")
    cam = cams["frame_00002.png"]
    gl = torch.tensor(gl_pose(2))
    X = torch.tensor([0.3, 0.2, -3.0, 1.0])  # in front: the GL camera looks along -z
    # OpenGL projection: camera looks down -z, y up → v = cy - fy * y/(-z)
    p = torch.linalg.inv(gl) @ X
    u_gl = 48.0 + 80.0 * p[0] / -p[2]
    v_gl = 32.0 - 80.0 * p[1] / -p[2]
    q = torch.linalg.inv(cam.c2w) @ X  # OpenCV: z forward, y down
    assert q[2] > 0
    uv = cam.K @ q[:3]
    assert (uv[0] / uv[2]).item() == pytest.approx(u_gl.item(), abs=1e-4)
    assert (uv[1] / uv[2]).item() == pytest.approx(v_gl.item(), abs=1e-4)
    # The camera centre is unchanged by the axis flip
    assert torch.allclose(cam.c2w[:3, 3], gl[:3, 3])


def test_dl3dv_sample_layout_cameras_and_skips(dl3dv_root):
    ds = DL3DVDataset(dl3dv_root, num_views=4, window=(4, 8), size=8, feedforward_size=4, seed=0)
    assert sorted(s for s, _, _ in ds.items) == ["aaa", "bbb", "broken"]
    assert ds.skipped.counts["too short"] == 1
    s = ds[0]  # "aaa" (sorted by batch then name)
    assert s["scene"] == "aaa"
    assert s["images"].shape == (4, 3, 8, 8) and s["feedforward_images"].shape == (4, 3, 4, 4)
    ids = s["frame_ids"].tolist()
    assert ids == sorted(set(ids)) and ids[-1] - ids[0] < 8
    # image content is the frame number → frames are the ones named
    assert (s["images"][:, 0, 4, 4] * 255).round().tolist() == ids
    cams = s["cameras"]
    assert (cams.width, cams.height) == (8, 8)
    # K: full-res 96x64 → images_4 24x16 (÷4) → cover 8x8 (×0.5 → 12x8) → crop x0 = 2
    assert torch.allclose(cams.K[0], torch.tensor([[10.0, 0.0, 4.0], [0.0, 10.0, 4.0], [0.0, 0.0, 1.0]]))
    gl = torch.tensor(gl_pose(ids[1]))
    assert torch.allclose(cams.c2w[1], gl @ torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0])))
    assert s["feedforward_cameras"].K[0, 0, 0].item() == pytest.approx(5.0)
    # a scene without transforms.json has no cameras; require_cameras skips it
    assert next(x for x in ds if x["scene"] == "bbb")["cameras"] is None
    ds2 = DL3DVDataset(dl3dv_root, num_views=4, window=(4, 8), size=8, require_cameras=True)
    assert "bbb" not in [n for n, _, _ in ds2.items] and ds2.skipped.counts["no cameras"] == 1


def test_dl3dv_unreadable_scene_is_replaced_and_counted(dl3dv_root):
    ds = DL3DVDataset(dl3dv_root, num_views=4, window=(4, 8), size=8, seed=0)
    i_broken = [n for n, _, _ in ds.items].index("broken")
    s = ds[i_broken]
    assert s["scene"] != "broken"
    assert ds.skipped.counts["unreadable"] == 1 and "broken" in str(ds.skipped)
    assert sorted(x["scene"] for x in ds) == ["aaa", "bbb"]  # iteration skips, never loops
    strict = DL3DVDataset(dl3dv_root, num_views=4, window=(4, 8), size=8, on_error="raise")
    with pytest.raises(FormatError):
        strict[i_broken]


def test_dl3dv_seed_is_deterministic_and_dataloader_batches(dl3dv_root):
    a = DL3DVDataset(dl3dv_root, num_views=4, window=(4, 8), size=8, seed=3, scenes=["aaa", "bbb", "nope"])
    b = DL3DVDataset(dl3dv_root, num_views=4, window=(4, 8), size=8, seed=3, scenes=["aaa", "bbb"])
    assert a.skipped.counts["missing"] == 1
    assert torch.equal(a[0]["frame_ids"], b[0]["frame_ids"])
    loader = torch.utils.data.DataLoader(a, batch_size=2, collate_fn=collate)
    batch = next(iter(loader))
    assert batch["images"].shape == (2, 4, 3, 8, 8) and batch["scene"] == ["aaa", "bbb"]


def test_dl3dv_official_protocol_never_uses_the_last_frame(dl3dv_root):
    ds = DL3DVDataset(dl3dv_root, num_views=4, window=(11, 11), size=8, protocol="official", scenes=["aaa"])
    last = max(max(ds[0]["frame_ids"].tolist()) for _ in range(10))
    assert last == 11  # frames 1..12: the window of 11 starts at 0 (frame 1) only


# ------------------------------------------------------------------------------------------ captions
def test_caption_json_parsing(tmp_path):
    data = [{"scene_name": "aaa", "caption": {"aaa_3_10": "a red chair", "aaa_x": "bad", "aaa_9_2": "bad range"}}]
    clips, bad = read_dl3dv_captions(data)
    assert [(c.start, c.end, c.text) for c in clips] == [(3, 10, "a red chair")]
    assert sorted(bad) == ["aaa/aaa_9_2", "aaa/aaa_x"]
    with pytest.raises(FormatError):
        read_dl3dv_captions([{"caption": {}}])


def test_choose_frames_first_last_and_padding():
    g = torch.Generator().manual_seed(0)
    pos = choose_frames(20, 5, g)
    assert pos[0] == 0 and pos[-1] == 19 and len(set(pos)) == 5 and pos == sorted(pos)
    assert choose_frames(3, 5, g) == [0, 1, 2, 2, 2]


def test_caption_dataset(dl3dv_root, tmp_path):
    caps = tmp_path / "captions.json"
    caps.write_text(json.dumps([
        {"scene_name": "aaa", "caption": {"clip_3_10": "a chair", "clip_9_30": "a table", "bad": "x"}},
        {"scene_name": "gone", "caption": {"c_1_5": "nothing"}},
    ]))  # fmt: skip
    ds = DL3DVCaptionDataset(dl3dv_root, caps, num_frames=5, size=8, seed=0)
    assert len(ds) == 2
    assert ds.skipped.counts["missing"] == 1 and ds.skipped.counts["bad caption key"] == 1
    s0, s1 = ds[0], ds[1]
    assert s0["text"] == "a chair" and s0["images"].shape == (5, 3, 8, 8)
    assert s0["frame_ids"][0] == 3 and s0["frame_ids"][-1] == 10
    # 9..30 holds frames 9..12 only (4 < 5): padded with the last one
    assert s1["frame_ids"].tolist() == [9, 10, 11, 12, 12]
    assert s1["cameras"] is not None and s1["cameras"].K.shape == (5, 3, 3)
    official = DL3DVCaptionDataset(dl3dv_root, caps, num_frames=5, size=(8, 8), protocol="official", seed=0)
    o = official[0]
    # official squashes 24x16 → 8x8: fx scales by 8/24 (after ÷4), fy by 8/16
    assert o["cameras"].K[0, 0, 0].item() == pytest.approx(80 / 4 * 8 / 24)
    assert o["cameras"].K[0, 1, 1].item() == pytest.approx(80 / 4 * 8 / 16)


def test_broken_transforms_drops_cameras_not_images(dl3dv_root):
    (dl3dv_root / "1K" / "aaa" / "transforms.json").write_text("{broken")
    ds = DL3DVDataset(dl3dv_root, num_views=4, window=(4, 8), size=8, scenes=["aaa"])
    s = ds[0]
    assert s["scene"] == "aaa" and s["cameras"] is None
    strict = DL3DVDataset(dl3dv_root, num_views=4, window=(4, 8), size=8, scenes=["aaa"], require_cameras=True)
    assert list(strict) == [] and strict.skipped.counts["unreadable"] == 1
