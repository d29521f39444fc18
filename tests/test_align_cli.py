"""`vist3a align` command line: argument errors are one line and exit 1; a tiny end-to-end run (slow)."""

from __future__ import annotations

import json

import pytest

from vist3a.cli import main


def test_align_cli_errors(tmp_path, capsys):
    assert main(["align", "--model", "tiny", "--out", str(tmp_path / "o"), "--prompts", str(tmp_path / "none.txt")]) == 1
    assert "prompt file not found" in capsys.readouterr().err
    assert main(["align", "--model", "tiny", "--out", str(tmp_path / "o")]) == 1
    assert "--prompts FILE or --world N" in capsys.readouterr().err
    (tmp_path / "p.txt").write_text("# comment\n\n")
    assert main(["align", "--model", "tiny", "--out", str(tmp_path / "o"), "--prompts", str(tmp_path / "p.txt")]) == 1
    assert "no prompts" in capsys.readouterr().err
    (tmp_path / "p.txt").write_text("a red cube\n")
    args = ["align", "--model", "tiny", "--out", str(tmp_path / "o"), "--prompts", str(tmp_path / "p.txt")]
    assert main([*args, "--sft-data", "imagenet:/x"]) == 1
    assert "--sft-data must be" in capsys.readouterr().err
    assert main([*args, "--reward", "aesthetic"]) == 1
    assert "unknown reward" in capsys.readouterr().err
    assert main([*args, "--reward", f"clip:{tmp_path / 'noclip'}"]) == 1
    assert "no clip weights" in capsys.readouterr().err
    (tmp_path / "recon").mkdir()  # a folder without weights, in either layout (one file or shards)
    assert main(["align", "--model", "mini", "--world", "2", "--out", str(tmp_path / "m"), "--recon-weights",
                 str(tmp_path / "recon")]) == 1  # fmt: skip
    assert "--recon-weights" in (err := capsys.readouterr().err) and "no model.safetensors (or shard index)" in err


@pytest.mark.slow
def test_align_cli_tiny_run_and_resume(tmp_path):
    out = tmp_path / "run"
    base = ["align", "--model", "tiny", "--world", "2", "--out", str(out), "--reward", "consistency,world",
            "--min-steps", "1", "--max-steps", "2", "--drtune-k", "1", "--cfg", "1", "1", "--ckpt-every", "1",
            "--device", "cpu", "--sft-data", "world:2", "--frames", "5", "--size", "64"]
    assert main([*base, "--steps", "1"]) == 0
    assert main([*base, "--steps", "2", "--resume"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2
    assert (out / "lora_ema" / "adapter_config.json").is_file()
    assert (out / "checkpoints" / "checkpoint-2" / "lora" / "adapter_model.safetensors").is_file()
    assert list((out / "tb").iterdir())
