"""The webhooks benchmark's receiver: answers 204 at once and remembers when each webhook-id
arrived (``GET /arrivals``). Run as its own process: uvicorn bench.webhook_receiver:app."""

from __future__ import annotations

import time

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

arrivals: dict[str, float] = {}
duplicates = 0


async def receive(request: Request) -> Response:
    global duplicates
    await request.body()
    msg_id = request.headers.get("webhook-id", "")
    if msg_id in arrivals:
        duplicates += 1
    arrivals.setdefault(msg_id, time.time())
    return Response(status_code=204)


async def report(request: Request) -> Response:
    del request
    return Response(orjson.dumps({"arrivals": arrivals, "duplicates": duplicates}))


app = Starlette(routes=[Route("/hook/{n}", receive, methods=["POST"]), Route("/arrivals", report)])
