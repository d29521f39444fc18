"""``vist3a app`` in headless Chromium, as a person uses it: bad prompts get a message in the page,
a typed prompt generates a scene (tiny random pipeline of the real classes), the 3D canvas shows it,
the fly-through video is on the page, and the .ply download is a valid scene (skips without
Chromium/Playwright/viser)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from viewer_browser import (  # noqa: F401
    browser,
    canvas_rgb,
    close_notices,
    input_of,
    left_of_panel,
    new_page,
    open_viser,
    save_screenshot,
    type_into,
)


@pytest.fixture(scope="module")
def tiny():
    from vist3a.pipelines.loading import tiny_pipeline

    return tiny_pipeline(seed=0)


def test_app_page_generates_shows_and_downloads(browser, tiny, tmp_path) -> None:  # noqa: F811
    from vist3a.gaussians.formats import load_scene
    from vist3a.viewer.app import GeneratorApp
    from vist3a.viewer.server import start_server

    out = tmp_path / "outputs"
    server = start_server("127.0.0.1", 0)
    app = GeneratorApp(server, tiny, out, model_name="tiny", frames_per_view=1, render_size=64, max_splats=8000)
    try:
        page = new_page(browser)
        open_viser(page, f"http://127.0.0.1:{server.get_port()}")
        generate = page.get_by_text("Generate", exact=True)
        generate.wait_for()
        close_notices(page)

        def canvas() -> np.ndarray:
            return left_of_panel(page, canvas_rgb(page), "Prompt")

        empty_canvas = canvas()
        assert empty_canvas.std() < 2.0  # nothing drawn yet
        prompt = input_of(page, "Prompt")
        panel = next(iter(app.panels.values()))

        # bad input: a clear message in the page, nothing generated, the page keeps working
        generate.click()
        page.get_by_text("please type a prompt: it is empty").wait_for()
        type_into(prompt, panel.prompt, "z" * 10_000)
        generate.click()
        page.get_by_text("the prompt is 10,000 characters long; the limit is 500").wait_for()
        assert app.generations == 0 and not any(out.iterdir())

        # a person types a prompt and waits for the result
        type_into(prompt, panel.prompt, "a red cube on a checkered floor")
        type_into(input_of(page, "Seed"), panel.seed, 7)
        generate.click()
        page.get_by_text("done in").wait_for(timeout=300_000)
        assert app.generations == 1
        folder = next(out.iterdir())
        assert '"seed": 7' in (folder / "settings.json").read_text()  # the page's seed was used

        # the scene is in the 3D view; Play flies the page's camera along the predicted trajectory
        page.get_by_text("Play fly-through", exact=True).click()
        end = time.monotonic() + 60
        while not panel.viewer.playing and time.monotonic() < end:
            time.sleep(0.1)
        while panel.viewer.playing and time.monotonic() < end:
            time.sleep(0.2)
        assert panel.viewer.frame_slider.value == len(panel.viewer.trajectory) - 1

        def changed() -> float:
            return float(np.abs(canvas().astype(int) - empty_canvas.astype(int)).mean())

        end = time.monotonic() + 90
        diff = changed()
        while diff < 3.0 and time.monotonic() < end:
            time.sleep(1.0)
            diff = changed()
        assert diff >= 3.0, f"the canvas did not change after the generation (mean |Δ| = {diff:.2f})"
        assert canvas().std() > 5.0

        # the fly-through video is on the page and playable
        ready = page.evaluate("() => { const v = document.querySelector('video'); return v ? v.readyState : -1 }")
        assert ready >= 1
        save_screenshot(page, tmp_path / "app.png")

        # the .ply download is the scene the app wrote
        with page.expect_download(timeout=60_000) as dl:
            page.get_by_text("Download .ply", exact=True).click()
        got = tmp_path / "downloaded.ply"
        dl.value.save_as(got)
        assert dl.value.suggested_filename == f"{folder.name}.ply"
        assert got.read_bytes() == (folder / "scene.ply").read_bytes()
        scene = load_scene(got)
        assert len(scene) > 0 and bool(scene.means.isfinite().all())
        with page.expect_download(timeout=60_000) as dl:
            page.get_by_text("Download .spz", exact=True).click()
        dl.value.save_as(tmp_path / "downloaded.spz")
        assert len(load_scene(tmp_path / "downloaded.spz")) == len(scene)
    finally:
        app.close()
        server.stop()
