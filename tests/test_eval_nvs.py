"""NVS evaluation (vist3a.eval.nvs, `vist3a eval nvs`): camera alignment, bookkeeping, end to end.

The key exact check: an oracle that finds each sequence's target frames by itself (from the index
map and the files on disk, not from the pipeline) scores PSNR inf / SSIM 1 on every image, so the
pipeline's choice of targets, their order, the file naming and the metric aggregation are exact.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vist3a.errors import InputError
from vist3a.eval.metrics import score_dir
from vist3a.eval.nvs import (
    ContextReconstruction,
    ModelPredictor,
    NVSModel,
    OraclePredictor,
    TargetPrediction,
    align_translation_scale,
    apply_similarity,
    load_predictor,
    load_re10k,
    pad_frames_1_plus_4k,
    run_nvs,
    similarity_from_cameras,
)
from vist3a.gaussians.cameras import Cameras, look_at
from vist3a.gaussians.gaussians import Gaussians

world_make = pytest.importorskip("vist3a.world.make")

SIZE = 56  # world frames = crop = reconstructor input: no resampling anywhere on the oracle path


def _random_rotation(gen: torch.Generator) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=gen, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    if torch.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _cameras(n: int, gen: torch.Generator, collinear: bool = False) -> torch.Tensor:
    """[n,4,4] c2w looking at the origin from random (or collinear) positions."""
    if collinear:
        eyes = torch.tensor([0.3, -0.2, 2.0], dtype=torch.float64) + torch.linspace(0, 1, n, dtype=torch.float64)[:, None] * torch.tensor([1.0, 0.5, 0.2], dtype=torch.float64)
    else:
        eyes = torch.randn(n, 3, generator=gen, dtype=torch.float64) + torch.tensor([0, 0, 3.0], dtype=torch.float64)
    up = torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64)
    return torch.stack([look_at(e, torch.zeros(3, dtype=torch.float64), up) for e in eyes])


def _relative_to_first(c2w: torch.Tensor) -> torch.Tensor:
    return torch.linalg.inv(c2w[0]) @ c2w


# ------------------------------------------------------------------------------------------------ alignment
def test_translation_scale_recovers_a_known_scale():
    gen = torch.Generator().manual_seed(0)
    world = _relative_to_first(_cameras(12, gen))  # frame 0 = identity in both runs, as AnySplat predicts
    s_true = 0.37
    run1_ctx = world[:9].clone()
    run2 = world.clone()
    run2[:, :3, 3] /= s_true  # run 2 sees the same scene at another scale
    aligned, s = align_translation_scale(run1_ctx, run2[:9], run2)
    assert s == pytest.approx(s_true, rel=1e-6)
    torch.testing.assert_close(aligned, world, atol=1e-12, rtol=0)


def test_translation_scale_is_the_ratio_of_component_means():
    # the official formula: mean over all x,y,z components, not over norms (METHOD §5.1 step 3)
    ref = torch.eye(4).repeat(2, 1, 1)
    ref[1, :3, 3] = torch.tensor([3.0, -1.0, 1.0])  # mean of components over both cameras = 0.5
    joint = torch.eye(4).repeat(2, 1, 1)
    joint[1, :3, 3] = torch.tensor([1.0, 1.0, 4.0])  # mean = 1.0; norms would give 3.317/4.243
    _, s = align_translation_scale(ref, joint, joint)
    assert s == pytest.approx(0.5)
    with pytest.raises(InputError, match="degenerate"):
        align_translation_scale(ref, torch.eye(4).repeat(2, 1, 1), joint)


@pytest.mark.parametrize("collinear", [False, True])
def test_similarity_recovers_a_known_transform(collinear):
    gen = torch.Generator().manual_seed(1)
    src = _cameras(8, gen, collinear)
    rot, s, t = _random_rotation(gen), 2.7, torch.tensor([0.4, -1.3, 5.0], dtype=torch.float64)
    dst = src.clone()
    dst[:, :3, :3] = rot @ src[:, :3, :3]
    dst[:, :3, 3] = s * src[:, :3, 3] @ rot.T + t
    sim = similarity_from_cameras(src, dst)
    assert sim.scale == pytest.approx(s, rel=1e-10)
    torch.testing.assert_close(sim.R, rot, atol=1e-10, rtol=0)
    torch.testing.assert_close(sim.t, t, atol=1e-9, rtol=0)
    torch.testing.assert_close(apply_similarity(sim, src), dst, atol=1e-9, rtol=0)
    # a camera that was not used for the fit maps the same way (the GT targets)
    extra = _cameras(1, gen)
    want = extra.clone()
    want[:, :3, :3] = rot @ extra[:, :3, :3]
    want[:, :3, 3] = s * extra[:, :3, 3] @ rot.T + t
    torch.testing.assert_close(apply_similarity(sim, extra), want, atol=1e-9, rtol=0)


def test_similarity_rejects_static_cameras():
    c = torch.eye(4, dtype=torch.float64).repeat(3, 1, 1)
    with pytest.raises(InputError, match="do not move"):
        similarity_from_cameras(c, c)


def test_pad_to_1_plus_4k_repeats_the_last_frame():
    x = torch.arange(8.0).view(8, 1)
    p, added = pad_frames_1_plus_4k(x)
    assert added == 1 and p.shape == (9, 1) and p[-1].item() == 7.0 and torch.equal(p[:8], x)
    assert pad_frames_1_plus_4k(torch.zeros(9, 2))[1] == 0
    assert pad_frames_1_plus_4k(torch.zeros(12, 2))[0].shape[0] == 13


# ------------------------------------------------------------------------------------------------ world data
@pytest.fixture(scope="module")
def re10k(tmp_path_factory) -> Path:
    """Three sequences of 12 frames at 56²; the third has a corrupt target frame (a bad scene)."""
    root = tmp_path_factory.mktemp("nvs") / "re10k"
    cfg = world_make.MakeConfig("re10k", str(root), scenes=3, frames=12, size=SIZE, seed=5, max_objects=2)
    world_make.make_dataset(cfg, workers=1, progress=False)
    seqs = (root / "re10k_test.txt").read_text().split()
    imap = json.loads((root / "re10k_indexmap.json").read_text())
    annos = json.loads((root / seqs[2] / "annotations.json").read_text())
    (root / annos[imap[seqs[2]][9]]["filepath"]).write_bytes(b"not a png")
    return root


class IndependentOracle:
    """Finds the targets itself: index-map positions 11, 10, 9, 8 (official) or the last four sorted
    (clean), read straight from the PNG files named in annotations.json."""

    name = "independent-oracle"
    input_size = crop_size = SIZE

    def __init__(self, root: Path, protocol: str, reverse: bool = False) -> None:
        self.root, self.protocol, self.reverse = root, protocol, reverse
        self.imap = json.loads((root / "re10k_indexmap.json").read_text())

    def predict(self, sample, cameras) -> TargetPrediction:  # noqa: ANN001
        seq = sample["scene"]
        ids = self.imap[seq]
        tgt = [ids[11], ids[10], ids[9], ids[8]]  # range(12)[::-1][:4] of nvs_eval.py
        if self.protocol == "clean":
            tgt = sorted(tgt)
        if self.reverse:
            tgt = tgt[::-1]
        annos = json.loads((self.root / seq / "annotations.json").read_text())
        frames = [np.asarray(Image.open(self.root / annos[i]["filepath"]).convert("RGB")) for i in tgt]
        return TargetPrediction(torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255)


@pytest.mark.parametrize("protocol", ["official", "clean"])
def test_oracle_scores_exactly_and_bad_scene_is_counted(re10k, tmp_path, protocol):
    oracle = IndependentOracle(re10k, protocol)
    ds = load_re10k(f"re10k:{re10k}", oracle, protocol)
    run = run_nvs(oracle, ds, tmp_path / "out", progress=False)
    seqs = (re10k / "re10k_test.txt").read_text().split()
    assert run.evaluated == seqs[:2]
    assert list(run.skipped) == [seqs[2]] and run.num_skipped == 1
    summary = json.loads((tmp_path / "out" / "nvs_run.json").read_text())
    assert summary["evaluated"] == 2 and summary["skipped"] == 1 and seqs[2] in summary["skipped_scenes"]
    for seq in seqs[:2]:
        names = sorted(p.name for p in (tmp_path / "out" / seq / "pred").iterdir())
        assert names == [f"{k:06d}.png" for k in range(4)]
    score = score_dir(tmp_path / "out", progress=False)
    assert score.n_images == 8 and score.n_identical_images == 8
    assert math.isinf(score.overall.psnr) and score.overall.ssim == pytest.approx(1.0, abs=1e-6)
    if protocol == "official":  # negative control: the targets in the wrong order are not exact
        wrong = IndependentOracle(re10k, protocol, reverse=True)
        run_nvs(wrong, ds, tmp_path / "wrong", progress=False)
        bad = score_dir(tmp_path / "wrong", progress=False)
        assert math.isfinite(bad.overall.psnr) and bad.n_identical_images < 8


def test_cli_oracle_and_out_checks(re10k, tmp_path, capsys):
    from vist3a.cli import main

    out = tmp_path / "cli"
    args = ["eval", "nvs", "--model", "oracle", "--dataset", f"re10k:{re10k}", "--out", str(out),
            "--size", str(SIZE), "--no-lpips", "--no-progress", "--limit", "1"]  # fmt: skip
    assert main(args) == 0
    overall = json.loads((out / "metrics_overall.json").read_text())
    assert overall["PSNR"] == "inf" and overall["samples"] == 1 and overall["identical_images"] == 4
    assert main(args) == 1  # not empty
    assert "not empty" in capsys.readouterr().err
    assert main([*args[:5], "dl3dv:/nowhere", *args[6:]]) == 1
    assert "re10k:ROOT" in capsys.readouterr().err


class FailsOn(OraclePredictor):
    """The oracle, except that it raises on the named sequences (a model / renderer failure)."""

    def __init__(self, bad: set[str]) -> None:
        super().__init__(SIZE, SIZE)
        self.bad = bad

    def predict(self, sample, cameras):  # noqa: ANN001
        if sample["scene"] in self.bad:
            raise RuntimeError("CUDA out of memory (simulated)")
        return super().predict(sample, cameras)


def test_failing_scenes_are_skipped_and_counted(re10k, tmp_path):
    seqs = (re10k / "re10k_test.txt").read_text().split()
    pred = FailsOn({seqs[0]})
    ds = load_re10k(f"re10k:{re10k}", pred, "official")
    run = run_nvs(pred, ds, tmp_path / "a", progress=False)
    assert run.evaluated == [seqs[1]] and set(run.skipped) == {seqs[0], seqs[2]}
    assert "out of memory" in run.skipped[seqs[0]] and not (tmp_path / "a" / seqs[0]).exists()
    every = FailsOn(set(seqs))
    with pytest.raises(InputError, match="no sequence could be evaluated"):
        run_nvs(every, ds, tmp_path / "b", progress=False)
    assert json.loads((tmp_path / "b" / "nvs_run.json").read_text())["skipped"] == 3
    with pytest.raises(InputError, match="unknown model"):
        load_predictor("no-such-model")


# ------------------------------------------------------------------------------------------------ protocol plumbing
class ScaledTruth(NVSModel):
    """A fake reconstructor that 'predicts' the ground-truth cameras relative to the first context view,
    at scale ``a`` in run 1 and ``b`` in the joint pass, optionally padding the context like the VAE path."""

    name = "scaled-truth"
    input_size = crop_size = SIZE

    def __init__(self, c2w_all: torch.Tensor, K: torch.Tensor, a: float, b: float, pad: bool) -> None:
        self.rel = _relative_to_first(c2w_all.double()).float()
        self.K, self.a, self.b, self.pad = K, a, b, pad
        self.calls: list[int] = []

    def _cams(self, idx: list[int], s: float) -> Cameras:
        c = self.rel[idx].clone()
        c[:, :3, 3] *= s
        return Cameras(c, self.K[idx], SIZE, SIZE)

    def context(self, crops, images):  # noqa: ANN001
        idx = list(range(images.shape[0])) + ([images.shape[0] - 1] if self.pad else [])
        self.calls.append(len(idx))
        g = Gaussians(torch.zeros(1, 3) + torch.tensor([0, 0, 5.0]), torch.tensor([[1.0, 0, 0, 0]]),
                      torch.full((1, 3), 0.1), torch.ones(1), torch.ones(1, 1, 3))  # fmt: skip
        return ContextReconstruction(g, self._cams(idx, self.a), len(idx))

    def joint(self, ctx_crops, ctx_images, tgt_crops, tgt_images):  # noqa: ANN001
        n = ctx_images.shape[0]
        idx = list(range(n)) + ([n - 1] if self.pad else []) + list(range(n, n + tgt_images.shape[0]))
        self.calls.append(len(idx))
        return self._cams(idx, self.b)


@pytest.mark.parametrize("pad", [False, True])
def test_predicted_and_gt_target_cameras(re10k, pad):
    ds = load_re10k(f"re10k:{re10k}", OraclePredictor(SIZE, SIZE), "official")
    sample = ds[0]
    cams = sample["feedforward_cameras"]
    model = ScaledTruth(cams.c2w, cams.K, a=0.5, b=3.0, pad=pad)
    want = model.rel[8:].clone()
    want[:, :3, 3] *= 0.5  # the targets in run 1's frame and scale
    pred = ModelPredictor(model, backend="torch").predict(sample, "predicted")
    assert model.calls == ([9, 13] if pad else [8, 12])
    assert pred.images.shape == (4, 3, SIZE, SIZE)
    assert pred.info["scale"] == pytest.approx(0.5 / 3.0, rel=1e-5)
    torch.testing.assert_close(pred.cameras.c2w, want, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(pred.cameras.K, cams.K[8:])
    gt = ModelPredictor(model, backend="torch").predict(sample, "gt")
    assert gt.info["scale"] == pytest.approx(0.5, rel=1e-4)
    torch.testing.assert_close(gt.cameras.c2w, want, atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------------------------------------ real mini models
def test_mini_models_end_to_end(re10k, tmp_path, monkeypatch):
    """anysplat-mini (predicted cameras) and stitched-mini (GT cameras) with random weights: plumbing only."""
    (tmp_path / "trimmed").mkdir()
    monkeypatch.setenv("VIST3A_MINI_ASSETS", str(tmp_path / "trimmed"))  # no shipped set: random weights
    for model, cameras in (("anysplat-mini", "predicted"), ("stitched-mini", "gt")):
        torch.manual_seed(0)
        pred = load_predictor(model, "cpu", input_size=SIZE, backend="torch")
        assert (pred.input_size, pred.crop_size) == (56, 64)
        ds = load_re10k(f"re10k:{re10k}", pred, "official")
        out = tmp_path / model
        run = run_nvs(pred, ds, out, cameras=cameras, limit=1, progress=False)
        assert len(run.evaluated) == 1 and not run.skipped, run.skipped
        assert math.isfinite(run.scales[run.evaluated[0]])
        seq = out / run.evaluated[0]
        gt = np.asarray(Image.open(seq / "gt" / "000000.png"))
        assert gt.shape == (SIZE, SIZE, 3) and (seq / "pred" / "000003.png").is_file()
        score = score_dir(out, progress=False)
        assert score.n_images == 4 and math.isfinite(score.overall.psnr)


@pytest.mark.gpu
@pytest.mark.parametrize("model", ["anysplat-mini", "stitched-mini"])
def test_mini_end_to_end_cuda(re10k, tmp_path, model):
    """On CUDA at the mini preset's own size (224², gsplat when installed): one sequence, both camera modes."""
    torch.manual_seed(0)
    pred = load_predictor(model, "cuda")
    assert (pred.input_size, pred.crop_size) == (224, 256)
    ds = load_re10k(f"re10k:{re10k}", pred, "official")
    for cameras in ("predicted", "gt"):
        out = tmp_path / cameras
        run = run_nvs(pred, ds, out, cameras=cameras, limit=2, progress=False)
        assert run.evaluated, run.skipped
        score = score_dir(out, progress=False)
        assert score.n_images == 4 * len(run.evaluated) and math.isfinite(score.overall.psnr)
        gt = np.asarray(Image.open(out / run.evaluated[0] / "gt" / "000000.png"))
        assert gt.shape == (224, 224, 3)


def test_mini_presets_default_to_the_shipped_weights():
    """`vist3a eval nvs --model anysplat-mini|stitched-mini` evaluates the shipped set unless told otherwise."""
    from vist3a import registry
    from vist3a.mini_assets import shipped_folder

    if shipped_folder("anysplat-mini") is None or shipped_folder("stitched-mini") is None:
        pytest.skip("this install carries no shipped mini set")
    want = registry.build("anysplat-mini").state_dict()
    key = "encoder.aggregator.frame_blocks.0.attn.qkv.weight"
    got = load_predictor("anysplat-mini", "cpu", backend="torch").model.model.state_dict()
    torch.testing.assert_close(got[key], want[key], rtol=0, atol=0)
    rand = load_predictor("anysplat-mini", "cpu", "random", backend="torch").model.model.state_dict()
    assert not torch.equal(rand[key], want[key])
    stitched = load_predictor("stitched-mini", "cpu", backend="torch").model
    vae = registry.build("wan-mini", components=("vae",)).vae.state_dict()
    for k, v in stitched.video.vae.state_dict().items():
        torch.testing.assert_close(v, vae[k], rtol=0, atol=0)
    assert stitched.decoder.lora is not None  # the trained decoder, not a fresh stitching layer
