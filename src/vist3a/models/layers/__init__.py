"""Transformer parts shared by DINOv2, the VGGT aggregator and the camera head.

State-dict names follow VGGT (``attn.qkv``, ``attn.q_norm``, ``ls1.gamma``, ``mlp.fc1`` ...) so that
official checkpoints load unchanged; the code is our own.
"""

from vist3a.models.layers.attention import Attention
from vist3a.models.layers.block import Block
from vist3a.models.layers.layer_scale import LayerScale
from vist3a.models.layers.mlp import Mlp
from vist3a.models.layers.patch_embed import PatchEmbed
from vist3a.models.layers.rope import RotaryPositionEmbedding2D, grid_positions

__all__ = [
    "Attention",
    "Block",
    "LayerScale",
    "Mlp",
    "PatchEmbed",
    "RotaryPositionEmbedding2D",
    "grid_positions",
]
