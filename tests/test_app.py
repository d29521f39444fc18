"""``vist3a app`` without a browser: prompt/settings checks, a real generation through the worker
(tiny random pipeline of the real classes), safe output folders, the CLI's port check."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from vist3a.cli import main
from vist3a.errors import InputError
from vist3a.viewer.app import MAX_PROMPT_CHARS, validate_prompt, validate_settings


def test_validate_prompt_limits() -> None:
    assert validate_prompt("  a red cube  ") == "a red cube"
    assert validate_prompt("x" * MAX_PROMPT_CHARS) == "x" * MAX_PROMPT_CHARS
    for empty in ("", "   ", "\n\t"):
        with pytest.raises(InputError, match="empty"):
            validate_prompt(empty)
    with pytest.raises(InputError, match="10,000 characters long; the limit is 500"):
        validate_prompt("y" * 10_000)
    with pytest.raises(InputError, match=f"{MAX_PROMPT_CHARS + 1:,}"):
        validate_prompt("z" * (MAX_PROMPT_CHARS + 1))
    with pytest.raises(InputError, match="control"):
        validate_prompt("a\x00b")
    with pytest.raises(InputError):
        validate_prompt(None)


def test_validate_settings() -> None:
    assert validate_settings(12413, 30.0, 7.5) == (12413, 30, 7.5)
    for bad in ((-1, 30, 7.5), (0, 0, 7.5), (0, 2.5, 7.5), (0, 30, float("nan")), (0, 30, 0.5), ("x", 1, 1)):
        with pytest.raises(InputError):
            validate_settings(*bad)


class _Panel:
    """Records what the worker tells a page."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self.done = threading.Event()
        self.files: dict[str, Path] = {}

    def progress(self, percent: float, text: str) -> None:
        self.events.append(("progress", percent))

    def queued(self, ahead: int) -> None:
        self.events.append(("queued", ahead))

    def failed(self, text: str) -> None:
        self.events.append(("failed", text))
        self.done.set()

    def finished(self, result, folder, files, seconds) -> None:
        self.events.append(("finished", folder))
        self.files = dict(files)
        self.result = result
        self.done.set()


class _FakeServer:
    def on_client_connect(self, f) -> None:
        pass

    def on_client_disconnect(self, f) -> None:
        pass


@pytest.fixture(scope="module")
def tiny():
    from vist3a.pipelines.loading import tiny_pipeline

    return tiny_pipeline(seed=0)


def test_worker_generates_one_at_a_time_into_its_own_folder(tiny, tmp_path) -> None:
    from vist3a.gaussians.formats import load_scene
    from vist3a.viewer.app import GeneratorApp, Job

    out = tmp_path / "outputs"
    app = GeneratorApp(_FakeServer(), tiny, out, model_name="tiny", frames_per_view=1, render_size=32)
    try:
        bad, p1, p2 = _Panel(), _Panel(), _Panel()
        evil = "../../escape/" + "a red cube"
        assert app.submit(Job("a cube", 0, 0, 3.0, bad)) == 0  # steps 0: the pipeline refuses it
        assert app.submit(Job(evil, 1, 1, 3.0, p1)) == 1
        assert app.submit(Job("a blue sphere", 2, 2, 1.0, p2)) == 2  # queued behind the others
        assert bad.done.wait(120) and p1.done.wait(300) and p2.done.wait(300)
        # a failing job says why and the worker goes on
        assert bad.events[-1][0] == "failed" and "steps" in str(bad.events[-1][1])
        for p, steps in ((p1, 1), (p2, 2)):
            kinds = [k for k, _ in p.events]
            assert kinds[-1] == "finished", p.events
            percents = [v for k, v in p.events if k == "progress"]
            assert percents == sorted(percents) and len(percents) >= steps + 2  # one update per step
            folder = next(v for k, v in p.events if k == "finished")
            assert folder.parent == out.resolve()  # never outside the app's folder
            assert {"scene.ply", "scene.spz", "scene.splat", "cameras.json", "video.mp4"} <= set(p.files)
            assert all(f.parent == folder for f in p.files.values())
            n = len(load_scene(p.files["scene.ply"]))
            assert n > 0 and len(load_scene(p.files["scene.spz"])) == n
        assert not (tmp_path / "escape").exists()
        # the waiting jobs were told their place as the queue moved
        assert ("queued", 0) in p2.events and app.generations == 2
    finally:
        app.close()


def test_cli_app_port_in_use_one_line(capsys) -> None:
    pytest.importorskip("viser")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        assert main(["app", "--port", str(port)]) == 1
    finally:
        s.close()
    err = capsys.readouterr().err.strip()
    assert f"port {port}" in err and "in use" in err and "\n" not in err


def test_jobs_of_closed_pages_are_skipped(tiny, tmp_path) -> None:
    from types import SimpleNamespace

    from vist3a.viewer.app import GeneratorApp, Job

    app = GeneratorApp(_FakeServer(), tiny, tmp_path / "out", model_name="tiny")
    try:
        gone = _Panel()
        gone.client = SimpleNamespace(client_id=42)  # not among app.panels: the page was closed
        app.submit(Job("a cube", 0, 1, 1.0, gone))
        app.close()
        app._worker.join(timeout=60)
        assert not app._worker.is_alive()
        assert gone.events == [] and app.generations == 0 and not any((tmp_path / "out").iterdir())
    finally:
        app.close()
