"""Writing frames to .mp4, .gif and PNG folders: content read back, atomicity, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vist3a.errors import InputError
from vist3a.video_io import VideoWriter, output_kind, to_uint8_frames, write_video


def _flat_frames(t: int, h: int, w: int) -> torch.Tensor:
    """Frame i is a flat colour that changes with i (easy to check after lossy coding)."""
    colors = torch.stack([torch.linspace(0.1, 0.9, t), torch.linspace(0.9, 0.1, t), torch.full((t,), 0.5)], -1)
    return colors[:, :, None, None].expand(t, 3, h, w).clone()


def test_png_folder_round_trips_exactly(tmp_path):
    frames = torch.rand(3, 3, 7, 5, generator=torch.Generator().manual_seed(0))
    out = write_video(frames, tmp_path / "frames")
    names = sorted(p.name for p in out.iterdir())
    assert names == ["frame_00000.png", "frame_00001.png", "frame_00002.png"]
    back = np.asarray(Image.open(out / "frame_00001.png"))
    assert back.shape == (7, 5, 3)
    np.testing.assert_array_equal(back, (frames[1].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy())
    # Writing again replaces a folder of earlier frames (and nothing is left behind).
    write_video(frames[:1], tmp_path / "frames")
    assert sorted(p.name for p in out.iterdir()) == ["frame_00000.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]


def test_mp4_has_the_frames_and_even_size(tmp_path):
    import imageio_ffmpeg

    frames = _flat_frames(5, 33, 47)  # odd sizes are padded to even
    path = write_video(frames, tmp_path / "clip.mp4", fps=10)
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")
    assert meta["size"] == (48, 34) and meta["fps"] == pytest.approx(10)
    back = np.stack([np.frombuffer(b, np.uint8).reshape(34, 48, 3) for b in reader])
    assert back.shape == (5, 34, 48, 3)
    expected = (frames[:, :, 0, 0] * 255).numpy()
    np.testing.assert_allclose(back[:, :33, :47].reshape(5, -1, 3).mean(1), expected, atol=4)
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_gif_frames_and_timing(tmp_path):
    frames = to_uint8_frames(_flat_frames(4, 8, 6))
    path = write_video(frames, tmp_path / "anim.gif", fps=20)
    im = Image.open(path)
    assert im.n_frames == 4
    assert im.info["duration"] == 50 and im.info["loop"] == 0
    im.seek(2)
    np.testing.assert_allclose(np.asarray(im.convert("RGB"))[0, 0], frames[2, 0, 0], atol=2)


def test_layouts_and_dtypes():
    f = torch.zeros(2, 3, 4, 5)
    f[:, 0] = 1.0
    f[:, 1] = 2.0  # clamped
    f[:, 2] = -1.0  # clamped
    out = to_uint8_frames(f)
    assert out.shape == (2, 4, 5, 3) and out.dtype == np.uint8
    assert out[0, 0, 0].tolist() == [255, 255, 0]
    hwc = np.zeros((2, 4, 5, 3), dtype=np.uint8)
    assert to_uint8_frames(hwc).shape == (2, 4, 5, 3)
    chw = np.zeros((2, 3, 4, 5), dtype=np.uint8)
    assert to_uint8_frames(chw).shape == (2, 4, 5, 3)


def test_errors(tmp_path):
    frames = torch.zeros(2, 3, 4, 4)
    with pytest.raises(InputError, match="unknown suffix"):
        write_video(frames, tmp_path / "clip.avi")
    with pytest.raises(InputError, match="does not exist"):
        write_video(frames, tmp_path / "missing" / "clip.mp4")
    with pytest.raises(InputError, match="shape"):
        write_video(torch.zeros(3, 4, 4), tmp_path / "x.gif")
    with pytest.raises(InputError, match="no frames"):
        write_video(torch.zeros(0, 3, 4, 4), tmp_path / "x.gif")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="other files"):
        write_video(frames, tmp_path / "busy")
    assert output_kind(tmp_path / "busy") == "frames" and output_kind("a/b.MP4") == "mp4"


@pytest.mark.parametrize("name", ["clip.mp4", "anim.gif", "frames"])
def test_failure_mid_write_leaves_nothing(tmp_path, name):
    with pytest.raises(ValueError, match="boom"):
        with VideoWriter(tmp_path / name, fps=5) as w:
            w.append(torch.zeros(3, 8, 8))
            raise ValueError("boom")
    assert list(tmp_path.iterdir()) == []
    # A frame of another size is refused.
    with pytest.raises(InputError, match="frame 1"):
        with VideoWriter(tmp_path / name) as w:
            w.append(torch.zeros(3, 8, 8))
            w.append(torch.zeros(3, 6, 8))
    assert list(tmp_path.iterdir()) == []
