"""``vist3a app``: a small text-to-3D web app on viser.

Each open page gets its own panel: a prompt box, seed / steps / CFG controls, **Generate**, a
progress bar with the stage, the resulting scene in the 3D view (with the camera frusta and the
fly-through buttons of :class:`~vist3a.viewer.view.SceneViewer`), the fly-through video, and
download buttons for ``.ply`` / ``.spz`` / ``.splat``.

Safety and fairness:

- one generation at a time per model: requests wait in a FIFO queue (the page shows its place);
- prompts are stripped and length-limited (:data:`MAX_PROMPT_CHARS`); empty ones are refused;
- the page never names a file: outputs go to ``<out>/<slug>-<hash>/`` (a fresh folder per
  generation, :func:`vist3a.pipelines.export.claim_folder`), and downloads read only the files
  the app itself wrote there;
- a failing generation shows its reason in the page; the server keeps running.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import html
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vist3a.errors import InputError, Vist3aError
from vist3a.viewer.scene import MAX_BROWSER_SPLATS
from vist3a.viewer.view import SceneViewer

log = logging.getLogger(__name__)

#: The longest prompt accepted (characters, after stripping).
MAX_PROMPT_CHARS = 500
#: The scene formats offered for download (ply first).
DOWNLOAD_FORMATS = ("ply", "spz", "splat")
#: Limits of the controls.
MAX_STEPS = 200
MAX_SEED = 2**31 - 1
MAX_CFG = 30.0
#: Largest fly-through video shown inline in the page (bytes).
MAX_INLINE_VIDEO = 12 * 1024 * 1024


def validate_prompt(prompt: object, max_chars: int = MAX_PROMPT_CHARS) -> str:
    """The stripped prompt; :class:`InputError` for an empty or too long one."""
    if not isinstance(prompt, str):
        raise InputError("the prompt must be text")
    text = prompt.strip()
    if not text:
        raise InputError("please type a prompt: it is empty")
    if len(text) > max_chars:
        raise InputError(f"the prompt is {len(text):,} characters long; the limit is {max_chars:,}")
    if any(ord(c) < 32 and c not in "\t\n" for c in text):
        raise InputError("the prompt contains control characters")
    return text


def validate_settings(seed: object, steps: object, cfg: object) -> tuple[int, int, float]:
    """``(seed, steps, cfg)`` checked against the controls' limits."""
    try:
        seed_i, steps_f, cfg_f = int(seed), float(steps), float(cfg)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InputError(f"seed, steps and CFG must be numbers ({exc})") from exc
    if not 0 <= seed_i <= MAX_SEED:
        raise InputError(f"the seed must be in 0..{MAX_SEED}, got {seed_i}")
    if not (math.isfinite(steps_f) and 1 <= steps_f <= MAX_STEPS and steps_f == int(steps_f)):
        raise InputError(f"steps must be a whole number in 1..{MAX_STEPS}, got {steps}")
    if not (math.isfinite(cfg_f) and 1.0 <= cfg_f <= MAX_CFG):
        raise InputError(f"CFG must be in 1..{MAX_CFG:g}, got {cfg}")
    return seed_i, int(steps_f), cfg_f


@dataclass
class Job:
    """One queued generation."""

    prompt: str
    seed: int
    steps: int
    cfg: float
    panel: ClientPanel
    created: float = field(default_factory=time.perf_counter)


@contextlib.contextmanager
def step_callback(pipe: Any, callback: Callable[[int], None]) -> Iterator[None]:
    """Report denoising steps of ``pipe`` to ``callback(step_index)`` for the duration of the block
    (the pipeline's DiT sampler takes a per-step callback; the worker runs one job at a time)."""
    video = getattr(pipe, "video", None)
    original = getattr(video, "sample_latents", None)
    if video is None or original is None:
        yield
        return

    def cb(i: int, _t: Any, _z: Any) -> None:
        callback(i)

    video.sample_latents = functools.partial(original, callback=cb)
    try:
        yield
    finally:
        with contextlib.suppress(AttributeError):
            del video.sample_latents  # back to the class's method


class GeneratorApp:
    """The app: one pipeline, one worker thread, one :class:`ClientPanel` per open page.

    Args:
        server: a running ``viser.ViserServer``.
        pipeline: a :class:`~vist3a.pipelines.TextTo3DPipeline`, or a zero-argument callable that
            builds one (called once, in the worker, so the page opens at once).
        out_dir: the app's output folder (created); every generation gets a fresh folder inside.
        model_name: shown in the page.
        max_prompt_chars: prompt length limit.
        frames_per_view, render_size, fps: the fly-through video's frames per camera pair, size and rate.
        max_splats: the most splats sent to a page (the files keep all).
    """

    def __init__(
        self,
        server: Any,
        pipeline: Any,
        out_dir: str | Path,
        model_name: str = "mini",
        max_prompt_chars: int = MAX_PROMPT_CHARS,
        frames_per_view: int = 4,
        render_size: int | None = 256,
        fps: float = 12.0,
        max_splats: int = MAX_BROWSER_SPLATS,
    ) -> None:
        self.server = server
        self._pipeline_source = pipeline
        self._pipe: Any = None if callable(pipeline) and not hasattr(pipeline, "video") else pipeline
        self.out_dir = Path(out_dir).expanduser().resolve()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.model_name = model_name
        self.max_prompt_chars = max_prompt_chars
        self.frames_per_view = frames_per_view
        self.render_size = render_size
        self.fps = fps
        self.max_splats = max_splats
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        self._waiting: list[Job] = []
        self._lock = threading.Lock()
        self.panels: dict[int, ClientPanel] = {}
        self.generations = 0
        self._worker = threading.Thread(target=self._work, daemon=True, name="vist3a-app-worker")
        self._worker.start()
        server.on_client_connect(self._on_connect)
        server.on_client_disconnect(self._on_disconnect)

    # ------------------------------------------------------------------ pages
    def _on_connect(self, client: Any) -> None:
        self.panels[client.client_id] = ClientPanel(self, client)

    def _on_disconnect(self, client: Any) -> None:
        self.panels.pop(client.client_id, None)

    def defaults(self) -> tuple[int, int, float]:
        """Seed, steps and CFG shown on a new page (the pipeline's settings once it is loaded)."""
        s = getattr(self._pipe, "settings", None)
        if s is None:
            return 0, 30, 7.5
        return int(s.seed) % (MAX_SEED + 1), int(min(max(s.steps, 1), MAX_STEPS)), float(s.guidance_scale)

    # ------------------------------------------------------------------ queue
    def submit(self, job: Job) -> int:
        """Queue a job; returns how many jobs are ahead of it."""
        with self._lock:
            ahead = len(self._waiting)
            self._waiting.append(job)
        self.jobs.put(job)
        return ahead

    def position(self, job: Job) -> int:
        with self._lock:
            return self._waiting.index(job) if job in self._waiting else -1

    def close(self) -> None:
        self.jobs.put(None)

    def pipeline(self) -> Any:
        if self._pipe is None:
            self._pipe = self._pipeline_source()
        return self._pipe

    def _gone(self, job: Job) -> bool:
        """The page that asked for ``job`` was closed (then the job is skipped)."""
        client = getattr(job.panel, "client", None)
        return client is not None and client.client_id not in self.panels

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            try:
                if self._gone(job):
                    log.info("skipping the generation of a closed page: %r", job.prompt[:60])
                    continue
                self._run(job)
            except Exception as exc:  # the worker must survive anything a job does
                log.exception("generation failed")
                msg = _one_line(exc) if isinstance(exc, Vist3aError) else f"{type(exc).__name__}: {_one_line(exc)}"
                with contextlib.suppress(Exception):  # the page may have gone meanwhile
                    job.panel.failed(f"generation failed: {msg}")
            finally:
                with self._lock:
                    if job in self._waiting:
                        self._waiting.remove(job)
                    waiting = list(self._waiting)
                for other in waiting:
                    with contextlib.suppress(Exception):
                        other.panel.queued(self.position(other))

    def _run(self, job: Job) -> None:
        from vist3a.pipelines.export import claim_folder, export_scene, prompt_folder_name, write_json

        panel = job.panel
        panel.progress(2, "loading the model…" if self._pipe is None else "starting…")
        pipe = self.pipeline()
        t0 = time.perf_counter()
        panel.progress(5, "generating…")

        def on_step(i: int) -> None:
            panel.progress(5 + 75 * (i + 1) / job.steps, f"denoising step {i + 1}/{job.steps}")

        with step_callback(pipe, on_step):
            result = pipe(job.prompt, seed=job.seed, steps=job.steps, guidance_scale=job.cfg, progress=False)
        panel.progress(82, "writing the scene and rendering the fly-through…")
        folder = claim_folder(self.out_dir, prompt_folder_name(job.prompt, job.seed))
        report = export_scene(
            folder, result.gaussians, result.cameras, formats=DOWNLOAD_FORMATS,
            frames_per_view=self.frames_per_view, orbit_frames=0, fps=self.fps,
            render_size=self.render_size, device="cpu" if pipe.device.type == "cpu" else None, progress=False,
        )  # fmt: skip
        (folder / "prompt.txt").write_text(job.prompt + "\n", encoding="utf-8")
        write_json(
            folder / "settings.json",
            {"model": self.model_name, "prompt": job.prompt, "seed": job.seed, "steps": job.steps, "cfg": job.cfg},
        )
        self.generations += 1
        panel.finished(result, folder, report.files, time.perf_counter() - t0)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class ClientPanel:
    """One page's controls, status and result (its own GUI and 3D scene)."""

    def __init__(self, app: GeneratorApp, client: Any) -> None:
        self.app = app
        self.client = client
        gui = client.gui
        seed, steps, cfg = app.defaults()
        self.files: dict[str, Path] = {}
        self.job: Job | None = None
        gui.add_markdown(f"**vist3a — text to 3D** (model: `{html.escape(app.model_name)}`)")
        self.prompt = gui.add_text("Prompt", initial_value="")
        self.seed = gui.add_number("Seed", initial_value=seed, min=0, max=MAX_SEED, step=1)
        self.steps = gui.add_slider("Steps", min=1, max=MAX_STEPS, step=1, initial_value=steps)
        self.cfg = gui.add_number("CFG", initial_value=cfg, min=1.0, max=MAX_CFG, step=0.5)
        self.generate = gui.add_button("Generate")
        self.bar = gui.add_progress_bar(0.0, animated=False, visible=False)
        self.status = gui.add_markdown(f"Type a prompt (up to {app.max_prompt_chars} characters) and press Generate.")
        self.video = gui.add_html("", visible=False)
        self.downloads = {
            fmt: gui.add_button(f"Download .{fmt}", disabled=True) for fmt in DOWNLOAD_FORMATS
        }
        for fmt, button in self.downloads.items():
            button.on_click(functools.partial(self._download, fmt))
        with gui.add_folder("3D view"):
            self.viewer = SceneViewer(
                app.server, None, None, title="(no scene yet)", client=client, allow_upload=False,
                max_splats=app.max_splats,
            )
        self.generate.on_click(lambda _e: self._on_generate())

    # ------------------------------------------------------------------ events from the page
    def _on_generate(self) -> None:
        if self.job is not None:
            self.message("a generation of this page is already queued or running", error=True)
            return
        try:
            prompt = validate_prompt(self.prompt.value, self.app.max_prompt_chars)
            seed, steps, cfg = validate_settings(self.seed.value, self.steps.value, self.cfg.value)
        except InputError as exc:
            self.message(str(exc), error=True)
            return
        self.job = Job(prompt, seed, steps, cfg, self)
        self.generate.disabled = True
        for b in self.downloads.values():
            b.disabled = True
        ahead = self.app.submit(self.job)
        self.queued(ahead)

    def _download(self, fmt: str, _event: Any = None) -> None:
        path = self.files.get(f"scene.{fmt}")
        if path is None or not path.is_file():
            self.message(f"no .{fmt} file yet: generate a scene first", error=True)
            return
        name = f"{path.parent.name}.{fmt}"
        self.client.send_file_download(name, path.read_bytes(), save_immediately=True)

    # ------------------------------------------------------------------ updates from the worker
    def message(self, text: str, error: bool = False) -> None:
        self.status.content = f"**Error:** {html.escape(text)}" if error else text

    def queued(self, ahead: int) -> None:
        if ahead < 0:
            return
        self.bar.visible = True
        self.bar.animated = True
        self.bar.value = 0.0
        self.message("queued: starting now…" if ahead == 0 else f"queued: {ahead} generation(s) ahead of yours")

    def progress(self, percent: float, text: str) -> None:
        self.bar.visible = True
        self.bar.animated = True
        self.bar.value = float(min(max(percent, 0.0), 100.0))
        self.message(text)

    def failed(self, text: str) -> None:
        self.job = None
        self.bar.visible = False
        self.generate.disabled = False
        self.message(text, error=True)

    def finished(self, result: Any, folder: Path, files: dict[str, Path], seconds: float) -> None:
        self.files = dict(files)
        self.viewer.show(result.gaussians, result.cameras, title=html.escape(result.prompt[:80]))
        video = files.get("video.mp4")
        if video is not None and video.stat().st_size <= MAX_INLINE_VIDEO:
            data = base64.b64encode(video.read_bytes()).decode("ascii")
            self.video.content = (
                '<video id="vist3a-flythrough" controls autoplay loop muted playsinline style="width:100%" '
                f'src="data:video/mp4;base64,{data}"></video>'
            )
            self.video.visible = True
        for b in self.downloads.values():
            b.disabled = False
        self.bar.value = 100.0
        self.bar.animated = False
        self.generate.disabled = False
        self.job = None
        n = self.viewer.n_splats
        self.message(f"done in {seconds:.1f} s: {n:,} splats, {len(result.cameras)} cameras → `{folder.name}`")
