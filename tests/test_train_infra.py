"""Training infrastructure: exact resume, EMA, and gloo DDP with two CPU processes."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from vist3a.errors import CheckpointError
from vist3a.train import distributed
from vist3a.train.checkpoint import CheckpointManager
from vist3a.train.ema import EMA


def _toy_run(folder, steps: int, stop_at: int | None = None) -> list[float]:
    """A tiny noisy regression; returns the loss per step. Resumes from ``folder`` if it holds a checkpoint."""
    ckpt = CheckpointManager(folder)
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses: list[float] = []
    start = 0
    state = ckpt.load()
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        losses = state["losses"]
        start = state["step"]
    for step in range(start, steps):
        x = torch.randn(8, 4)  # draws from the global RNG, restored on resume
        y = x.sum(-1, keepdim=True) + 0.1 * torch.randn(8, 1)
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if stop_at is not None and step + 1 == stop_at:
            ckpt.save(step + 1, {"model": model.state_dict(), "opt": opt.state_dict(), "losses": losses})
            return losses
    return losses


def test_resume_reproduces_uninterrupted_run(tmp_path):
    full = _toy_run(tmp_path / "a", steps=20)
    _toy_run(tmp_path / "b", steps=20, stop_at=7)  # "killed" after step 7
    resumed = _toy_run(tmp_path / "b", steps=20)
    assert resumed == full


def test_checkpoint_is_atomic_and_pruned(tmp_path):
    ckpt = CheckpointManager(tmp_path, keep=2)
    for s in (1, 2, 3):
        ckpt.save(s, {"x": torch.tensor([s])})
    assert sorted(p.name for p in tmp_path.glob("step_*.pt")) == ["step_00000002.pt", "step_00000003.pt"]
    assert not list(tmp_path.glob(".*tmp*"))
    assert ckpt.load(restore_rng=False)["x"].item() == 3


def test_corrupt_checkpoint_gives_clear_error(tmp_path):
    ckpt = CheckpointManager(tmp_path)
    ckpt.save(1, {"x": torch.zeros(1)})
    ckpt.path_for(1).write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        ckpt.load()


def test_ema_known_answer():
    m = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        m.weight.fill_(0.0)
    ema = EMA(m, decay=0.5)
    with torch.no_grad():
        m.weight.fill_(1.0)
    ema.update(m)  # 0.5*0 + 0.5*1
    ema.update(m)  # 0.5*0.5 + 0.5*1
    assert ema.shadow["weight"].item() == pytest.approx(0.75)
    ema.copy_to(m)
    assert m.weight.item() == pytest.approx(0.75)


def test_ema_state_loads_onto_the_parameters_device():
    """A checkpoint's EMA state is read on the CPU; loaded into an EMA of a model elsewhere (here the meta device,
    on the device machine CUDA) each average lands on its parameter's device, so the next update works (session 12
    found a resumed CUDA run failing on cuda/cpu tensors). Values round-trip; a missing key is named."""
    m = torch.nn.Linear(2, 1)
    ema = EMA(m, 0.9)
    state = {k: v + 1 for k, v in ema.state_dict().items()}
    again = EMA(m, 0.9)
    again.load_state_dict(state)
    assert all(torch.equal(again.shadow[k], state[k]) and again.shadow[k] is not state[k] for k in state)
    meta = EMA(torch.nn.Linear(2, 1, device="meta"), 0.9)
    meta.load_state_dict(state)
    assert {v.device.type for v in meta.shadow.values()} == {"meta"}
    with pytest.raises(KeyError, match="bias"):
        again.load_state_dict({"weight": state["weight"]})


@pytest.mark.gpu
def test_ema_resumed_on_cuda_updates():
    m = torch.nn.Linear(2, 1).cuda()
    ema = EMA(m, 0.5)
    cpu_state = {k: v.cpu() for k, v in ema.state_dict().items()}
    resumed = EMA(m, 0.5)
    resumed.load_state_dict(cpu_state)
    resumed.update(m)
    assert all(v.is_cuda for v in resumed.shadow.values())


def test_shard_covers_every_item_once():
    items = list(range(11))
    parts = [distributed.shard(items, r, 3) for r in range(3)]
    assert sorted(sum(parts, [])) == items


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, out) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    ctx = distributed.init(device="cpu")
    torch.manual_seed(0)
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(3, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(1)
    x_all, y_all = torch.randn(8, 3, generator=g), torch.randn(8, 1, generator=g)
    for _ in range(3):
        x, y = x_all[ctx.rank :: ctx.world_size], y_all[ctx.rank :: ctx.world_size]
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    mean = distributed.all_reduce_mean(torch.tensor([float(ctx.rank)]))
    out[rank] = torch.cat([model.module.weight.detach().flatten(), model.module.bias.detach(), mean])
    distributed.shutdown()


def test_gloo_ddp_matches_single_process():
    world, port = 2, _free_port()
    manager = mp.Manager()
    out = manager.dict()
    mp.spawn(_ddp_worker, args=(world, port, out), nprocs=world, join=True)
    # single-process reference with the same global batch (equal shards -> same mean gradient)
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(1)
    x_all, y_all = torch.randn(8, 3, generator=g), torch.randn(8, 1, generator=g)
    for _ in range(3):
        loss = torch.nn.functional.mse_loss(model(x_all), y_all)
        opt.zero_grad()
        loss.backward()
        opt.step()
    ref = torch.cat([model.weight.detach().flatten(), model.bias.detach()])
    for r in range(world):
        torch.testing.assert_close(out[r][:4], ref, rtol=1e-5, atol=1e-6)
        assert out[r][4].item() == pytest.approx(0.5)  # mean of ranks 0 and 1


def test_atomic_output_gets_umask_mode(tmp_path):
    import os

    from vist3a.io_utils import atomic_write_text

    p = atomic_write_text(tmp_path / "x.txt", "hi")
    umask = os.umask(0)
    os.umask(umask)
    assert (p.stat().st_mode & 0o777) == (0o666 & ~umask)


def test_ema_applied_swaps_in_the_average_and_restores_even_on_error():
    from vist3a.train.ema import EMA

    m = torch.nn.Linear(3, 2)
    own = {n: p.detach().clone() for n, p in m.named_parameters()}
    ema = EMA(m, decay=0.5)
    ema.shadow = {n: torch.full_like(v, 7.0) for n, v in ema.shadow.items()}
    with ema.applied(m):
        assert all(torch.equal(p, torch.full_like(p, 7.0)) for p in m.parameters())
    assert all(torch.equal(p, own[n]) for n, p in m.named_parameters())
    with pytest.raises(RuntimeError, match="boom"), ema.applied(m):
        raise RuntimeError("boom")
    assert all(torch.equal(p, own[n]) for n, p in m.named_parameters())
