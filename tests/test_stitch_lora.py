"""LoRA config parsing, target selection, peft injection, and the official loralib ΔW layout."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vist3a.errors import InputError
from vist3a.stitching.lora import inject_lora, lora_target_names, official_delta, parse_lora_config


def test_parse_official_config():
    spec = parse_lora_config("r64,a32,d0.0,f0")
    assert (spec.rank, spec.alpha, spec.dropout, spec.bias) == (64, 32.0, 0.0, "lora_only")
    assert spec.scaling == 0.5
    assert parse_lora_config("r4,a8,d0.0,f0,enc,fix_head").scaling == 2.0


@pytest.mark.parametrize("bad", ["r0", "x5", "rabc", "f1", "bsome"])
def test_parse_errors(bad):
    with pytest.raises(InputError):
        parse_lora_config(bad)


def _net() -> nn.Module:
    return nn.Sequential(
        nn.Linear(4, 8), nn.Conv2d(3, 5, 3, padding=1), nn.Conv2d(3, 5, (1, 3)), nn.ConvTranspose2d(3, 3, 2),
        nn.LayerNorm(4), nn.Conv3d(2, 2, 3),
    )


def test_targets_are_linear_and_square_conv2d_only():
    assert lora_target_names(_net()) == ["0", "1"]


def test_injection_trains_only_lora_and_wrapped_biases():
    net = inject_lora(_net(), parse_lora_config("r2,a4"))
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert trainable == {
        "0.base_layer.bias", "0.lora_A.default.weight", "0.lora_B.default.weight",
        "1.base_layer.bias", "1.lora_A.default.weight", "1.lora_B.default.weight",
    }


def test_official_conv_delta_matches_loralib_forward():
    # loralib ConvLoRA: y = conv(x, W + (B@A).view(W.shape) * s); check against an explicit conv with that weight.
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    r, k, s = 2, 3, 0.5
    a = torch.randn(r * k, 3 * k)
    b = torch.randn(4 * k, r * k)
    delta = official_delta(conv, a, b, s)
    assert delta.shape == conv.weight.shape
    x = torch.randn(1, 3, 6, 6)
    expect = nn.functional.conv2d(x, conv.weight + (b @ a).view(4, 3, 3, 3) * s, conv.bias, padding=1)
    got = nn.functional.conv2d(x, conv.weight + delta, conv.bias, padding=1)
    torch.testing.assert_close(got, expect)
    lin = nn.Linear(3, 4)
    torch.testing.assert_close(official_delta(lin, torch.ones(2, 3), torch.ones(4, 2), 0.5), torch.full((4, 3), 1.0))
