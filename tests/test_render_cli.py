"""`vist3a render`: orbit placement, cameras.json, outputs, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from vist3a.cli import main
from vist3a.commands.render import auto_up, orbit_for_scene, parse_background
from vist3a.gaussians.gaussians import Gaussians
from vist3a.gaussians.render import render


def _scene(center=(1.0, -2.0, 0.5), n=300, seed=0) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=gen) * 0.3 + torch.tensor(center)
    colors = torch.rand(n, 3, generator=gen)
    return Gaussians.from_colors(means, colors, torch.full((n, 3), 0.05), torch.full((n,), 0.9))


@pytest.fixture
def scene_file(tmp_path):
    from vist3a.gaussians.formats import save_scene

    path = tmp_path / "scene.ply"
    save_scene(_scene(), path)
    return path


def test_orbit_is_centred_on_the_scene_and_frames_it():
    g = _scene()
    cams = orbit_for_scene(g, 6, 64, 48, elevation_deg=20.0)
    target = g.means.median(0).values  # equal opacities: the weighted median is the (lower) median
    assert torch.allclose(target, torch.tensor([1.0, -2.0, 0.5]), atol=0.1)
    # Every camera looks at the weighted median ...
    fwd = cams.c2w[:, :3, 2]
    to_target = torch.nn.functional.normalize(target - cams.centers, dim=-1)
    assert torch.all((fwd * to_target).sum(-1) > 0.99)
    # ... from one distance, at 20° above the xy plane (up = +z for a round cloud).
    dist = (cams.centers - target).norm(dim=-1)
    assert dist.std() < 1e-4 * dist.mean()
    elev = torch.rad2deg(torch.asin((cams.centers[:, 2] - target[2]) / dist))
    assert torch.allclose(elev, torch.full_like(elev, 20.0), atol=1.0)
    # The scene fills the view but stays inside it: most of it is drawn, little touches the border.
    out = render(g, cams, backend="torch")
    assert out.alpha.mean() > 0.05
    border = torch.cat([out.alpha[..., 0, :], out.alpha[..., -1, :], out.alpha[..., :, 0], out.alpha[..., :, -1]], -1)
    assert border.mean() < 0.05


def test_radius_and_up_overrides():
    g = _scene(center=(0.0, 0.0, 0.0))
    cams = orbit_for_scene(g, 4, 32, 32, radius=5.0, up="-y")
    assert torch.allclose(cams.centers.norm(dim=-1), torch.full((4,), 5.0), atol=0.05)
    # Up = -y: the cameras' image-down axis (y) points along +y world on average.
    assert (cams.c2w[:, 1, 1] > 0.8).all()


def test_auto_up_prefers_z_and_detects_an_opencv_scene():
    gen = torch.Generator().manual_seed(0)
    blob = torch.randn(500, 3, generator=gen)
    w = torch.ones(500)
    assert auto_up(blob, w) == (0.0, 0.0, 1.0)
    flat_y = blob * torch.tensor([2.0, 0.1, 2.0])  # a floor seen in OpenCV axes
    assert auto_up(flat_y, w) == (0.0, -1.0, 0.0)
    flat_z = blob * torch.tensor([2.0, 2.0, 0.1])
    assert auto_up(flat_z, w) == (0.0, 0.0, 1.0)


def test_parse_background():
    assert parse_background("white") == (1.0, 1.0, 1.0)
    assert parse_background("0.25") == (0.25, 0.25, 0.25)
    assert parse_background("1,0,0.5") == (1.0, 0.0, 0.5)
    for bad in ("purple", "2", "1,2"):
        with pytest.raises(Exception, match="background"):
            parse_background(bad)


def test_render_orbit_to_png_frames(scene_file, tmp_path, capsys):
    out = tmp_path / "frames"
    code = main(["render", str(scene_file), "--orbit", "3", "--out", str(out), "--width", "40", "--height", "30",
                 "--background", "white", "--backend", "torch"])  # fmt: skip
    assert code == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == ["frame_00000.png", "frame_00001.png", "frame_00002.png"]
    img = np.asarray(Image.open(out / "frame_00000.png"))
    assert img.shape == (30, 40, 3)
    assert (img[0, 0] == 255).all()  # white background in the corner
    assert img.mean() < 250  # and the scene in the middle
    printed = capsys.readouterr().out
    assert "wrote" in printed and "3 frames" in printed and "40x30" in printed


def test_render_cameras_json_to_gif_matches_the_library(scene_file, tmp_path):
    f = 40.0
    c2w = torch.eye(4)
    c2w[:3, 3] = torch.tensor([1.0, -2.0, -2.5])  # 3 units in front of the cloud, looking down +z
    frame = {"c2w": c2w.tolist(), "fx": f, "fy": f, "cx": 16.0, "cy": 12.0, "width": 32, "height": 24}
    cams_path = tmp_path / "cameras.json"
    frame2 = dict(frame, cx=14.0)
    cams_path.write_text(json.dumps({"frames": [frame, frame2]}))
    out = tmp_path / "clip.gif"
    assert main(["render", str(scene_file), "--cameras", str(cams_path), "--out", str(out), "--backend", "torch"]) == 0
    im = Image.open(out)
    assert im.n_frames == 2 and im.size == (32, 24)
    from vist3a.gaussians.cameras import Cameras
    from vist3a.gaussians.formats import load_scene

    expect = render(load_scene(scene_file), Cameras.load_json(cams_path)[0:1], backend="torch").rgb[0]
    expect = (expect.clamp(0, 1) * 255).round().permute(1, 2, 0).numpy()
    got = np.asarray(im.convert("RGB")).astype(np.float64)
    assert np.abs(got - expect).mean() < 4  # GIF palette quantisation only


def test_render_mp4_with_resize(scene_file, tmp_path):
    out = tmp_path / "orbit.mp4"
    assert main(["render", str(scene_file), "--orbit", "2", "--out", str(out), "--width", "33", "--backend", "torch"]) == 0
    import imageio_ffmpeg

    meta = next(imageio_ffmpeg.read_frames(str(out)))
    assert meta["size"] == (34, 34)  # 33x33 padded to even for yuv420p


def test_render_example_scene(tmp_path):
    from vist3a.gaussians.formats import example_scene_path

    try:
        example_scene_path()
    except Exception:  # noqa: BLE001
        pytest.skip("the example scene is not part of this checkout yet")
    out = tmp_path / "ex"
    assert main(["render", "example", "--orbit", "1", "--out", str(out), "--width", "32", "--backend", "torch"]) == 0
    assert (out / "frame_00000.png").is_file()


def test_errors_are_one_line(scene_file, tmp_path, capsys):
    cases = [
        (["render", str(scene_file), "--orbit", "2", "--out", str(tmp_path / "x.avi")], "unknown suffix"),
        (["render", str(tmp_path / "none.ply"), "--orbit", "2", "--out", str(tmp_path / "x.gif")], "not found"),
        (["render", str(scene_file), "--orbit", "0", "--out", str(tmp_path / "x.gif")], "at least 1"),
        (["render", str(scene_file), "--cameras", str(tmp_path / "c.json"), "--out", str(tmp_path / "x.gif")], "cameras"),
        (["render", str(scene_file), "--orbit", "2", "--out", str(tmp_path / "no" / "x.gif")], "does not exist"),
        (["render", str(scene_file), "--orbit", "2", "--sh-degree", "3", "--out", str(tmp_path / "x.gif")], "--sh-degree"),
    ]
    for argv, message in cases:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.ply"]  # nothing half-written


def test_orbit_radius_formula():
    # A cloud of radius ~r: the camera distance is 1.1 r / sin(fov/2) for the 90 % extent.
    g = _scene(center=(0.0, 0.0, 0.0), n=2000)
    cams = orbit_for_scene(g, 1, 64, 64, fov_x_deg=60.0)
    d = (g.means - g.means.median(0).values).norm(dim=-1)
    r90 = d.sort().values[int(0.9 * len(d))]
    assert cams.centers[0].norm().item() == pytest.approx(1.1 * r90.item() / math.sin(math.radians(30)), rel=0.02)
