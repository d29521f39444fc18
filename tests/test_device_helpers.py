"""Device-session helpers: a checkpoint's weights as a model folder; the per-motion camera evaluation."""

from __future__ import annotations

import json

import pytest
import torch

from repo_scripts import load_script


def test_ckpt_weights_exports_the_latest_checkpoint(tmp_path):
    from vist3a.models.anysplat import anysplat_mini

    m = load_script("scripts/device/ckpt_weights.py")
    old = anysplat_mini().state_dict()
    new = {k: v + 0.01 if v.is_floating_point() else v for k, v in old.items()}  # "trained" further
    (tmp_path / "checkpoints").mkdir()
    torch.save({"step": 5, "model": old}, tmp_path / "checkpoints" / "step_00000005.pt")
    torch.save({"step": 12, "model": new}, tmp_path / "checkpoints" / "step_00000012.pt")
    assert m.export(tmp_path, tmp_path / "out") == 12
    got = anysplat_mini(weights=tmp_path / "out").state_dict()
    key = next(k for k in got if k.endswith("qkv.weight"))  # a trained-size linear weight (tokens start ~0)
    torch.testing.assert_close(got[key].float(), new[key].half().float())  # fp16 folder of the later one
    assert not torch.equal(got[key].float(), old[key].half().float())


def test_recon_camera_eval_splits_by_motion_against_the_static_camera(tmp_path):
    m = load_script("benchmarks/recon_camera_eval.py")
    out = tmp_path / "cam.json"
    assert m.main(["shipped", "--frames", "3", "--context", "2", "--size", "56", "--scenes", "3", "--out", str(out)]) == 0
    res = json.loads(out.read_text())["runs"]["shipped"]
    from vist3a.train.mini_loop import MiniTrainConfig
    from vist3a.world.sample import make_sample

    seed = MiniTrainConfig(out=tmp_path, steps=1).eval_seed
    motions = [make_sample(i, seed, 3, 56, 3).trajectory.motion for i in range(3)]
    assert [r["motion"] for r in res["clips"]] == motions
    for r in res["clips"]:
        if r["motion"] in ("dolly", "truck"):  # no rotation: the static camera is exact
            assert r["rot_deg_static"] < 1e-3
    assert sum(v["clips"] for v in res["by_motion"].values()) == 3
    assert abs(res["mean"]["rot_deg"] - sum(r["rot_deg"] for r in res["clips"]) / 3) < 1e-9


def test_vae_colour_probe_scores_a_lossless_vae_perfectly():
    """A stand-in VAE that gives the true clip back: every object's colour is read right (the palette's promise)."""
    m = load_script("benchmarks/vae_colour_probe.py")

    class Lossless:
        def encode(self, video, sample=False):  # [1, 3, T, H, W] in [-1, 1] → mean colour of 8x8 blocks per frame
            self.video = video
            first = video[:, :, :1]
            rest = video[:, :, 1:].unflatten(2, (-1, 4)).mean(3)
            return torch.nn.functional.avg_pool3d(torch.cat([first, rest], 2), (1, 8, 8))

        def decode(self, raw):
            return self.video

    res = m.probe(Lossless(), scenes=6, seed=555, frames=(0, 6))
    for f in (0, 6):
        got = res["frames"][f]
        assert got["objects"] >= 6
        assert got["decoded_accuracy"] == 1.0
        assert all(set(row) == {c} for c, row in got["confusion"].items())  # the diagonal only
    assert res["reconstruction"]["psnr"] == 100.0  # exact (PSNR capped as in the VAE stage's evaluation)
    assert res["reconstruction"]["chroma_l1"] == 0.0


def _rot_y(deg: float) -> torch.Tensor:
    c, s = torch.cos(torch.deg2rad(torch.tensor(deg))), torch.sin(torch.deg2rad(torch.tensor(deg)))
    m = torch.eye(4)
    m[0, 0], m[0, 2], m[2, 0], m[2, 2] = c, s, -s, c
    m[0, 3] = deg / 100  # and a step along x
    return m


def test_camera_head_fit_scores_a_static_head_as_the_static_camera():
    """A head that puts every view at view 0 errs by exactly the static camera's rotation (10°, 20°, 30° → 20°)."""
    m = load_script("benchmarks/camera_head_fit.py")

    def static_head(layers):
        b, s = layers[-1].shape[:2]
        enc = torch.zeros(b, s, 9)
        enc[..., 6] = 1.0  # identity quaternion (xyzw)
        enc[..., 7:] = 1.0
        return [enc]

    c2w = torch.stack([torch.stack([_rot_y(a) for a in (0, 10, 20, 30)])] * 2)
    res = m.rotation_errors(static_head, {"tokens": torch.zeros(2, 4, 8), "c2w": c2w}, ["orbit", "pan"])
    assert abs(res["mean"]["rot_deg"] - 20.0) < 1e-3 and abs(res["mean"]["rot_deg_static"] - 20.0) < 1e-3
    assert set(res["by_motion"]) == {"orbit", "pan"} and res["by_motion"]["pan"]["clips"] == 1


def test_camera_head_fit_learns_poses_its_tokens_carry(tmp_path):
    """Fitting the head alone on tokens that carry the translation cuts the camera loss; the token cache is
    built once per key."""
    from vist3a.models.heads.camera_head import CameraHead

    m = load_script("benchmarks/camera_head_fit.py")
    torch.manual_seed(0)
    head = CameraHead(dim_in=32, trunk_depth=1, num_heads=2)
    tokens = torch.randn(64, 4, 32)
    enc = torch.zeros(64, 4, 9)
    enc[..., :3] = tokens[..., :3] / 2
    enc[..., 6] = 1.0
    enc[..., 7:] = 1.0
    with torch.no_grad():
        before = float(m.camera_loss(head, tokens, enc))
    curve = m.fit_head(head, {"tokens": tokens, "enc": enc}, steps=300, batch=16, lr=1e-3, seed=0, log_every=100)
    with torch.no_grad():
        after = float(m.camera_loss(head, tokens, enc))
    assert len(curve) == 3 and after < 0.3 * before, (before, after)

    calls = []

    def build():
        calls.append(1)
        return {"tokens": tokens[:2]}

    path = tmp_path / "tok.safetensors"
    first = m.cached(path, {"clips": 2}, build)
    again = m.cached(path, {"clips": 2}, build)
    assert len(calls) == 1 and torch.equal(first["tokens"], again["tokens"])
    m.cached(path, {"clips": 3}, build)  # a different key: built again
    assert len(calls) == 2


def test_camera_head_fit_refuses_to_save_a_stitched_head_trained_whole(tmp_path, capsys):
    """--train-all changes base weights a stitched checkpoint does not hold: refused before any work."""
    m = load_script("benchmarks/camera_head_fit.py")
    with pytest.raises(SystemExit) as exc:
        m.main(["--model", "stitched", "--train-all", "--save", str(tmp_path / "x")])
    assert exc.value.code == 2 and "drop --save" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
