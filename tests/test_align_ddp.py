"""`vist3a align` under a 2-process gloo group: LoRA gradients are averaged, so both ranks stay identical."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    import sys

    sys.path.insert(0, os.path.dirname(__file__))
    from test_align import tiny_config, tiny_models
    from vist3a.alignment.rewards import build_reward
    from vist3a.alignment.trainer import AlignTrainer
    from vist3a.train import distributed

    torch.set_num_threads(1)
    ctx = distributed.init("cpu")
    try:
        video, _ = tiny_models(decoder=False)
        cfg = tiny_config(num_frames=1, min_steps=1, max_steps=2)
        tr = AlignTrainer(video, None, build_reward("brightness"), ["a red cube", "a blue sphere"], cfg,
                          os.path.join(out, "run"), dist=ctx)
        rec = tr.train_step()
        torch.save({"lora": tr.lora_state(), "reward": rec.reward}, os.path.join(out, f"rank{rank}.pt"))
    finally:
        distributed.shutdown()


@pytest.mark.slow
def test_two_ranks_stay_in_sync(tmp_path):
    mp.start_processes(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, start_method="spawn")
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert a["reward"] != b["reward"]  # different prompts / noise per rank
    assert all(torch.equal(a["lora"][k], b["lora"][k]) for k in a["lora"])
    assert any(a["lora"][k].abs().sum() > 0 for k in a["lora"] if "lora_B" in k)
