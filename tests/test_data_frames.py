"""Plain frame folders and video files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vist3a.data.frames import FramesDataset, load_frames, pick
from vist3a.errors import InputError


def _frames(folder, values, size=(12, 16)):
    folder.mkdir(parents=True)
    for name, v in values.items():
        Image.fromarray(np.full((*size, 3), v, dtype=np.uint8)).save(folder / name)


def test_folder_is_read_in_natural_order(tmp_path):
    _frames(tmp_path / "clip", {"1.png": 10, "10.png": 100, "2.png": 20})
    (tmp_path / "clip" / "notes.txt").write_text("ignored")
    images, idx = load_frames(tmp_path / "clip")
    assert images.shape == (3, 3, 12, 16) and idx == [0, 1, 2]
    assert (images[:, 0, 0, 0] * 255).round().tolist() == [10, 20, 100]
    cropped, _ = load_frames(tmp_path / "clip", size=8)
    assert cropped.shape == (3, 3, 8, 8)


def test_pick_uniform_and_first():
    assert pick(10, 4) == [0, 3, 6, 9]
    assert pick(10, 3, "first") == [0, 1, 2]
    assert pick(5, None) == [0, 1, 2, 3, 4]
    with pytest.raises(InputError, match="fewer"):
        pick(3, 5)


def test_video_file(tmp_path):
    import imageio.v3 as iio

    vals = np.arange(10) * 25
    frames = np.stack([np.full((16, 32, 3), v, dtype=np.uint8) for v in vals])
    path = tmp_path / "clip.mp4"
    iio.imwrite(path, frames, fps=5)
    images, idx = load_frames(path, num_frames=4)
    assert idx == [0, 3, 6, 9] and images.shape == (4, 3, 16, 32)
    got = (images.mean((1, 2, 3)) * 255).tolist()
    assert got == pytest.approx(vals[idx].tolist(), abs=6)  # lossy codec


def test_frames_dataset_skips_bad_sources(tmp_path):
    _frames(tmp_path / "root" / "a", {f"{i}.png": i for i in range(6)})
    _frames(tmp_path / "root" / "b", {f"{i}.png": i for i in range(2)})  # too short for 4
    (tmp_path / "root" / "empty").mkdir()
    (tmp_path / "root" / "broken.mp4").write_bytes(b"not a video")
    ds = FramesDataset(tmp_path / "root", num_frames=4, size=8)
    assert len(ds) == 4
    samples = list(ds)
    assert [s["scene"] for s in samples] == ["a"]
    assert samples[0]["images"].shape == (4, 3, 8, 8) and samples[0]["cameras"] is None
    assert ds.skipped.total == 3 and ds.skipped.counts["unreadable"] == 1
    # random access replaces a bad item by the next readable one
    assert ds[1]["scene"] == "a"
    assert torch.equal(ds[0]["frame_ids"], torch.tensor([0, 2, 3, 5]))
