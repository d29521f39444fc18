"""The analytic judge: right on ground-truth renders, near chance on shuffled captions."""

from __future__ import annotations

import pytest
import torch

from vist3a.errors import InputError
from vist3a.gaussians.cameras import Cameras
from vist3a.world.captions import CaptionObject, StructuredCaption, describe
from vist3a.world.judge import Judge, questions_for
from vist3a.world.raycast import render_world
from vist3a.world.scene import Scene, SceneObject
from vist3a.world.validate import validate_judge


@pytest.fixture(scope="module")
def four_shapes():
    scene = Scene(
        (
            SceneObject("cube", "red", "large", -1.1, 0.5, 0.5),
            SceneObject("sphere", "blue", "small", 1.0, 0.6),
            SceneObject("cylinder", "green", "medium", 1.0, -0.9),
            SceneObject("cone", "yellow", "large", -0.8, -1.2),
        )
    )
    cams = Cameras.orbit(6, radius=5.0, elevation_deg=28, start_deg=-90, target=(0, 0, 0.3), fov_x_deg=55, width=160, height=160)
    return scene, cams, render_world(scene, cams)


def test_every_question_right_on_a_known_scene(four_shapes):
    scene, cams, r = four_shapes
    cap = describe(scene, cams[0])
    assert cap.relations  # the layout has clear relations from the first view
    res = Judge().score(r.rgb, cap, r.depth, cams)
    assert all(res.answers), [q.text for q, a in zip(res.questions, res.answers, strict=True) if not a]
    assert res.per_category == {"entity": 1.0, "attribute": 1.0, "relation": 1.0}


def test_wrong_captions_are_rejected(four_shapes):
    scene, cams, r = four_shapes
    judge = Judge()
    dets = judge.detect(r.rgb, r.depth, cams)
    assert {k for k, d in dets.items() if d.shape} == {"red", "blue", "green", "yellow"}
    wrong = StructuredCaption(
        [CaptionObject("sphere", "red", "large"), CaptionObject("cube", "purple", "small"), CaptionObject("cone", "yellow", "small")],
        [(2, "right of", 0)],
    )
    res = judge.score_detections(dets, wrong)
    by_text = dict(zip([q.text for q in res.questions], res.answers, strict=True))
    assert by_text["Is there a sphere?"] and not by_text["Is the sphere red?"]  # a sphere exists, but blue
    assert not by_text["Is the cube purple?"]
    assert by_text["Is the cone yellow?"] and not by_text["Is the yellow cone small?"]
    assert not by_text["Is the yellow cone to the right of the red sphere?"]
    # Dependency zeroing: children of a failed entity question score 0.
    q = questions_for(wrong)
    assert all(q[p].category == "entity" for qq in q for p in qq.parents)
    # Without depth there are no size answers, but everything else still works.
    no_depth = judge.score(r.rgb, describe(scene, cams[0]))
    assert no_depth.per_category["entity"] == 1.0 and no_depth.per_category["relation"] == 1.0


def test_uint8_images_read_like_float(four_shapes):
    scene, cams, r = four_shapes
    as_bytes = (r.rgb * 255 + 0.5).clamp(0, 255).to(torch.uint8)
    a, b = Judge().detect(r.rgb), Judge().detect(as_bytes)
    assert {k: (d.shape, d.u) for k, d in a.items()} == {k: (d.shape, d.u) for k, d in b.items()}


def test_validation_on_held_out_scenes():
    out = validate_judge(scenes=10, seed=777, frames=4, size=128, progress=False)
    for mode in ("depth", "images"):
        res = out[mode]
        assert res["matched_accuracy"] >= 0.9
        assert res["shuffled_accuracy"] >= 0.9
        assert abs(res["shuffled_judge_score"] - res["shuffled_chance_score"]) < 0.1
        assert res["shuffled_chance_score"] < 0.5
    assert "size" in out["depth"]["matched_per_kind"] and "size" not in out["images"]["matched_per_kind"]


def test_bad_inputs():
    judge = Judge()
    with pytest.raises(InputError, match=r"\[V,3,H,W\]"):
        judge.detect(torch.rand(3, 8, 8))
    with pytest.raises(InputError, match="depth"):
        judge.detect(torch.rand(2, 3, 8, 8), torch.rand(2, 4, 4))
