"""Refuse requests from other sites: unknown ``Host``, foreign ``Origin``, missing token.

A pure ASGI middleware, the first thing every request meets:

- ``Host`` must be a loopback name, the bound address or a name given with ``--allow-host``
  (400 otherwise): a page whose DNS name is re-pointed at 127.0.0.1 (DNS rebinding) is refused.
- ``Origin``, when a browser sends one, must be this server itself (403 otherwise): any web
  page the user visits can POST a form to a local server, and this stops it.
- With a token (required by ``sonic serve`` for a non-loopback ``--host``), every request must
  carry it: ``Authorization: Bearer TOKEN``, or the cookie a browser gets by opening
  ``/?token=TOKEN`` once (HttpOnly, SameSite=Strict); 401 otherwise. The page itself (``/`` and
  ``/static/``, files with nothing secret) is served without it, so that it can ask for it.
- WebSockets (``/api/live``) meet the same checks before they are accepted (a refusal is the
  HTTP 403 of a closed handshake); a browser cannot set headers on one, so there the token may
  also come as ``?token=TOKEN``.
"""
from __future__ import annotations

import ipaddress
import json
import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
COOKIE = "sonic_token"
PUBLIC = "/static/"  # with "/": the page's own files, served without the token


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(bind: str, extra: list[str] | tuple[str, ...] = ()) -> frozenset[str] | None:
    """Host names a request may name: loopback, the bound address and ``extra``; None (any)
    for a wildcard bind (0.0.0.0, ::) without ``extra``, where the token is the protection."""
    names = {name.lower().strip("[]") for name in extra}
    if bind in ("0.0.0.0", "::", ""):
        return frozenset(LOOPBACK_NAMES | names) if names else None
    return frozenset(LOOPBACK_NAMES | names | {bind.lower().strip("[]")})


def host_name(host: str) -> str:
    """``name[:port]`` or ``[v6]:port`` → the lower-case name or address, without the port."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


async def _refuse(send, status: int, detail: str, headers: list | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class SiteGuard:
    def __init__(self, app, hosts: frozenset[str] | None, token: str | None = None):
        self.app, self.hosts, self.token = app, hosts, token

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = query.get("token", [""])[0].encode()
        if scope["type"] == "websocket":
            if self._problem(headers) is not None or (self.token and not (
                    self._authorised(headers) or secrets.compare_digest(given,
                                                                        self.token.encode()))):
                return await send({"type": "websocket.close", "code": 1008})
            return await self.app(scope, receive, send)
        problem = self._problem(headers)
        if problem is not None:
            return await _refuse(send, *problem)
        if self.token and not self._authorised(headers):
            if scope["path"] == "/" and secrets.compare_digest(given, self.token.encode()):
                return await self._set_cookie(send)
            if not (scope["path"] == "/" or scope["path"].startswith(PUBLIC)):
                return await _refuse(send, 401, "a token is required: send 'Authorization: "
                                                "Bearer TOKEN', or open /?token=TOKEN in the "
                                                "browser")
        await self.app(scope, receive, send)

    def _problem(self, headers: dict[str, str]) -> tuple[int, str] | None:
        host = headers.get("host", "")
        if self.hosts is not None and host_name(host) not in self.hosts:
            return 400, (f"unknown Host {host[:100]!r}: this server answers to "
                         f"{', '.join(sorted(self.hosts))} (sonic serve --allow-host NAME)")
        origin = headers.get("origin")
        if origin is not None and urlsplit(origin).netloc.lower() != host.lower():
            return 403, f"cross-site request from {origin[:100]!r} refused"
        return None

    def _authorised(self, headers: dict[str, str]) -> bool:
        expected = self.token.encode()
        bearer = headers.get("authorization", "")
        if bearer.startswith("Bearer ") and secrets.compare_digest(bearer[7:].encode(), expected):
            return True
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # noqa: BLE001 - a malformed cookie header is no token
            return False
        return COOKIE in cookie and secrets.compare_digest(cookie[COOKIE].value.encode(), expected)

    async def _set_cookie(self, send) -> None:
        value = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/".encode()
        await send({"type": "http.response.start", "status": 303,
                    "headers": [(b"location", b"/"), (b"set-cookie", value),
                                (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
