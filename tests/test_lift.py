"""``vist3a lift``: frame-count policy, input preparation, and an end-to-end run on tiny random models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vist3a.errors import InputError
from vist3a.pipelines.lift import frame_count_for, prepare_frames

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: see conftest.one_thread


def test_frame_count_policy():
    assert frame_count_for(7, None) == 5
    assert frame_count_for(13, None) == 13
    assert frame_count_for(1, None) == 1
    assert frame_count_for(30, 9) == 9
    with pytest.raises(InputError, match="try 5 or 9"):
        frame_count_for(30, 6)
    with pytest.raises(InputError, match="only 7 frames"):
        frame_count_for(7, 9)


def _write_frames(folder, n=7, h=48, w=80):
    from PIL import Image

    folder.mkdir()
    for i in range(n):
        a = np.zeros((h, w, 3), np.uint8)
        a[:, : (i + 1) * 8] = 200  # a bar growing to the right, frame by frame
        Image.fromarray(a).save(folder / f"f{i:02d}.png")
    return folder


def _tiny_decoder_dir(folder, seed):
    """A random tiny stitched decoder (LoRA r2) saved as a `vist3a stitch train` output folder."""
    from vist3a.models.anysplat import anysplat_mini
    from vist3a.stitching.export import save_trained
    from vist3a.stitching.stitched import StitchedDecoder

    overrides = dict(
        embed_dim=48, dino_depth=3, dino_num_heads=2, depth=2, num_heads=2, intermediate_layer_idx=(0, 0, 1, 1),
        camera_trunk_depth=1, camera_num_heads=2, dpt_features=16, dpt_out_channels=(8, 16, 32, 32), sh_degree=1,
    )  # fmt: skip
    torch.manual_seed(seed)
    dec = StitchedDecoder(anysplat_mini(**overrides), "conv3d_k5x3x3_o48_s1x2x2_p2x1x1", "enc_blocks_1",
                          (16, 2, 8, 8), image_size=56).add_lora("r2,a4")  # fmt: skip
    return save_trained(dec, folder, {"recon": "anysplat-mini", "recon_overrides": overrides})


def test_prepare_frames_reports_what_it_did(tmp_path):
    src = _write_frames(tmp_path / "frames")
    inp = prepare_frames(src, vae_size=32, recon_size=28, max_frames=13)
    assert inp.indices == [round(i * 6 / 4) for i in range(5)]  # evenly spaced, both ends kept
    assert inp.video.shape == (1, 3, 5, 32, 32) and inp.video.min() >= -1 and inp.video.max() <= 1
    assert inp.images.shape == (1, 5, 3, 28, 28)
    text = " ".join(inp.notes)
    assert "7 frames; using 5" in text and "80x48" in text and "centre-cropped" in text
    first = prepare_frames(src, 32, 28, frames=1, sampling="first")
    assert first.indices == [0]


def test_lift_end_to_end_writes_valid_files(tmp_path, capsys):
    from plyfile import PlyData

    from vist3a.cli import main
    from vist3a.gaussians.cameras import Cameras

    model_dir = _tiny_decoder_dir(tmp_path / "model", seed=0)
    src = _write_frames(tmp_path / "frames")
    out = tmp_path / "out"
    code = main(["lift", str(src), "--model", str(model_dir), "--video-model", "wan-mini", "--out", str(out),
                 "--device", "cpu"])  # fmt: skip  (the CPU video defaults of `generate`: 2 frames per view)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "the source has 7 frames; using 5" in captured.out
    ply = PlyData.read(str(out / "scene.ply"))
    assert ply["vertex"].count > 0
    cams = Cameras.from_json_frames(json.loads((out / "cameras.json").read_text()))
    assert len(cams) == 5 and cams.width == 56
    import imageio.v3 as iio

    video = iio.imread(out / "video.mp4")
    assert video.shape[0] == (5 - 1) * 2 + 1
    info = json.loads((out / "lift.json").read_text())
    assert info["frames"] == 5 and info["vae_size"] == 64 and info["recon_size"] == 56
    # a frame count the VAE cannot take: one clear error
    assert main(["lift", str(src), "--model", str(model_dir), "--video-model", "wan-mini", "--out", str(out),
                 "--frames", "6", "--device", "cpu"]) == 1  # fmt: skip
    assert "1+4k" in capsys.readouterr().err
    assert main(["lift", str(src), "--model", str(model_dir), "--out", str(out), "--preview-splats", "-1"]) == 1
    assert "--preview-splats must be >= 0" in capsys.readouterr().err


def test_lift_camera_guard_flag(tmp_path, capsys):
    """--camera-guard DEG below the random decoder's turns: every camera in cameras.json is the first one and
    lift.json says so; --camera-guard 0 keeps the predicted (differing) cameras; a negative limit is one error.
    The default is the mini generator's guard for the shipped stitched-mini only."""
    from vist3a.cli import main
    from vist3a.commands.lift import guard_default
    from vist3a.gaussians.cameras import Cameras
    from vist3a.pipelines.loading import MINI_CAMERA_GUARD_DEG

    model_dir = _tiny_decoder_dir(tmp_path / "model", seed=1)
    src = _write_frames(tmp_path / "frames")
    runs = {}
    for deg in ("1e-9", "0"):
        out = tmp_path / f"out{deg}"
        assert main(["lift", str(src), "--model", str(model_dir), "--out", str(out), "--device", "cpu",
                     "--frames-per-view", "0", "--camera-guard", deg]) == 0  # fmt: skip
        cams = Cameras.from_json_frames(json.loads((out / "cameras.json").read_text()))
        runs[deg] = (cams.c2w, json.loads((out / "lift.json").read_text()))
    on, off = runs["1e-9"], runs["0"]
    assert on[1]["camera_guarded"] and on[1]["camera_guard_deg"] == 1e-9
    assert torch.allclose(on[0], on[0][:1].expand_as(on[0]), atol=1e-5)
    assert not off[1]["camera_guarded"] and off[1]["camera_guard_deg"] is None
    assert (off[0] - off[0][:1]).abs().max() > 1e-3  # the random head's cameras differ, so the guard did act
    assert main(["lift", str(src), "--model", str(model_dir), "--out", str(tmp_path / "x"), "--camera-guard", "-1"]) == 1
    err = capsys.readouterr().err.strip()
    assert "--camera-guard must be >= 0" in err and len(err.splitlines()) == 1
    assert guard_default("stitched-mini") == MINI_CAMERA_GUARD_DEG and guard_default(str(model_dir)) is None
