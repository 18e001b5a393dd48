"""``sonic serve``: the JSON API and the explorer page, one FastAPI app over one :class:`Predictor`.

Routes are thin — parse, call the predictor or generator, serialise — and every error is a typed
exception mapped to an HTTP status in :data:`ERRORS`, so the server answers every request and
never dies on one. Uploads are written to a fresh temporary folder under a fixed name: nothing
in a request (file name, model name) is ever used as a path. The page and the API
documentation are served from local files; nothing comes from a CDN.

Untrusted uploads are bounded (see docs/serving-limits.md): the body by ``--max-upload-mb``
(:mod:`sonic.serve.limits`), a live stream's messages and listeners by
:mod:`sonic.serve.live`, the audio by its header before decoding (``--max-seconds``, rate,
channels) and by its samples while decoding (non-finite, amplitude), the windows by
:class:`~sonic.inference.windows.Windowing`'s bounds, the answer of ``/api/inspect`` by
:data:`MAX_INSPECT_VALUES`, and the uploads decoded at once by ``--max-decoders``. Requests from
other sites are refused first (:mod:`sonic.serve.guard`). Upload folders left by a killed
server are swept at start.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import secrets
import shutil
import tempfile
import threading
from pathlib import Path, PurePath
from typing import Annotated, Iterator, Literal

from fastapi import FastAPI, File, Query, Request, UploadFile, WebSocket
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field

from sonic.audio.io import AudioLimits, BadAudioError, audio_extensions, read_error
from sonic.inference.events import EventParams, prediction_events
from sonic.inference.generate import SoundGenerator, UnknownClassError
from sonic.inference.inspect import feature_layers, mel_image
from sonic.inference.predictor import ENSEMBLE, Predictor, UnknownModelError
from sonic.inference.windows import MAX_WINDOW, MAX_WINDOWS, WindowingError
from sonic.runtime import pick_device, sweep, tagged
from sonic.serve.guard import SiteGuard, allowed_hosts, is_loopback
from sonic.serve.limits import BodyLimit
from sonic.serve.live import Listeners, serve_live

STATIC = Path(__file__).parent / "static"
UPLOAD_PREFIX = "sonic-upload-"
MAX_GENERATE = 8  # clips per generate request
MAX_SECONDS = 300.0  # longest upload decoded, by default
MAX_INSPECT_VALUES = 1_000_000  # numbers in one /api/inspect answer (about 4 MB of JSON)
BUSY_WAIT_S = 30.0  # how long a request waits for a decoding slot before a 503


class NoGeneratorError(RuntimeError):
    """The server was started without a cGAN checkpoint."""


class BusyError(RuntimeError):
    """Every decoding slot stayed taken for :data:`BUSY_WAIT_S`."""


class AnswerTooLargeError(ValueError):
    """An /api/inspect answer over :data:`MAX_INSPECT_VALUES` numbers."""


class EventParamsError(ValueError):
    """Event thresholds that do not fit together (e.g. off above on)."""


ERRORS: dict[type[Exception], int] = {
    BadAudioError: 422, EventParamsError: 422, WindowingError: 422, AnswerTooLargeError: 422, UnknownModelError: 404,
    UnknownClassError: 404, NoGeneratorError: 503, BusyError: 503,
}


class GenerateRequest(BaseModel):
    label: str = Field(description="class to generate", examples=["siren"])
    n: int = Field(1, ge=1, le=MAX_GENERATE, description="number of clips")
    seed: int | None = Field(None, ge=0, le=2**32 - 1,
                             description="same seed, same clips (default: random)")


def display_name(upload: UploadFile) -> str:
    """The client's file name for messages only (never a path): its last part, shortened."""
    return PurePath(upload.filename or "upload").name[:200] or "upload"


@contextlib.contextmanager
def saved_upload(upload: UploadFile) -> Iterator[Path]:
    """The upload in a fresh temporary folder as ``upload<suffix>`` (the suffix only if it is a
    known audio one); the folder is removed afterwards."""
    suffix = PurePath(upload.filename or "").suffix.lower()
    suffix = suffix if suffix in audio_extensions() else ""
    with tempfile.TemporaryDirectory(prefix=tagged(UPLOAD_PREFIX)) as tmp:
        path = Path(tmp) / f"upload{suffix}"
        with open(path, "wb") as out:
            shutil.copyfileobj(upload.file, out, 1 << 20)
        yield path


def upload_error(upload: UploadFile, path: Path, reason: str) -> BadAudioError:
    """The error for an unusable upload, naming the client's file, never the temporary path."""
    return BadAudioError(display_name(upload), reason.replace(str(path), display_name(upload)))


@contextlib.contextmanager
def decoding_slot(slots: threading.BoundedSemaphore) -> Iterator[None]:
    """Hold one of the server's decoding slots (at most ``--max-decoders`` uploads are decoded
    at once), or raise BusyError after :data:`BUSY_WAIT_S`."""
    if not slots.acquire(timeout=BUSY_WAIT_S):
        raise BusyError(f"busy: every decoding slot stayed taken for {BUSY_WAIT_S:g} s; "
                        "retry later (sonic serve --max-decoders)")
    try:
        yield
    finally:
        slots.release()


def inspect_size(layers: list[dict], mel: dict) -> int:
    """Numbers in an /api/inspect answer: the mel image and every feature map."""
    h, w = mel["shape"]
    return h * w + sum(len(layer["maps"]) * layer["shape"][0] * layer["shape"][1]
                       for layer in layers)


def describe_models(predictor: Predictor) -> list[dict]:
    models = []
    for name, clf in predictor.classifiers.items():
        meta = {k: v for k, v in clf.meta.items() if isinstance(v, (int, float))}
        models.append({"name": name, "architecture": type(clf.model).__name__,
                       "parameters": sum(p.numel() for p in clf.model.parameters()),
                       "layers": [n for n, _ in feature_layers(clf.model)], "metrics": meta})
    if ENSEMBLE in predictor.models:
        models.append({"name": ENSEMBLE, "architecture": "mean of " + ", ".join(
            predictor.classifiers), "parameters": sum(m["parameters"] for m in models),
            "layers": [], "metrics": {}})
    return models


def create_app(predictor: Predictor, generator: SoundGenerator | None = None,
               max_upload_bytes: int = 50_000_000, *,
               hosts: frozenset[str] | None = allowed_hosts("127.0.0.1"),
               token: str | None = None, max_decoders: int = 2,
               unknown_threshold: float | None = None) -> FastAPI:
    """The ASGI app: ``/`` (the page), ``/api/*`` (JSON), ``/docs`` (OpenAPI, served locally).

    ``hosts``: the Host names answered (None: any); ``token``: required on every request when
    set; ``max_decoders``: uploads decoded at once; ``unknown_threshold``: the default of
    ``/api/predict``'s. The audio limits are ``predictor.limits``.
    """
    sweep(tempfile.gettempdir(), UPLOAD_PREFIX)  # what a killed server left
    app = FastAPIOffline(title="Sonic", version="0.1.0", redoc_url=None,
                         description="Classify environmental sounds and generate new ones with "
                                     "the models the Sonic pipeline trained.")
    app.add_middleware(BodyLimit, max_bytes=max_upload_bytes)
    app.add_middleware(SiteGuard, hosts=hosts, token=token)  # added last: runs first
    gen_lock, slots = threading.Lock(), threading.BoundedSemaphore(max_decoders)
    listeners = Listeners()
    default_threshold = unknown_threshold

    for error, status in ERRORS.items():
        app.add_exception_handler(error, lambda _r, exc, status=status: JSONResponse(
            {"detail": str(exc)}, status_code=status))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}: {exc}"}, 500)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/api/models", summary="Loaded models, classes, features and limits")
    def models() -> dict:
        return {"default": predictor.default, "models": describe_models(predictor),
                "device": predictor.device.type, "precision": "bf16" if predictor.bf16 else "fp32",
                "classes": predictor.classes, "features": dataclasses.asdict(predictor.features),
                "window_s": predictor.features.duration, "max_upload_bytes": max_upload_bytes,
                "max_seconds": predictor.limits.max_seconds, "max_windows": MAX_WINDOWS,
                "generator": {"loaded": generator is not None,
                              "classes": generator.classes if generator else []}}

    @app.post("/api/predict", summary="Classify an uploaded audio file",
              description="The same result as `sonic predict --format json` for one file: "
                          "clip-level top-k (mean of the window probabilities) and per window; "
                          "with `events=true`, also `events`: the sound events of "
                          "`sonic predict --events` (docs/events.md).")
    def predict(file: Annotated[UploadFile, File(description="audio file (WAV, FLAC, OGG, …)")],
                model: str | None = None,
                top_k: Annotated[int, Query(ge=1, le=100)] = 3,
                window: Annotated[float | None, Query(gt=0, le=MAX_WINDOW)] = None,
                hop: Annotated[float | None, Query(gt=0, le=MAX_WINDOW)] = None,
                unknown_threshold: Annotated[float | None, Query(ge=0, le=1)] = None,
                events: bool = False,
                on: Annotated[float, Query(ge=0, le=1)] = EventParams.on,
                off: Annotated[float, Query(ge=0, le=1)] = EventParams.off,
                min_duration: Annotated[float, Query(ge=0, le=MAX_WINDOW)] =
                EventParams.min_duration,
                merge_gap: Annotated[float, Query(ge=0, le=MAX_WINDOW)] = EventParams.merge_gap,
                detector: Literal["activity", "probability"] = EventParams.detector,
                on_db: Annotated[float, Query(ge=0, le=60)] = EventParams.on_db,
                off_db: Annotated[float, Query(ge=0, le=60)] = EventParams.off_db
                ) -> dict:
        model, windowing = predictor.resolve(model), predictor.windowing(window, hop)
        try:
            params = EventParams(on, off, min_duration, merge_gap, detector=detector,
                                 on_db=on_db, off_db=off_db)
        except ValueError as err:
            raise EventParamsError(str(err)) from None
        with decoding_slot(slots), saved_upload(file) as path:
            result = predictor.predict_file(path, model, windowing)
            if not result.ok:
                raise upload_error(file, path, result.error)
        result.path = display_name(file)
        result.unknown_threshold = default_threshold if unknown_threshold is None \
            else unknown_threshold
        answer = result.to_dict(min(top_k, len(predictor.classes)))
        if events:
            answer["events"] = [e.to_dict() for e in prediction_events(result, params)]
        return answer

    @app.post("/api/inspect", summary="Waveform, model input and feature maps of one window")
    def inspect(file: Annotated[UploadFile, File(description="audio file")],
                model: str | None = None,
                window_index: Annotated[int, Query(ge=0, le=MAX_WINDOWS)] = 0,
                channels: Annotated[int, Query(ge=1, le=64)] = 8,
                window: Annotated[float | None, Query(gt=0, le=MAX_WINDOW)] = None,
                hop: Annotated[float | None, Query(gt=0, le=MAX_WINDOW)] = None) -> dict:
        name = predictor.inspected_model(model)  # an unknown name: a 404 before decoding
        windowing = predictor.windowing(window, hop)
        with decoding_slot(slots), saved_upload(file) as path:
            try:
                inspected = predictor.inspect(path, name, window_index, channels, windowing)
            except Exception as err:  # noqa: BLE001 - the upload's failure, named
                raise upload_error(file, path, read_error(err)) from None
        size = inspect_size(inspected["layers"], inspected["mel"])
        if size > MAX_INSPECT_VALUES:
            raise AnswerTooLargeError(f"the answer would hold {size} numbers, over "
                                      f"{MAX_INSPECT_VALUES}: ask for fewer channels or a "
                                      "shorter window")
        return {"file": display_name(file), **inspected}

    @app.post("/api/generate", summary="New clips of a class from the cGAN (WAV + log-mel)")
    def generate(request: GenerateRequest) -> dict:
        if generator is None:
            raise NoGeneratorError("no generator loaded: start `sonic serve --generator "
                                   "data/models/cgan.pt` (made by `dvc repro`)")
        seed = secrets.randbelow(2**31) if request.seed is None else request.seed
        with gen_lock:
            samples = generator.sample(request.label, request.n, seed)
        rate = generator.features.sample_rate
        return {"label": request.label, "seed": seed, "sample_rate": rate,
                "clips": [{"wav_base64": base64.b64encode(s.wav_bytes(rate)).decode(),
                           "duration_s": round(len(s.wave) / rate, 3),
                           "mel": mel_image(s.db, generator.features.top_db)} for s in samples]}

    @app.websocket("/api/live")
    async def live(ws: WebSocket) -> None:
        """The microphone: JSON settings, then 16-bit PCM; top-3 and events every hop
        (:mod:`sonic.serve.live`)."""
        await serve_live(ws, predictor, listeners, default_threshold)

    return app


def load(models: list[str], generator: str | None, device: str = "cpu",
         precision: str = "auto", max_seconds: float = MAX_SECONDS
         ) -> tuple[Predictor, SoundGenerator | None]:
    """Classifier checkpoints (named by file stem) and the cGAN, if any.

    ``generator=None`` takes ``cgan.pt`` beside the first checkpoint when it exists; ``"none"``
    serves without one. Uploads longer than ``max_seconds`` are refused from their header.
    """
    limits = AudioLimits(max_seconds=max_seconds, hint="sonic serve --max-seconds")
    predictor = Predictor.from_checkpoints(models, device, precision=precision, limits=limits)
    if generator is None:
        beside = Path(models[0]).parent / "cgan.pt"
        generator = str(beside) if beside.is_file() else "none"
    gen = None if generator == "none" else SoundGenerator(generator, predictor.features,
                                                           device=device)
    return predictor, gen


def run(args: argparse.Namespace) -> int:
    import sys

    import uvicorn

    if not is_loopback(args.host) and not args.token:
        print(f"sonic serve: --host {args.host} opens the server to other machines: give a "
              "--token (or set SONIC_TOKEN) that every request must carry", file=sys.stderr)
        return 2
    try:
        predictor, gen = load(args.models, args.generator, pick_device(args.device),
                              args.precision, args.max_seconds)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"sonic serve: {err}", file=sys.stderr)
        return 2
    app = create_app(predictor, gen, int(args.max_upload_mb * 1e6),
                     hosts=allowed_hosts(args.host, args.allow_host), token=args.token,
                     max_decoders=args.max_decoders,
                     unknown_threshold=args.unknown_threshold)
    print(f"sonic serve: {', '.join(predictor.models)}; generator "
          f"{'loaded' if gen else 'none'}; http://{args.host}:{args.port}/ (API docs at /docs)",
          file=sys.stderr)
    # wsproto: the WebSocket library installed with Sonic (uvicorn's "auto" picks it unless
    # `websockets` is installed); no frame over 1 MiB reaches the app (/api/live's own limit
    # is sonic.inference.live.MAX_CHUNK_BYTES)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", ws="wsproto",
                ws_max_size=1 << 20)
    return 0
