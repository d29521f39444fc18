"""``vist3a generate`` end to end on a tiny random pipeline folder: the bundle per prompt, safe and
distinct folders, clear errors, the default mini model, and prompt sharding across ranks (in process,
and under real torchrun with 2 gloo CPU processes: ``-m slow``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import pytest
import torch

from vist3a.cli import main
from vist3a.gaussians.cameras import Cameras
from vist3a.gaussians.formats import load_scene
from vist3a.pipelines.loading import tiny_pipeline

TIMINGS = {"text_encoding_s", "denoising_s", "vae_decode_s", "stitched_decode_s", "export_s", "total_s"}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # far faster than 2 contended threads for these small ops
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return tiny_pipeline(seed=0).save_pretrained(tmp_path_factory.mktemp("pipe") / "tiny")


def _folders(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_dir())


def test_generate_writes_a_bundle_per_prompt(tiny_dir, tmp_path, capsys):
    out = tmp_path / "out"
    prompts = ["a red cube", "a red cube", "../../x"]
    code = main(["generate", *prompts, "--model", str(tiny_dir), "--out", str(out), "--device", "cpu",
                 "--steps", "1", "--frames-per-view", "1", "--orbit-frames", "2", "--formats", "ply,spz", "--seed", "5"])
    assert code == 0
    folders = _folders(out)
    assert len(folders) == 3  # the duplicate prompt gets its own folder
    assert not (tmp_path / "x").exists() and all(f.parent == out for f in folders)  # no path traversal
    seen = []
    for f in folders:
        names = {p.name for p in f.iterdir()}
        assert {"scene.ply", "scene.spz", "cameras.json", "video.mp4", "orbit.mp4", "prompt.txt", "settings.json",
                "timings.json"} <= names
        g = load_scene(f / "scene.ply")
        assert len(g) > 0 and len(load_scene(f / "scene.spz")) == len(g)
        assert g.sh_degree == 0  # colour only by default, as the official export (the model predicts degree 4)
        cams = Cameras.load_json(f / "cameras.json")
        assert len(cams) == 5 and cams.width == 56
        assert iio.imread(f / "video.mp4").shape[0] == 5  # (5 - 1)·1 + 1: the last camera is included
        settings = json.loads((f / "settings.json").read_text())
        timings = json.loads((f / "timings.json").read_text())
        assert TIMINGS <= set(timings) and all(timings[k] >= 0 for k in TIMINGS)
        assert settings["steps"] == 1 and settings["num_frames"] == 5 and settings["guidance_scale"] == 7.5
        assert settings["full_prompt"].startswith("The camera rotates around the scene")
        seen.append(((f / "prompt.txt").read_text().strip(), settings["seed"]))
    assert sorted(seen) == sorted([("a red cube", 5), ("a red cube", 6), ("../../x", 5)])
    assert "wrote" in capsys.readouterr().out


def test_generate_errors_are_one_line(tiny_dir, tmp_path, capsys):
    code = main(["generate", "a cube", "--model", str(tiny_dir), "--out", str(tmp_path), "--frames", "6"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "1+4k" in err and len(err.splitlines()) == 1
    code = main(["generate", "--model", str(tiny_dir), "--out", str(tmp_path)])
    assert code == 1 and "no prompts" in capsys.readouterr().err
    code = main(["generate", "a cube", "--model", str(tiny_dir), "--formats", "obj"])
    assert code == 1 and "obj" in capsys.readouterr().err
    os.environ["VIST3A_WEIGHTS"] = str(tmp_path / "nothing")
    try:
        code = main(["generate", "a cube", "--model", "vist3a-1.3b", "--out", str(tmp_path), "--device", "cpu"])
    finally:
        del os.environ["VIST3A_WEIGHTS"]
    err = capsys.readouterr().err.strip()
    assert code == 1 and "huggingface-cli download HJGO/VIST3A" in err and len(err.splitlines()) == 1
    code = main(["generate", "a cube", "--model", str(tiny_dir), "--out", str(tmp_path), "--camera-guard", "-5"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "--camera-guard must be >= 0" in err and len(err.splitlines()) == 1
    code = main(["generate", "a cube", "--model", str(tiny_dir), "--out", str(tmp_path), "--candidates", "0"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "--candidates must be >= 1" in err and len(err.splitlines()) == 1


def test_generate_candidates_flag(tiny_dir, tmp_path):
    """--candidates 2: the kept scene is the plain run of the seed with the higher consistency, and settings.json
    lists both candidates' seeds and scores."""
    assert main(["generate", "a red cube", "--model", str(tiny_dir), "--out", str(tmp_path / "best"), "--device",
                 "cpu", "--steps", "1", "--no-video", "--candidates", "2", "--seed", "5"]) == 0  # fmt: skip
    (f,) = _folders(tmp_path / "best")
    s = json.loads((f / "settings.json").read_text())
    cands = s["candidates"]
    assert cands["seeds"][0] == 5 and len(cands["seeds"]) == 2 and len(cands["consistency_psnr"]) == 2
    kept = cands["seeds"][max(range(2), key=lambda k: cands["consistency_psnr"][k])]
    assert s["seed"] == kept
    assert main(["generate", "a red cube", "--model", str(tiny_dir), "--out", str(tmp_path / "plain"), "--device",
                 "cpu", "--steps", "1", "--no-video", "--seed", str(kept)]) == 0  # fmt: skip
    (g,) = _folders(tmp_path / "plain")
    assert json.loads((g / "settings.json").read_text())["candidates"] is None
    torch.testing.assert_close(Cameras.load_json(f / "cameras.json").c2w, Cameras.load_json(g / "cameras.json").c2w)


def test_generate_select_flag(tiny_dir, tmp_path, capsys):
    """--select world: settings.json records the selector and each candidate's world reward, and the kept seed is
    the one with the highest; --select without candidates, or with an unknown reward, is a one-line error."""
    assert main(["generate", "a red cube behind a blue cone", "--model", str(tiny_dir), "--out", str(tmp_path / "w"),
                 "--device", "cpu", "--steps", "1", "--no-video", "--candidates", "2", "--select", "world"]) == 0  # fmt: skip
    (f,) = _folders(tmp_path / "w")
    s = json.loads((f / "settings.json").read_text())
    cands = s["candidates"]
    assert cands["select"] == "world" and len(cands["scores"]) == 2 and len(cands["consistency_psnr"]) == 2
    assert cands["scores"] != cands["consistency_psnr"]  # world rewards lie in [-1, 1], PSNRs do not
    assert s["seed"] == cands["seeds"][max(range(2), key=lambda k: (cands["scores"][k], cands["consistency_psnr"][k]))]
    capsys.readouterr()
    for extra, msg in ((["--select", "world"], "--select ranks candidates"),
                       (["--candidates", "2", "--select", "colour"], "select: unknown reward 'colour'")):  # fmt: skip
        code = main(["generate", "a cube", "--model", str(tiny_dir), "--out", str(tmp_path / "x"), *extra])
        err = capsys.readouterr().err.strip()
        assert code == 1 and msg in err and len(err.splitlines()) == 1, err


def test_generate_select_takes_the_candidates_of_the_models_settings(tiny_dir, tmp_path):
    """A pipeline folder whose settings ask for 2 candidates: --select alone ranks them (no --candidates)."""
    import shutil

    folder = shutil.copytree(tiny_dir, tmp_path / "two")
    spec = json.loads((folder / "pipeline.json").read_text())
    spec["settings"] = {**spec.get("settings", {}), "candidates": 2}
    (folder / "pipeline.json").write_text(json.dumps(spec))
    assert main(["generate", "a red cube behind a blue cone", "--model", str(folder), "--out", str(tmp_path / "o"),
                 "--device", "cpu", "--steps", "1", "--no-video", "--select", "world"]) == 0  # fmt: skip
    (f,) = _folders(tmp_path / "o")
    cands = json.loads((f / "settings.json").read_text())["candidates"]
    assert cands["select"] == "world" and len(cands["seeds"]) == len(cands["scores"]) == 2


def test_generate_camera_guard_flag(tiny_dir, tmp_path):
    """--camera-guard DEG below the random decoder's turns: every camera in cameras.json is the first one, and
    settings.json says so; --camera-guard 0 turns the guard off."""
    runs = {}
    for name, deg in (("on", "1e-9"), ("off", "0")):
        assert main(["generate", "a red cube", "--model", str(tiny_dir), "--out", str(tmp_path / name), "--device",
                     "cpu", "--steps", "1", "--no-video", "--camera-guard", deg]) == 0  # fmt: skip
        (f,) = _folders(tmp_path / name)
        runs[name] = (Cameras.load_json(f / "cameras.json").c2w, json.loads((f / "settings.json").read_text()))
    (on, s_on), (off, s_off) = runs["on"], runs["off"]
    assert s_on["camera_guarded"] and s_on["camera_guard_deg"] == 1e-9
    assert not s_off["camera_guarded"] and s_off["camera_guard_deg"] is None
    torch.testing.assert_close(on, on[:1].expand_as(on), rtol=0, atol=1e-6)
    assert not torch.allclose(off, off[:1].expand_as(off), atol=1e-3)


def test_text_cache_generates_the_same_scene_without_the_encoder(tiny_dir, tmp_path, capsys, monkeypatch):
    """--write-text-cache (text encoder only: no DiT, no decoder built), then --text-cache with the text
    encoder's loading disabled: the same Gaussians and cameras as a run with the encoder."""
    import vist3a.pipelines.loading as loading

    prompts = ["a red cube", "a blue sphere"]
    cache = tmp_path / "c" / "texts.safetensors"
    built = []
    real = loading._build_decoder
    monkeypatch.setattr(loading, "_build_decoder", lambda *a, **k: built.append(1) or real(*a, **k))
    assert main(["generate", *prompts, "--model", str(tiny_dir), "--device", "cpu", "--write-text-cache", str(cache)]) == 0
    assert built == [] and "wrote 3 prompt embeddings" in capsys.readouterr().out  # 2 prompts + the negative
    common = ["generate", *prompts, "--model", str(tiny_dir), "--device", "cpu", "--steps", "2", "--no-video", "--seed", "3"]
    assert main([*common, "--out", str(tmp_path / "enc")]) == 0

    def no_encoder(*a, **k):
        raise AssertionError("the text encoder was loaded")

    monkeypatch.setattr(loading, "_build_text_encoder", no_encoder)
    assert main([*common, "--out", str(tmp_path / "cached"), "--text-cache", str(cache)]) == 0
    for a, b in zip(_folders(tmp_path / "enc"), _folders(tmp_path / "cached"), strict=True):
        ga, gb = load_scene(a / "scene.ply"), load_scene(b / "scene.ply")
        assert len(ga) == len(gb) > 0 and torch.equal(ga.means, gb.means) and torch.equal(ga.opacities, gb.opacities)
        assert torch.equal(Cameras.load_json(a / "cameras.json").c2w, Cameras.load_json(b / "cameras.json").c2w)
        assert json.loads((b / "settings.json").read_text())["text_cache"] == str(cache.resolve())
    # a run whose texts differ from the cache's (another template) fails before generating anything
    capsys.readouterr()
    code = main([*common, "--out", str(tmp_path / "bad"), "--text-cache", str(cache), "--no-template"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "2 of the run's texts are not in --text-cache" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "bad").exists()
    code = main([*common, "--text-cache", str(cache), "--write-text-cache", str(cache)])
    assert code == 1 and "give one of them" in capsys.readouterr().err
    code = main([*common, "--text-cache", str(tmp_path / "none.safetensors")])
    assert code == 1 and "file not found" in capsys.readouterr().err


def test_default_mini_model_warns_about_vocabulary(tmp_path, capsys):
    """The default model runs end to end (tiny size) and says what it knows."""
    code = main(["generate", "a dragon on a red cube", "--out", str(tmp_path), "--device", "cpu", "--steps", "1",
                 "--frames", "1", "--height", "32", "--width", "32", "--no-video", "--low-vram"])
    assert code == 0
    assert "only knows simple primitive scenes" in capsys.readouterr().out
    (folder,) = _folders(tmp_path)
    assert len(Cameras.load_json(folder / "cameras.json")) == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _check_sharded_output(out: Path, prompts: list[str]) -> None:
    folders = _folders(out)
    got = sorted((p / "prompt.txt").read_text().strip() for p in folders)
    assert got == sorted(prompts)  # every prompt exactly once (the repeated one twice, in two folders)
    ranks = {json.loads((p / "settings.json").read_text())["rank"] for p in folders}
    worlds = {json.loads((p / "settings.json").read_text())["world_size"] for p in folders}
    assert ranks == {0, 1} and worlds == {2}


def test_ranks_share_the_prompts_without_duplicates(tiny_dir, tmp_path, monkeypatch):
    """The two ranks of a 2-process job, run one after the other in this process."""
    from vist3a.train import distributed

    prompts = ["a red cube", "a blue sphere", "a red cube", "a green cone", "a pink cylinder"]
    out = tmp_path / "out"
    for rank in (0, 1):
        ctx = distributed.DistContext(rank=rank, world_size=2, local_rank=rank, device=torch.device("cpu"))
        monkeypatch.setattr(distributed, "init", lambda device=None, timeout_s=600.0, c=ctx: c)
        assert main(["generate", *prompts, "--model", str(tiny_dir), "--out", str(out), "--device", "cpu",
                     "--steps", "1", "--no-video"]) == 0
    _check_sharded_output(out, prompts)


@pytest.mark.slow
def test_torchrun_splits_prompts_across_processes(tiny_dir, tmp_path):
    prompts = ["a red cube", "a blue sphere", "a red cube", "a green cone", "a pink cylinder"]
    f = tmp_path / "prompts.txt"
    f.write_text("# a comment\n" + "\n".join(prompts) + "\n\n")
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "vist3a", "generate", "--prompts-file", str(f),
           "--model", str(tiny_dir), "--out", str(out), "--device", "cpu", "--steps", "1", "--no-video"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    _check_sharded_output(out, prompts)


# ---------------------------------------------------------------- CPU defaults and the mini model's vocabulary
def test_cpu_video_defaults_and_their_flags(tiny_dir, tmp_path):
    """On a CPU: a fly-through of 2 frames per camera pair, no orbit, the decoded video, and the videos
    rendered from at most CPU_DEFAULTS.preview_splats splats; each flag overrides its default."""
    from vist3a.commands.generate import CPU_DEFAULTS

    out = tmp_path / "a"
    assert main(["generate", "a red cube", "--model", str(tiny_dir), "--out", str(out), "--device", "cpu",
                 "--steps", "1"]) == 0
    (f,) = _folders(out)
    names = {p.name for p in f.iterdir()}
    assert {"video.mp4", "decoded.mp4", "scene.ply"} <= names and "orbit.mp4" not in names
    assert CPU_DEFAULTS.orbit_frames == 0
    assert iio.imread(f / "video.mp4").shape[0] == (5 - 1) * CPU_DEFAULTS.frames_per_view + 1
    assert iio.imread(f / "decoded.mp4").shape[:3] == (5, 64, 64)  # the 5 decoded frames at the video size
    s = json.loads((f / "settings.json").read_text())
    assert s["frames_per_view"] == CPU_DEFAULTS.frames_per_view and s["orbit_frames"] == 0
    assert s["video_splats"] == min(s["gaussians"], CPU_DEFAULTS.preview_splats)
    t = json.loads((f / "timings.json").read_text())
    assert {"export_reduce_preview_s", "export_videos_s", "export_scene_files_s"} <= set(t)

    out = tmp_path / "b"
    assert main(["generate", "a red cube", "--model", str(tiny_dir), "--out", str(out), "--device", "cpu",
                 "--steps", "1", "--frames-per-view", "1", "--orbit-frames", "3", "--preview-splats", "50",
                 "--render-size", "32"]) == 0
    (f,) = _folders(out)
    s = json.loads((f / "settings.json").read_text())
    assert s["gaussians"] > 50 and 0 < s["video_splats"] <= 50  # the scene file keeps every visible splat
    assert len(load_scene(f / "scene.ply")) == s["gaussians"]
    assert iio.imread(f / "video.mp4").shape[:3] == (5, 32, 32)
    assert iio.imread(f / "orbit.mp4").shape[0] == 3
    assert main(["generate", "a cube", "--model", str(tiny_dir), "--out", str(out), "--preview-splats", "-1"]) == 1


def test_the_vocabulary_covers_the_world_captions():
    from vist3a.pipelines.loading import unknown_words
    from vist3a.world.sample import make_sample

    for i in range(40):
        for text in make_sample(i, frames=5, size=64).texts.values():
            assert unknown_words(text) == [], text
    assert unknown_words("a red cube to the left of a small blue sphere") == []
    assert unknown_words("A dragon, on a RED cube near a castle!") == ["dragon", "castle"]


@pytest.mark.parametrize(
    "model,prompt,noted",
    [("mini", "a red cube to the left of a small blue sphere", False), ("mini", "a cozy cabin in the woods", True),
     ("tiny", "a cozy cabin in the woods", False)],
)
def test_the_vocabulary_note_is_for_the_mini_model_and_unknown_words(model, prompt, noted, tiny_dir, tmp_path,
                                                                      monkeypatch, capsys):
    """The note is printed before the model loads (stubbed here to fail fast): once, for the mini model only."""
    from vist3a.errors import InputError
    from vist3a.pipelines import loading

    def no_load(*a, **k):
        raise InputError("stub: not loading")

    monkeypatch.setattr(loading, "load_pipeline", no_load)
    name = "mini" if model == "mini" else str(tiny_dir)
    assert main(["generate", prompt, "--model", name, "--out", str(tmp_path), "--device", "cpu"]) == 1
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "only knows simple primitive scenes" in ln]
    assert len(lines) == (1 if noted else 0)
    if noted:
        assert "cozy" in lines[0] and "cabin" in lines[0] and "shapes, colours, sizes and relations" in lines[0]
