"""The streaming world Dataset: deterministic per index, works with workers and DistributedSampler."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from vist3a.errors import InputError
from vist3a.world.dataset import WorldDataset


def test_items_are_deterministic_and_complete():
    ds = WorldDataset(6, seed=2, frames=3, size=32)
    a, b = ds[4], WorldDataset(6, seed=2, frames=3, size=32)[4]
    assert a["images"].shape == (3, 3, 32, 32) and a["depth"].shape == (3, 32, 32) and a["c2w"].shape == (3, 4, 4)
    assert torch.equal(a["images"], b["images"]) and a["caption"] == b["caption"] and a["index"] == 4
    assert not torch.equal(ds[3]["images"], a["images"])
    assert not torch.equal(WorldDataset(6, seed=3, frames=3, size=32)[4]["images"], a["images"])
    structured = json.loads(a["structured"])
    assert any(o["colour"] in a["caption"] for o in structured["objects"])
    assert ds[-1]["index"] == 5
    with pytest.raises(IndexError):
        ds[6]


def test_dataloader_workers_and_distributed_sampler_see_the_same_items():
    ds = WorldDataset(4, seed=5, frames=2, size=24, caption_style="short")
    direct = [ds[i] for i in range(4)]
    loaded = list(DataLoader(ds, batch_size=2, num_workers=2, shuffle=False))
    assert torch.equal(loaded[1]["images"][0], direct[2]["images"])
    assert list(loaded[0]["caption"]) == [direct[0]["caption"], direct[1]["caption"]]
    seen = []
    for rank in range(2):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=22)
        seen += [int(b["index"]) for b in DataLoader(ds, sampler=sampler, batch_size=1)]
    assert sorted(seen) == [0, 1, 2, 3]


def test_bad_arguments():
    with pytest.raises(InputError, match="length"):
        WorldDataset(0)
    with pytest.raises(InputError, match="caption style"):
        WorldDataset(2, caption_style="poem")


@pytest.mark.gpu
def test_cuda_items():
    item = WorldDataset(2, frames=2, size=64, device="cuda")[1]
    assert item["images"].is_cuda
    cpu = WorldDataset(2, frames=2, size=64)[1]
    assert (item["images"].cpu() - cpu["images"]).abs().mean() < 1e-3


def test_motion_restriction_gives_that_motions_cameras():
    from vist3a.world.dataset import parse_motions

    # a pan turns in place (every camera centre the same); a truck slides (every rotation the same)
    pan = WorldDataset(3, seed=1, frames=3, size=16, motion="pan", shadows=False)
    truck = WorldDataset(3, seed=1, frames=3, size=16, motion="truck", shadows=False)
    for i in range(3):
        c, t = pan[i]["c2w"], truck[i]["c2w"]
        torch.testing.assert_close(c[:, :3, 3], c[:1, :3, 3].expand(3, 3), atol=1e-5, rtol=0)
        assert not torch.allclose(c[0, :3, :3], c[-1, :3, :3], atol=1e-3)
        torch.testing.assert_close(t[:, :3, :3], t[:1, :3, :3].expand(3, 3, 3), atol=1e-5, rtol=0)
        assert (t[-1, :3, 3] - t[0, :3, 3]).norm() > 1e-2
    # several motions: one per index, fixed by the index, and both occur
    both = WorldDataset(12, seed=1, frames=3, size=16, motion="pan, truck", shadows=False)
    kinds = []
    for i in range(12):
        c = both[i]["c2w"]
        kinds.append("pan" if torch.allclose(c[:, :3, 3], c[:1, :3, 3].expand(3, 3), atol=1e-5) else "truck")
        if kinds[-1] == "truck":
            torch.testing.assert_close(c[:, :3, :3], c[:1, :3, :3].expand(3, 3, 3), atol=1e-5, rtol=0)
    assert set(kinds) == {"pan", "truck"}
    assert torch.equal(both[5]["images"], WorldDataset(12, seed=1, frames=3, size=16, motion=["pan", "truck"],
                                                       shadows=False)[5]["images"])  # fmt: skip
    assert parse_motions(None) == () and parse_motions("arc") == ("arc",)
    with pytest.raises(InputError, match="unknown camera motion"):
        WorldDataset(2, motion="spin")
    with pytest.raises(InputError, match="unknown camera motion"):
        parse_motions(" , ")
