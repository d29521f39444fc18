"""Reward alignment of the video DiT (``vist3a align``; docs/alignment.md).

- :mod:`~vist3a.alignment.rewards`: the :class:`Reward` interface and built-in rewards;
- :mod:`~vist3a.alignment.drtune`: flow-matching SFT loss, DRTune rollouts, decode + render;
- :mod:`~vist3a.alignment.trainer`: :class:`AlignTrainer` (LoRA, EMA, checkpoints, exact resume).
"""

from vist3a.alignment.drtune import RolloutPlan, decode_and_render, drtune_rollout, flow_matching_loss
from vist3a.alignment.rewards import (
    BrightnessReward,
    ClipScoreReward,
    ConsistencyReward,
    PickScoreReward,
    Reward,
    WeightedSum,
    WorldColourReward,
    build_reward,
)
from vist3a.alignment.trainer import AlignConfig, AlignTrainer, PromptItem

__all__ = [
    "AlignConfig",
    "AlignTrainer",
    "BrightnessReward",
    "ClipScoreReward",
    "ConsistencyReward",
    "PickScoreReward",
    "PromptItem",
    "Reward",
    "RolloutPlan",
    "WeightedSum",
    "WorldColourReward",
    "build_reward",
    "decode_and_render",
    "drtune_rollout",
    "flow_matching_loss",
]
