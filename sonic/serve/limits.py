"""Refuse oversized request bodies with 413 before they are read.

A pure ASGI middleware, outside FastAPI's body parsing: a declared ``Content-Length`` over the
limit is answered at once, without reading a byte of the body; a body without one (chunked) is
counted as it arrives and cut off at the limit — the app then sees a disconnect, and whatever it
would have answered is replaced by the 413.
"""
from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

Message = dict[str, Any]
ASGIApp = Callable[[dict, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                   Awaitable[None]]


def _detail(limit: int) -> bytes:
    return json.dumps({"detail": f"upload too large: the limit is {limit / 1e6:g} MB "
                                 "(sonic serve --max-upload-mb)"}).encode()


async def _send_413(send, limit: int) -> None:
    body = _detail(limit)
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await _send_413(send, self.max_bytes)

        seen, exceeded, started = 0, False, False

        async def limited_receive() -> Message:
            nonlocal seen, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:  # the app's own answer to the cut-off body is replaced by the 413
                if not started and message["type"] == "http.response.start":
                    started = True
                    await _send_413(send, self.max_bytes)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, limited_receive, guarded_send)
        if exceeded and not started:
            await _send_413(send, self.max_bytes)
