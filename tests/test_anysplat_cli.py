"""``vist3a reconstruct`` end to end on a tiny saved model (CPU, seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from anysplat_tiny import TINY
from vist3a import registry
from vist3a.cli import main
from vist3a.commands.reconstruct import center_crop_resize, load_views


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_center_crop_resize_keeps_aspect_and_centres() -> None:
    # A 40x80 image whose left and right quarters are black, middle white: the centre crop is all white.
    img = np.zeros((40, 80, 3), np.uint8)
    img[:, 20:60] = 255
    out = center_crop_resize(img, 28)
    assert out.shape == (3, 28, 28)
    assert out.min() > 0.95
    # A portrait image: the crop keeps the full width.
    img = np.zeros((80, 40, 3), np.uint8)
    img[:, :2] = 255
    out = center_crop_resize(img, 28)
    assert out[:, :, 0].mean() > 0.5 and out[:, :, -1].mean() < 0.05


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = registry.build("anysplat-mini", image_size=56, **TINY)
    with torch.no_grad():  # visible, non-degenerate output
        model.encoder.camera_head.pose_branch.fc2.bias.copy_(
            torch.tensor([0, 0, 0, 0, 0, 0, 1.0, 0.2, 0.2])
        )  # 4 rounds add up: fov ~0.8 rad
        model.encoder.gaussian_param_head.scratch.output_conv2[2].bias[0] = 3.0
    folder = tmp_path_factory.mktemp("tiny_anysplat")
    model.save_pretrained(folder, preset="anysplat-mini")
    return folder


def _write_images(folder: Path, n: int = 3) -> list[Path]:
    import imageio.v3 as iio

    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        p = folder / f"view_{i}.png"
        iio.imwrite(p, rng.integers(0, 255, (60, 90, 3), dtype=np.uint8))
        paths.append(p)
    return paths


def test_reconstruct_writes_scene_cameras_and_video(tmp_path: Path, tiny_model_dir: Path) -> None:
    imgs = _write_images(tmp_path)
    out = tmp_path / "out"
    code = main(
        [
            "reconstruct",
            *map(str, imgs),
            "--model",
            str(tiny_model_dir),
            "--out",
            str(out),
            "--video-frames",
            "3",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    from vist3a.gaussians.cameras import Cameras
    from vist3a.gaussians.formats import load_scene

    scene = load_scene(out / "scene.ply")
    assert 0 < len(scene) <= 3 * 56 * 56
    cams = Cameras.load_json(out / "cameras.json")
    assert len(cams) == 3 and (cams.width, cams.height) == (56, 56)
    assert (out / "video.mp4").stat().st_size > 0
    assert json.loads((tiny_model_dir / "vist3a_model.json").read_text())["preset"] == "anysplat-mini"
    import imageio.v3 as iio

    # the video of a merged preview (the CPU default merges to 40k splats; here to 50 of the ~9k)
    base = ["reconstruct", *map(str, imgs), "--model", str(tiny_model_dir), "--video-frames", "4", "--device", "cpu"]
    assert main([*base, "--out", str(tmp_path / "small"), "--preview-splats", "50"]) == 0
    assert iio.imread(tmp_path / "small" / "video.mp4").shape[0] == 4
    assert main([*base, "--out", str(tmp_path / "bad"), "--preview-splats", "-1"]) == 1


def test_load_views_from_folder_and_errors(tmp_path: Path) -> None:
    _write_images(tmp_path, 2)
    x = load_views([tmp_path], 28)
    assert x.shape == (1, 2, 3, 28, 28) and 0 <= x.min() and x.max() <= 1
    from vist3a.errors import InputError

    with pytest.raises(InputError, match="input not found"):
        load_views([tmp_path / "missing.png"], 28)


def test_load_views_samples_a_video(tmp_path: Path) -> None:
    from vist3a.video_io import write_video

    frames = torch.linspace(0, 1, 10)[:, None, None, None].expand(10, 3, 32, 48).contiguous()
    write_video(frames, tmp_path / "clip.mp4", fps=10)
    x = load_views([tmp_path / "clip.mp4"], 28, video_frames=4)
    assert x.shape == (1, 4, 3, 28, 28)
    means = x.mean(dim=(0, 2, 3, 4))
    assert (
        means[0] < 0.1 and means[-1] > 0.9 and bool((means[1:] > means[:-1]).all())
    )  # first..last, in order


def test_missing_weights_is_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    imgs = _write_images(tmp_path, 2)
    (tmp_path / "trimmed").mkdir()
    monkeypatch.setenv("VIST3A_MINI_ASSETS", str(tmp_path / "trimmed"))  # an install without the mini set
    code = main(["reconstruct", *map(str, imgs), "--model", "anysplat-mini", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err and "anysplat-mini weights are not shipped" in err
    monkeypatch.delenv("VIST3A_MINI_ASSETS")
    code = main(
        [
            "reconstruct",
            *map(str, imgs),
            "--model",
            "anysplat",
            "--weights",
            "vist3a-test/absent",
            "--offline",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err and "huggingface.co/vist3a-test/absent" in err
