"""`lumio dev`'s local webhook receiver: takes Standard Webhooks deliveries on ``POST /hook``,
checks their signature with the demo endpoint's secret, and lists them at ``GET /`` (newest
first, the page reloads every 3 s), so that a first run shows a go-live arriving signed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from lumio.webhooks.signing import sign


@dataclass
class Inbox:
    secret: str = ""
    entries: deque[tuple[float, str, str, bool]] = field(default_factory=lambda: deque(maxlen=100))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def verified(self, headers: dict[str, str], body: bytes) -> bool:
        msg_id, stamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "0")
        if not self.secret or not stamp.isdigit() or abs(time.time() - int(stamp)) > 300:
            return False
        expected = sign(self.secret, msg_id, int(stamp), body)
        given = headers.get("webhook-signature", "").split(" ")
        return any(hmac.compare_digest(expected, g) for g in given)


def _fingerprint(secret: str) -> str:
    digest = hashlib.sha256(secret.encode()).digest()[:6]
    return base64.b64encode(digest).decode()


def create_app(inbox: Inbox) -> Starlette:
    async def receive(request: Request) -> Response:
        body = await request.body()
        ok = inbox.verified(dict(request.headers), body)
        with inbox.lock:
            inbox.entries.appendleft(
                (
                    time.time(),
                    request.headers.get("webhook-id", ""),
                    body.decode("utf-8", "replace"),
                    ok,
                )
            )
        return Response(status_code=204 if ok else 401)

    async def page(request: Request) -> Response:
        del request
        with inbox.lock:
            rows = "".join(
                f"<tr><td>{time.strftime('%H:%M:%S', time.localtime(at))}</td>"
                f"<td>{'signature valid' if ok else 'SIGNATURE INVALID'}</td>"
                f"<td><code>{html.escape(msg_id)}</code></td><td><pre>{html.escape(body)}</pre></td></tr>"
                for at, msg_id, body, ok in inbox.entries
            )
        document = (
            "<!doctype html><html lang=en><meta charset=utf-8><meta http-equiv=refresh content=3>"
            "<title>Lumio dev: webhook receiver</title><h1>Webhooks received</h1>"
            f"<p>Secret fingerprint {_fingerprint(inbox.secret)}; newest first.</p>"
            "<table><tr><th>at</th><th>check</th><th>webhook-id</th><th>body</th></tr>"
            f"{rows or '<tr><td colspan=4>nothing yet</td></tr>'}</table></html>"
        )
        headers = {"Content-Security-Policy": "default-src 'none'"}
        return HTMLResponse(document, headers=headers)

    return Starlette(routes=[Route("/hook", receive, methods=["POST"]), Route("/", page)])
