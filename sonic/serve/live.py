"""``/api/live``: the explorer's microphone, classified as it listens (a WebSocket).

The protocol, one connection per listener:

1. the page sends a JSON text message ``{"sample_rate": 48000, "model": null, "hop": 0.25,
   "unknown_threshold": null}`` (only ``sample_rate`` is required);
2. the server answers ``{"type": "ready", ...}`` (:meth:`LiveStream.describe`), or
   ``{"type": "error", "detail": ...}`` and closes (code 1008);
3. the page sends binary messages of mono 16-bit little-endian PCM at that rate, each at most
   :data:`~sonic.inference.live.MAX_CHUNK_BYTES`;
4. every ``hop`` seconds of audio the server sends ``{"type": "result", ...}``
   (:meth:`LiveStream.step`): the rolling top-3 and the events of the last minute;
5. the text message ``stop`` ends the stream: the window being scored is sent, then one of the
   latest audio, and the server closes (1000).

The guard (:mod:`sonic.serve.guard`) has refused a foreign ``Origin``, an unknown ``Host`` and a
missing token before this runs. At most :data:`MAX_LISTENERS` streams at once (1013 "try again
later" beyond); scoring runs on the thread pool, through the server's one :class:`Predictor`,
while this loop goes on receiving: one window is scored at a time, always the latest, so a slow
CPU skips windows instead of falling behind the microphone.
"""
from __future__ import annotations

import asyncio
import contextlib
import json

from fastapi import WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from sonic.inference.events import EventParams
from sonic.inference.live import MAX_HOP, MIN_HOP, LiveError, LiveParams, LiveStream, pcm16
from sonic.inference.predictor import Predictor, UnknownModelError

MAX_LISTENERS = 4  # live streams scored at once
MAX_START_BYTES = 4096  # the first (JSON) message


class LiveStart(BaseModel):
    sample_rate: int = Field(ge=4000, le=192000, description="Hz of the PCM that follows")
    model: str | None = None
    hop: float = Field(LiveParams.hop, ge=MIN_HOP, le=MAX_HOP)
    unknown_threshold: float | None = Field(None, ge=0, le=1)


class Listeners:
    """A count of open live streams, bounded by :data:`MAX_LISTENERS`."""

    def __init__(self, limit: int = MAX_LISTENERS) -> None:
        self.open, self.limit = 0, limit


async def _refuse(ws: WebSocket, detail: str, code: int = 1008) -> None:
    await ws.send_json({"type": "error", "detail": detail})
    await ws.close(code)


async def _start(ws: WebSocket, predictor: Predictor, default_threshold: float | None
                 ) -> LiveStream | None:
    """Read the first message and build the stream, or refuse with the reason."""
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        return None
    text = message.get("text")
    if text is None or len(text) > MAX_START_BYTES:
        await _refuse(ws, f"the first message must be JSON settings under {MAX_START_BYTES} "
                          "bytes")
        return None
    try:
        start = LiveStart.model_validate(json.loads(text))
        threshold = default_threshold if start.unknown_threshold is None \
            else start.unknown_threshold
        return LiveStream(predictor, start.sample_rate, start.model, LiveParams(hop=start.hop),
                          EventParams(), threshold)
    except (ValueError, ValidationError, UnknownModelError) as err:
        await _refuse(ws, f"live settings refused: {err}")
        return None


async def serve_live(ws: WebSocket, predictor: Predictor, listeners: Listeners,
                     default_threshold: float | None) -> None:
    """Run one live stream until the page closes it or sends something unusable."""
    await ws.accept()
    if listeners.open >= listeners.limit:
        return await _refuse(ws, f"{listeners.limit} live streams are open; try again later",
                             code=1013)
    listeners.open += 1
    try:
        stream = await _start(ws, predictor, default_threshold)
        if stream is None:
            return
        await ws.send_json(stream.describe())
        await _listen(ws, stream)
    except WebSocketDisconnect:
        return
    finally:
        listeners.open -= 1


async def _listen(ws: WebSocket, stream: LiveStream) -> None:
    """Push every PCM message; score the latest window whenever one is due and none is being
    scored (the scoring task sends its own answer)."""
    async def score() -> None:
        await ws.send_json(await run_in_threadpool(stream.step))

    scoring: asyncio.Task | None = None
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") == "stop":
                if scoring is not None:
                    await scoring
                if stream.produced >= stream.size:
                    await ws.send_json(await run_in_threadpool(stream.step))
                return await ws.close(1000)
            if message.get("bytes") is None:
                return await _refuse(ws, "after the settings, send binary 16-bit PCM messages "
                                         "(or the text stop)")
            try:
                stream.push(pcm16(message["bytes"]))
                if scoring is not None and scoring.done():
                    scoring, done = None, scoring
                    done.result()  # a failed window ends the stream with its reason
                if scoring is None and stream.due():
                    scoring = asyncio.create_task(score())
            except LiveError as err:
                return await _refuse(ws, str(err), code=1009 if "limit" in str(err) else 1008)
    finally:
        if scoring is not None:
            scoring.cancel()
            with contextlib.suppress(BaseException):
                await scoring
