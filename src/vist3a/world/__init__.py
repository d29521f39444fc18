"""The procedural world: scenes of analytic primitives, exact ray casting, captions, dataset writers, judge.

Main entry points:

- :func:`make_sample` — scene ``index`` of a set ``seed``: scene, camera trajectory, captions.
- :func:`render_world` — exact RGB, depth and object ids for any :class:`~vist3a.gaussians.cameras.Cameras`.
- :class:`WorldDataset` — a streaming torch Dataset of rendered scenes.
- :func:`make_dataset` — write a set in the DL3DV, ScanNet or RealEstate10K layout (``vist3a world make``).
- :class:`Judge` — DPG-style entity / attribute / relation scores of renders against a structured caption.

See docs/world.md.
"""

from vist3a.world.captions import StructuredCaption, describe, phrasings
from vist3a.world.dataset import WorldDataset
from vist3a.world.judge import Judge, JudgeResult, questions_for
from vist3a.world.make import MakeConfig, make_dataset
from vist3a.world.raycast import WorldRender, render_world
from vist3a.world.sample import WorldSample, make_sample, scene_seed
from vist3a.world.scene import Scene, SceneObject, sample_scene
from vist3a.world.trajectory import MOTIONS, Trajectory, sample_trajectory

__all__ = [
    "MOTIONS",
    "Judge",
    "JudgeResult",
    "MakeConfig",
    "Scene",
    "SceneObject",
    "StructuredCaption",
    "Trajectory",
    "WorldDataset",
    "WorldRender",
    "WorldSample",
    "describe",
    "make_dataset",
    "make_sample",
    "phrasings",
    "questions_for",
    "render_world",
    "sample_scene",
    "sample_trajectory",
    "scene_seed",
]
