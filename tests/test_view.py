"""``vist3a view`` without a browser: scene → viser arrays, camera poses, uploads, ports, the CLI."""

from __future__ import annotations

import math
import socket
import urllib.request

import numpy as np
import pytest
import torch

from vist3a.cli import main
from vist3a.errors import InputError
from vist3a.gaussians.cameras import Cameras, look_at
from vist3a.gaussians.formats import example_scene_path, load_scene
from vist3a.gaussians.gaussians import Gaussians
from vist3a.viewer.scene import camera_poses, fly_through, splat_arrays, world_up
from vist3a.viewer.server import PortInUseError, check_port
from vist3a.viewer.view import load_scene_bytes


def _busy_port() -> tuple[socket.socket, int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s, s.getsockname()[1]


def test_splat_arrays_covariance_matches_rotated_scales() -> None:
    # identity and a 90° turn about z: Σ = R diag(s²) Rᵀ swaps the x and y variances
    half = math.sqrt(0.5)
    g = Gaussians(
        means=torch.tensor([[0.0, 0, 0], [1, 2, 3]]),
        quats=torch.tensor([[1.0, 0, 0, 0], [half, 0, 0, half]]),
        scales=torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]),
        opacities=torch.tensor([0.5, 1.0]),
        sh=torch.zeros(2, 1, 3),
    )
    a = splat_arrays(g)
    np.testing.assert_allclose(a.covariances[0], np.diag([1.0, 4.0, 9.0]), atol=1e-5)
    np.testing.assert_allclose(a.covariances[1], np.diag([4.0, 1.0, 9.0]), atol=1e-5)
    np.testing.assert_allclose(a.rgbs, 0.5, atol=1e-6)  # SH DC 0 = grey
    np.testing.assert_allclose(a.opacities[:, 0], [0.5, 1.0])
    assert a.centers.dtype == np.float32 and a.opacities.shape == (2, 1)


def test_splat_arrays_drops_non_finite_and_subsamples_most_visible() -> None:
    g = load_scene(example_scene_path())
    bad = g.means.clone()
    bad[0, 0] = float("nan")
    g2 = Gaussians(bad, g.quats, g.scales, g.opacities, g.sh)
    assert len(splat_arrays(g2)) == len(g) - 1
    small = splat_arrays(g, max_splats=100)
    assert len(small) == 100
    score = (g.opacities * g.scales.prod(-1)).numpy()
    assert small.opacities.mean() >= g.opacities.numpy().mean() - 1e-6  # the visible ones were kept
    assert np.sort(score)[-100] > 0
    with pytest.raises(InputError, match="no drawable"):
        splat_arrays(Gaussians.empty())


def test_camera_poses_match_c2w_and_intrinsics() -> None:
    eye = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0]])  # level with the target: y axes exactly −z
    c2w = look_at(eye, torch.zeros(2, 3), torch.tensor([0.0, 0.0, 1.0]).expand(2, 3))
    K = torch.tensor([[100.0, 0, 80], [0, 120.0, 60], [0, 0, 1]]).repeat(2, 1, 1)
    cams = Cameras(c2w, K, 160, 120)
    poses = camera_poses(cams)
    for pose, m in zip(poses, c2w, strict=True):
        w, x, y, z = pose.wxyz
        r = np.array([
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ])  # fmt: skip
        np.testing.assert_allclose(r, m[:3, :3].numpy(), atol=1e-5)
        np.testing.assert_allclose(pose.position, m[:3, 3].numpy(), atol=1e-6)
        assert pose.fov == pytest.approx(2 * math.atan(60 / 120.0))
        assert pose.aspect == pytest.approx(160 / 120)
    # OpenCV y points down, so up = −mean(y axis); look_at with +z up gives +z
    np.testing.assert_allclose(world_up(cams), (0, 0, 1), atol=1e-5)


def test_fly_through_passes_through_keyframes() -> None:
    cams = Cameras.orbit(4, width=64, height=48, arc_deg=90)
    path = fly_through(cams, 5)
    assert len(path) == 3 * 5 + 1
    torch.testing.assert_close(path.c2w[::5], cams.c2w, atol=1e-5, rtol=0)
    assert len(fly_through(cams[0:1], 5)) == 1
    with pytest.raises(InputError):
        fly_through(cams, 0)


def test_load_scene_bytes_good_corrupt_and_unknown(tmp_path) -> None:
    data = example_scene_path().read_bytes()
    assert len(load_scene_bytes("../../etc/x.ply", data)) == len(load_scene(example_scene_path()))
    with pytest.raises(InputError):
        load_scene_bytes("broken.ply", b"ply\nformat binary_little_endian 1.0\nelement vertex 5\nend_header\n\x00")
    with pytest.raises(InputError):
        load_scene_bytes("broken.ply", data[: len(data) // 2])
    with pytest.raises(InputError, match="unknown scene file type"):
        load_scene_bytes("notes.txt", b"hello")
    with pytest.raises(InputError, match="empty"):
        load_scene_bytes("empty.spz", b"")
    assert list(tmp_path.iterdir()) == []  # nothing written beside


def test_check_port_names_the_busy_port() -> None:
    s, port = _busy_port()
    try:
        with pytest.raises(PortInUseError, match=f"port {port} .* in use"):
            check_port("127.0.0.1", port)
    finally:
        s.close()
    check_port("127.0.0.1", 0)
    with pytest.raises(InputError):
        check_port("127.0.0.1", 70000)


def test_cli_view_bad_inputs_one_line(tmp_path, capsys) -> None:
    pytest.importorskip("viser")
    bad = tmp_path / "bad.ply"
    bad.write_bytes(b"not a ply file at all")
    assert main(["view", str(bad), "--port", "0"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("vist3a view: error:") and "\n" not in err and "bad.ply" in err
    s, port = _busy_port()
    try:
        assert main(["view", "example", "--port", str(port)]) == 1
        err = capsys.readouterr().err.strip()
        assert f"port {port}" in err and "in use" in err and "\n" not in err
    finally:
        s.close()
    assert main(["view", str(tmp_path / "missing.spz"), "--port", "0"]) == 1
    assert "missing.spz" in capsys.readouterr().err


def test_scene_viewer_shows_scene_frusta_and_survives_a_corrupt_upload() -> None:
    pytest.importorskip("viser")
    from vist3a.viewer.server import start_server
    from vist3a.viewer.view import SceneViewer

    g = load_scene(example_scene_path())
    cams = Cameras.orbit(6, radius=3.0, width=64, height=64, arc_deg=120)
    server = start_server("127.0.0.1", 0)
    try:
        v = SceneViewer(server, g, cams, title="example", frames_per_view=4)
        assert v.n_splats == len(g)
        assert len(v._frustum_handles) == 6 and len(v.trajectory) == 5 * 4 + 1
        assert f"{len(g):,} splats" in v.status
        assert not v.open_bytes("broken.spz", b"\x1f\x8b garbage")
        assert v.status.startswith("**Error:**") and "broken.spz" in v.status
        assert v.n_splats == len(g)  # the old scene stays
        url = f"http://127.0.0.1:{server.get_port()}/"
        with urllib.request.urlopen(url, timeout=10) as r:  # still serving
            assert r.status == 200 and b"<html" in r.read(2000).lower()
        assert v.open_bytes("again.ply", example_scene_path().read_bytes())
        assert v.cameras is None and len(v._frustum_handles) == 0 and "orbit" in v.status
        v.frame_slider.value = 0
        t = v.play()
        t.join(timeout=0.3)
        v.stop()
        t.join(timeout=5)
        assert not t.is_alive()
    finally:
        server.stop()


def test_cli_view_serves_a_bundle_with_its_cameras(tmp_path) -> None:
    pytest.importorskip("viser")
    import re
    import subprocess
    import sys

    from vist3a.gaussians.formats import save_scene

    save_scene(load_scene(example_scene_path()), tmp_path / "scene.spz")
    Cameras.orbit(5, width=64, height=64, arc_deg=90).save_json(tmp_path / "cameras.json")
    proc = subprocess.Popen(
        [sys.executable, "-m", "vist3a", "view", str(tmp_path / "scene.spz"), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        lines = []
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if "vist3a view: open" in line:
                break
        text = "".join(lines)
        m = re.search(r"open (http://127\.0\.0\.1:\d+)", text)
        assert m, text
        assert "cameras.json" in text  # the cameras beside the scene were picked up
        with urllib.request.urlopen(m.group(1), timeout=20) as r:
            assert r.status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_cli_view_malformed_cameras_one_line(tmp_path, capsys) -> None:
    pytest.importorskip("viser")
    (tmp_path / "cameras.json").write_text('{"frames": [{"c2w": "nope"}]}')
    assert main(["view", "example", "--cameras", str(tmp_path / "cameras.json"), "--port", "0"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("vist3a view: error:") and "\n" not in err
