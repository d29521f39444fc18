"""The streaming least-squares layer search, checked against planted convolutions and one-shot lstsq."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from vist3a.errors import CheckpointError, InputError
from vist3a.stitching.lstsq import im2col
from vist3a.stitching.search import LayerSearch, load_init
from vist3a.stitching.spec import ConvSpec, apply_stitching_layer, parse_spec, upsample_latent_time

SPEC = "conv3d_k3x3x3_o6_s1x2x2_p1x1x1"  # C=4 -> d = 108 (+1 intercept); 16x16 latents -> 8x8 tokens
C, T_LAT, H = 4, 2, 16  # upsampled to T = 5 frames
LAYERS = ["enc_blocks_1", "enc_blocks_2", "enc_blocks_3"]


def _known_conv(spec: str | ConvSpec, seed: int = 1) -> torch.nn.Module:
    torch.manual_seed(seed)
    conv = parse_spec(spec).build(C).double()
    with torch.no_grad():
        conv.bias.normal_(0, 1.0)  # a real intercept to recover
    return conv


def _clip_batches(n_batches: int, batch: int, seed: int, offset: float = 0.0, t_lat: int = T_LAT):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n_batches):
        # latents with a non-zero mean, like raw VAE latents
        z = torch.randn(batch, C, t_lat, H, H, generator=g, dtype=torch.float64) + offset
        yield z, g


def _planted_tokens(conv, z, g, noise=(None, 0.01, 0.5), time_factor=4):
    """enc_blocks_2 = conv + small noise; enc_blocks_1 = unrelated; enc_blocks_3 = conv + large noise."""
    with torch.no_grad():
        y = apply_stitching_layer(conv, z, time_factor)  # B, T, h, w, D
    b, t, h, w, d = y.shape
    taps = {}
    for name, sigma in zip(LAYERS, noise, strict=True):
        if sigma is None:
            taps[name] = torch.randn(y.shape, generator=g, dtype=torch.float64)
        else:
            taps[name] = y + sigma * torch.randn(y.shape, generator=g, dtype=torch.float64)
        taps[name] = taps[name].reshape(b, t, h * w, d)  # the hook layout [B, T, h*w, D]
    return taps


def test_im2col_rows_reproduce_the_convolution():
    """im2col's row/column order matches torch's conv (replicate and zero padding, stride, dilation)."""
    x = torch.randn(2, 3, 5, 9, 8, dtype=torch.float64)
    for text in ["conv3d_k3x3x3_o4_s1x2x2_p1x1x1", "conv3d_k5x3x2_o4_s2x1x3_p2x0x1_d1x2x1"]:
        for mode in ("replicate", "zeros"):
            spec = ConvSpec(**{**parse_spec(text).__dict__, "padding_mode": mode})
            conv = spec.build(3).double()
            rows = im2col(x, spec)
            pred = rows @ conv.weight.reshape(4, -1).T + conv.bias
            ref = conv(x).permute(0, 2, 3, 4, 1).reshape(-1, 4)
            torch.testing.assert_close(pred, ref)


@pytest.mark.parametrize("time_factor", [4, 1])
def test_search_recovers_the_planted_layer_and_weights(time_factor):
    """Planted: enc_blocks_2 = known conv + noise σ=0.01. With Wan's 4x temporal upsampling the frames
    between two latent frames are linear blends, so temporal taps are nearly collinear and only the
    prediction is pinned down; without upsampling (time_factor 1) the weights themselves are recovered."""
    conv = _known_conv(SPEC)
    search = LayerSearch(SPEC, LAYERS, ridge=1e-6, time_factor=time_factor)
    t_lat = 2 if time_factor == 4 else 5  # 5 frames either way
    for split, n, seed in (("train", 6, 10), ("val", 3, 11)):
        for z, g in _clip_batches(n, 2, seed=seed, offset=0.5, t_lat=t_lat):
            search.update(z, _planted_tokens(conv, z, g, time_factor=time_factor), split=split)
    report = search.report()
    assert report.best_layer == "enc_blocks_2"
    assert report.selected_by == "val_mse" and report.train_clips == 12 and report.val_clips == 6
    scores = {r.layer: r for r in report.layers}
    # the noise variance is 1e-4: the held-out MSE of the planted layer sits at the noise floor
    assert scores["enc_blocks_2"].val_mse == pytest.approx(1e-4, rel=0.25)
    assert scores["enc_blocks_2"].val_r2 > 0.999
    assert scores["enc_blocks_3"].val_mse == pytest.approx(0.25, rel=0.25)
    assert scores["enc_blocks_1"].val_r2 < 0.05  # unrelated tokens: nothing linear to find
    assert scores["enc_blocks_1"].train_mse < scores["enc_blocks_1"].val_mse  # overfitting shows in-sample
    state = search.layer_state_dict("enc_blocks_2")
    rel = lambda a, b: float((a - b).norm() / b.norm())
    with torch.no_grad():
        weight, bias = conv.weight.detach(), conv.bias.detach()
        fitted = search.build_layer("enc_blocks_2").double()
        z, _ = next(_clip_batches(1, 2, seed=12, offset=0.5, t_lat=t_lat))
        y_fit = apply_stitching_layer(fitted, z, time_factor)
        y_ref = apply_stitching_layer(conv, z, time_factor)
    assert rel(y_fit, y_ref) < 0.01  # the fitted layer predicts the clean tokens
    assert rel(state["bias"].double(), bias) < 0.02
    if time_factor == 1:
        assert rel(state["weight"].double(), weight) < 0.02
    assert [r.depth for r in report.layers] == [1, 2, 3]


def test_padding_convention_matters_and_the_layers_own_padding_wins():
    """Data made by a replicate-padded conv: fitting with zero-padded patches (the official fit's
    convention) is measurably worse than fitting with the layer's own replicate padding."""
    conv = _known_conv(SPEC)
    zero_spec = ConvSpec(**{**parse_spec(SPEC).__dict__, "padding_mode": "zeros"})
    searches = {
        "replicate": LayerSearch(SPEC, ["tap"], ridge=1e-6),
        "zeros": LayerSearch(zero_spec, ["tap"], ridge=1e-6),
    }
    for split, seed in (("train", 20), ("val", 21)):
        for z, g in _clip_batches(4, 2, seed=seed, offset=2.0):  # a large mean makes the border visible
            taps = {"tap": _planted_tokens(conv, z, g, noise=(None, 0.01, 0.5))["enc_blocks_2"]}
            for s in searches.values():
                s.update(z, taps, split=split)
    mse = {k: s.report().layers[0].val_mse for k, s in searches.items()}
    assert mse["replicate"] == pytest.approx(1e-4, rel=0.25)
    assert mse["zeros"] > 5 * mse["replicate"]


def test_streaming_equals_one_shot_ridge_lstsq():
    """Moments accumulated over uneven batches give the same W, b and MSE as one lstsq on all rows."""
    ridge = 0.3
    conv = _known_conv(SPEC)
    search = LayerSearch(SPEC, LAYERS, ridge=ridge)
    xs, ys, xv, yv = [], [], [], []
    spec = parse_spec(SPEC)
    for split, sizes, seed in (("train", (1, 3, 2), 30), ("val", (2, 1), 31)):
        g = torch.Generator().manual_seed(seed)
        for b in sizes:
            z = torch.randn(b, C, T_LAT, H, H, generator=g, dtype=torch.float64) + 0.3
            taps = _planted_tokens(conv, z, g, noise=(None, 0.1, 0.5))
            search.update(z.float(), {k: v.float() for k, v in taps.items()}, split=split)
            x = im2col(upsample_latent_time(z.float().double()), spec)
            (xs if split == "train" else xv).append(x)
            (ys if split == "train" else yv).append(taps["enc_blocks_2"].float().double().reshape(-1, 6))
    x, y = torch.cat(xs), torch.cat(ys)
    n, d = x.shape
    # ridge with an unpenalised intercept as one augmented least-squares problem
    a = torch.cat(
        [
            torch.cat([x, torch.ones(n, 1, dtype=x.dtype)], 1),
            torch.cat([ridge**0.5 * torch.eye(d), torch.zeros(d, 1)], 1).double(),
        ]
    )
    rhs = torch.cat([y, torch.zeros(d, 6, dtype=y.dtype)])
    sol = torch.linalg.lstsq(a, rhs, driver="gelsd").solution
    w_ref, b_ref = sol[:d], sol[d]
    w, b = search.fit()["enc_blocks_2"]
    torch.testing.assert_close(w, w_ref, rtol=1e-8, atol=1e-9)
    torch.testing.assert_close(b, b_ref, rtol=1e-8, atol=1e-9)
    row = search.report().layers[1]
    xv_, yv_ = torch.cat(xv), torch.cat(yv)
    train_mse = float(((x @ w_ref + b_ref - y) ** 2).mean())
    val_mse = float(((xv_ @ w_ref + b_ref - yv_) ** 2).mean())
    val_r2 = 1 - float(((xv_ @ w_ref + b_ref - yv_) ** 2).sum() / ((yv_ - yv_.mean(0)) ** 2).sum())
    assert row.train_mse == pytest.approx(train_mse, rel=1e-9)
    assert row.val_mse == pytest.approx(val_mse, rel=1e-9)
    assert row.val_r2 == pytest.approx(val_r2, rel=1e-9)
    assert row.train_rows == n and row.val_rows == xv_.shape[0]


def test_memory_does_not_grow_with_clips():
    conv = _known_conv(SPEC)
    search = LayerSearch(SPEC, LAYERS)
    batches = list(_clip_batches(5, 2, seed=40))
    z, g = batches[0]
    search.update(z, _planted_tokens(conv, z, g))
    search.update(z, _planted_tokens(conv, z, g), split="val")
    shapes_one = search.accumulator_shapes()
    for z, g in batches[1:]:
        search.update(z, _planted_tokens(conv, z, g))
        search.update(z, _planted_tokens(conv, z, g), split="val")
    assert search.accumulator_shapes() == shapes_one
    d = C * 27
    assert shapes_one["train/xtx"] == (d, d) and shapes_one["val/enc_blocks_2/xty"] == (d, 6)
    assert len(shapes_one) == 2 * (2 + 3 * len(LAYERS))
    held = sum(torch.Size(s).numel() for s in shapes_one.values())
    assert held == 2 * (d * d + d + len(LAYERS) * (d * 6 + 12))


def test_merged_searches_equal_one_search():
    """Moments from two workers, merged, equal one search over all clips (multi-process extraction)."""
    conv = _known_conv(SPEC)
    whole, first, second = (LayerSearch(SPEC, LAYERS) for _ in range(3))
    for i, (z, g) in enumerate(_clip_batches(4, 1, seed=45)):
        taps = _planted_tokens(conv, z, g)
        split = "val" if i == 3 else "train"
        whole.update(z, taps, split=split)
        (first if i < 2 else second).update(z, taps, split=split)
    first.merge(second)
    for name in LAYERS:
        torch.testing.assert_close(first.fit()[name][0], whole.fit()[name][0])
    merged, ref = first.report(), whole.report()
    assert merged.best_layer == ref.best_layer and (merged.train_clips, merged.val_clips) == (3, 1)
    for a, b in zip(merged.layers, ref.layers, strict=True):
        assert (a.train_rows, a.val_rows) == (b.train_rows, b.val_rows)
        assert a.train_mse == pytest.approx(b.train_mse, rel=1e-9) and a.val_mse == pytest.approx(
            b.val_mse, rel=1e-9
        )
    with pytest.raises(InputError, match="same spec"):
        first.merge(LayerSearch(SPEC, LAYERS[:2]))


def test_conv2d_spec_and_token_layouts_agree():
    """A per-frame conv2d is recovered, and [B,T,h,w,D] tokens give the same fit as [B,T,h*w,D]."""
    spec = "conv2d_k3_o6_s2_p1"
    conv = _known_conv(spec)
    flat, grid = LayerSearch(spec, ["a"], ridge=1e-6), LayerSearch(spec, ["a"], ridge=1e-6)
    for z, g in _clip_batches(3, 2, seed=50):
        y = apply_stitching_layer(conv, z) + 0.01 * torch.randn(
            2, 5, 8, 8, 6, generator=g, dtype=torch.float64
        )
        grid.update(z, {"a": y})
        flat.update(z, {"a": y.reshape(2, 5, 64, 6)})
    torch.testing.assert_close(grid.fit()["a"][0], flat.fit()["a"][0])
    weight = grid.layer_state_dict("a")["weight"].double()
    ref = conv.weight.detach()
    assert float((weight - ref).norm() / ref.norm()) < 0.02


def test_update_rejects_bad_input():
    search = LayerSearch(SPEC, ["a", "b"])
    z = torch.randn(1, C, T_LAT, H, H)
    good = torch.randn(1, 5, 64, 6)
    with pytest.raises(InputError, match=r"missing \['b'\]"):
        search.update(z, {"a": good})
    with pytest.raises(InputError, match="split must be"):
        search.update(z, {"a": good, "b": good}, split="test")
    with pytest.raises(InputError, match=r"tokens of b: .*try conv3d_k3x3x3_o6_s1x4x4_p1x1x1"):
        search.update(z, {"a": good, "b": torch.randn(1, 5, 16, 6)})  # a 4x4 grid needs stride 4
    with pytest.raises(InputError, match="outputs 6 channels but the tokens are 7-d"):
        search.update(z, {"a": good, "b": torch.randn(1, 5, 64, 7)})
    with pytest.raises(InputError, match=r"\[B, C, T', h, w\]"):
        search.update(z[0], {"a": good, "b": good})
    bad = good.clone()
    bad[0, 1, 2, 3] = float("nan")
    with pytest.raises(InputError, match="tokens of b contain NaN"):
        search.update(z, {"a": good, "b": bad})
    assert search.in_channels is None and not search.accumulator_shapes()  # nothing half-added
    search.update(z, {"a": good, "b": good})
    with pytest.raises(InputError, match="earlier batches had 4"):
        search.update(torch.randn(1, 3, T_LAT, H, H), {"a": good, "b": good})
    with pytest.raises(InputError, match="conv1d"):
        LayerSearch("conv1d_k3_o6", ["a"])
    with pytest.raises(InputError, match="no training clips"):
        LayerSearch(SPEC, ["a"]).fit()


def test_save_writes_inits_report_and_plot(tmp_path):
    from PIL import Image

    conv = _known_conv(SPEC)
    search = LayerSearch(SPEC, LAYERS, ridge=1e-6)
    for split, seed in (("train", 60), ("val", 61)):
        for z, g in _clip_batches(3, 2, seed=seed):
            search.update(z, _planted_tokens(conv, z, g), split=split)
    paths = search.save(tmp_path / "out")
    report = json.loads(paths["report_json"].read_text())
    assert report["best_layer"] == "enc_blocks_2" and report["spec"] == SPEC and report["design_dim"] == 108
    lines = paths["report_csv"].read_text().splitlines()
    assert lines[0].startswith("layer,depth,train_mse") and len(lines) == 4 and lines[2].endswith(",1")
    with Image.open(paths["plot"]) as img:
        assert img.format == "PNG" and img.size[0] > 100
    state, meta = load_init(tmp_path / "out" / "init_enc_blocks_2.safetensors")
    assert meta["spec"] == SPEC and meta["layer"] == "enc_blocks_2"
    layer = parse_spec(meta["spec"]).build(C)
    layer.load_state_dict(state)  # loads into the layer the spec builds
    z, _ = next(_clip_batches(1, 1, seed=62))
    with torch.no_grad():
        pred = apply_stitching_layer(layer, z.float())
        ref = apply_stitching_layer(conv, z)
    assert float((pred.double() - ref).pow(2).mean()) < 1e-3
    # the official format (torch.save of a conv state dict, optionally wrapped) loads too
    torch.save({"state_dict": state}, tmp_path / "state_dict_enc_blocks_2.pt")
    assert torch.equal(load_init(tmp_path / "state_dict_enc_blocks_2.pt")[0]["weight"], state["weight"])
    torch.save({"weight": state["weight"]}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="exactly 'weight' and 'bias'"):
        load_init(tmp_path / "bad.pt")


def test_zero_padding_rows_match_torch_zero_padding():
    """Sanity of the zero-padding path used in the padding test: it equals F.conv3d's zero padding."""
    spec = ConvSpec(3, 2, (3, 3, 3), padding=(1, 1, 1), padding_mode="zeros")
    x = torch.randn(1, 2, 4, 5, 5, dtype=torch.float64)
    w = torch.randn(2, 2, 3, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(
        im2col(x, spec) @ w.reshape(2, -1).T, F.conv3d(x, w, padding=1).permute(0, 2, 3, 4, 1).reshape(-1, 2)
    )


# ------------------------------------------------------------------------------------------- the command
def _write_clips(root, n_scenes: int, n_frames: int, size: int = 40, dl3dv: bool = False):
    """Scenes of smoothly moving colour fields: ``root/scene_i/000.png`` or DL3DV's ``root/1K/scene_i/images_4/``."""
    from PIL import Image

    g = torch.Generator().manual_seed(7)
    for s in range(n_scenes):
        d = root / "1K" / f"scene_{s}" / "images_4" if dl3dv else root / f"scene_{s}"
        d.mkdir(parents=True)
        base = F.interpolate(torch.rand(1, 3, 4, 4, generator=g), size=(size, size + 8), mode="bilinear")
        for f in range(n_frames):
            frame = torch.roll(base, shifts=f, dims=-1)[0].permute(1, 2, 0)
            name = f"frame_{f + 1:05d}.png" if dl3dv else f"{f:03d}.png"
            Image.fromarray((frame * 255).byte().numpy()).save(d / name)


class _FakeVideo(torch.nn.Module):
    """A stand-in video VAE with Wan's geometry: 16 channels, 4x causal time, 8x space."""

    temporal_ratio = 4

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Conv3d(3, 16, 1)

    def check_num_frames(self, n: int) -> None:
        if (n - 1) % 4:
            raise InputError(f"{n} frames is not 1+4k")

    def latent_shape(self, b: int, t: int, h: int, w: int) -> tuple[int, ...]:
        return (b, 16, 1 + (t - 1) // 4, h // 8, w // 8)

    def encode(self, video: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.proj(F.avg_pool3d(video[:, :, ::4], (1, 8, 8)))


def _tiny_recon():
    """An AnySplat-shaped object around a real (tiny) VGGT aggregator with its DINO: only what the search uses."""
    from types import SimpleNamespace

    from vist3a.models.aggregator import Aggregator

    torch.manual_seed(0)
    agg = Aggregator(img_size=56, embed_dim=32, depth=1, num_heads=2, dino_depth=3, dino_num_heads=2)
    config = SimpleNamespace(dino_depth=3, patch_size=14, image_size=56, embed_dim=32)
    return SimpleNamespace(encoder=SimpleNamespace(aggregator=agg.eval()), config=config)


def test_recon_taps_match_the_full_forward():
    """The truncated DINO run of the search gives the same taps as the aggregator's own forward."""
    from vist3a.commands.stitch import default_layers, recon_taps

    recon = _tiny_recon()
    assert default_layers(recon) == ["enc_blocks_1", "enc_blocks_2", "enc_blocks_3"]
    images = torch.rand(1, 2, 3, 56, 56, generator=torch.Generator().manual_seed(0))
    taps = recon_taps(recon, images, ["enc_blocks_1", "enc_blocks_3"])
    with torch.no_grad():
        ref = recon.encoder.aggregator(images, taps=["enc_blocks_1", "enc_blocks_3"]).taps
    for name in ("enc_blocks_1", "enc_blocks_3"):
        assert taps[name].shape == (1, 2, 16, 32)
        torch.testing.assert_close(taps[name], ref[name])


def test_split_indices_keep_scenes_apart():
    from vist3a.commands.stitch import split_indices

    g = torch.Generator().manual_seed(0)
    s = split_indices(10, 6, 3, g)
    assert len(s["train"]) == 6 and len(s["val"]) == 3 and not set(s["train"]) & set(s["val"])
    s = split_indices(3, 8, 4, g)  # fewer scenes than clips: cycle, still disjoint
    assert len(s["train"]) == 8 and len(s["val"]) == 4 and not set(s["train"]) & set(s["val"])
    with pytest.raises(InputError, match="at least 2 scenes"):
        split_indices(1, 2, 1, g)


def _search_argv(clips, out, spec="conv3d_k3x3x3_o32_s1x2x2_p1x1x1", video="fake-video", recon="fake-recon"):
    return [
        "stitch", "search", "--video", video, "--recon", recon, "--dataset", f"frames:{clips}",
        "--spec", spec, "--out", str(out), "--clips", "2", "--val-clips", "1", "--frames", "5",
        "--recon-resolution", "56", "--device", "cpu",
    ]  # fmt: skip


def test_stitch_search_command(tmp_path, capsys, monkeypatch):
    """`vist3a stitch search` wiring: data -> encode -> taps -> search -> files, with tiny stand-in models."""
    from PIL import Image

    import vist3a.commands.stitch as cmd
    from vist3a.cli import main

    fakes = {"fake-video": _FakeVideo(), "fake-recon": _tiny_recon()}
    monkeypatch.setattr(cmd, "_build", lambda preset, device, weights, **kw: fakes[preset])
    _write_clips(tmp_path / "clips", n_scenes=3, n_frames=5)
    out = tmp_path / "search"
    assert main(_search_argv(tmp_path / "clips", out)) == 0
    text = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert [r["layer"] for r in report["layers"]] == ["enc_blocks_1", "enc_blocks_2", "enc_blocks_3"]
    assert f"best stitching layer: {report['best_layer']}" in text
    assert report["train_clips"] == 2 and report["val_clips"] == 1 and report["in_channels"] == 16
    assert report["layers"][0]["train_rows"] == 2 * 5 * 4 * 4  # clips x frames x 4x4 tokens
    state, meta = load_init(out / "init_enc_blocks_1.safetensors")
    assert state["weight"].shape == (32, 16, 3, 3, 3) and meta["layer"] == "enc_blocks_1"
    with Image.open(out / "mse_vs_depth.png") as img:
        assert img.format == "PNG"
    # the DL3DV loader (with its own 56² feedforward crop) feeds the same pipeline
    _write_clips(tmp_path / "dl3dv", n_scenes=3, n_frames=6, dl3dv=True)
    argv = _search_argv(tmp_path / "dl3dv", tmp_path / "search_dl3dv")
    argv[argv.index("--dataset") + 1] = f"dl3dv:{tmp_path / 'dl3dv'}"
    assert main([*argv, "--window", "6", "--protocol", "official", "--no-plot"]) == 0
    assert json.loads((tmp_path / "search_dl3dv" / "report.json").read_text())["train_clips"] == 2
    capsys.readouterr()
    # a spec that does not fit the two models fails with one line naming a spec that would
    assert main(_search_argv(tmp_path / "clips", out, spec="conv3d_k3x3x3_o32_p1x1x1")) == 1
    assert "try conv3d_k3x3x3_o32_s1x2x2_p1x1x1" in capsys.readouterr().err
    argv = _search_argv(tmp_path / "clips", out)
    argv[argv.index("--frames") + 1] = "6"
    assert main(argv) == 1
    assert "--frames must be 1+4k" in capsys.readouterr().err
    assert main([*_search_argv(tmp_path / "clips", out), "--layers", "enc_blocks_1,enc_blocks_9"]) == 1
    assert "unknown DINO tap 'enc_blocks_9'" in capsys.readouterr().err
    argv = _search_argv(tmp_path / "clips", out)
    argv[argv.index("--dataset") + 1] = "nope:/x"
    assert main(argv) == 1
    assert "KIND:ROOT" in capsys.readouterr().err


@pytest.mark.slow
def test_stitch_search_command_on_mini_presets(tmp_path, capsys):
    """End to end on the real mini presets (random weights): wan-mini VAE and anysplat-mini."""
    from vist3a.cli import main

    _write_clips(tmp_path / "clips", n_scenes=3, n_frames=5)
    argv = _search_argv(
        tmp_path / "clips", tmp_path / "out", "conv3d_k3x3x3_o192_s1x2x2_p1x1x1", "wan-mini", "anysplat-mini"
    )
    assert main([*argv, "--layers", "enc_blocks_1,enc_blocks_2"]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["best_layer"] in ("enc_blocks_1", "enc_blocks_2") and report["in_channels"] == 16


@pytest.mark.gpu
def test_search_on_cuda_matches_cpu():
    """Accumulating on the GPU (float64, half-precision tokens as under bf16 autocast) gives the CPU result."""
    conv = _known_conv(SPEC)
    cpu, gpu = LayerSearch(SPEC, LAYERS), LayerSearch(SPEC, LAYERS, device="cuda")
    for split, seed in (("train", 70), ("val", 71)):
        for z, g in _clip_batches(3, 2, seed=seed, offset=0.5):
            taps = {k: v.half() for k, v in _planted_tokens(conv, z, g).items()}
            cpu.update(z.float(), taps, split=split)
            gpu.update(z.float().cuda(), {k: v.cuda() for k, v in taps.items()}, split=split)
    for name in LAYERS:
        w_cpu, b_cpu = cpu.fit()[name]
        w_gpu, b_gpu = gpu.fit()[name]
        torch.testing.assert_close(w_gpu.cpu(), w_cpu, rtol=1e-6, atol=1e-8)
        torch.testing.assert_close(b_gpu.cpu(), b_cpu, rtol=1e-6, atol=1e-8)
    assert gpu.report().best_layer == cpu.report().best_layer == "enc_blocks_2"
