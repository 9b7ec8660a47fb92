"""The bare aiohttp baseline: the broker's request and socket pattern with no storage.

Run by bench/core.py as a subprocess: ``python bench/_baseline.py --port N --token T``.
Same routes and frame shapes as the broker, kept in dicts: POST /api/v1/sessions (Bearer
token) answers a nine-digit key, POST /api/v1/join consumes it once and answers a
participant token, and /api/v1/sessions/{id}/ws takes a hello, then relays each
``chat.send`` as an ``event`` frame to every socket of the session plus a ``chat.ack`` to
the sender, exactly the frames the broker sends. No database, no journal, no access log.
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class State:
    def __init__(self, token: str) -> None:
        self.token = token
        self.keys: dict[str, str] = {}  # nine digits -> session id
        self.participants: dict[str, str] = {}  # participant token -> session id
        self.sessions: dict[str, dict[str, Any]] = {}


STATE = web.AppKey("state", State)


def _now() -> str:
    return datetime.fromtimestamp(time.time(), UTC).isoformat(timespec="seconds")


async def start_session(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if request.headers.get("Authorization", "") != f"Bearer {state.token}":
        return web.json_response({"error": "unauthenticated"}, status=401)
    session_id = secrets.token_urlsafe(16)
    code = f"{secrets.randbelow(10**9):09d}"
    state.keys[code] = session_id
    state.sessions[session_id] = {"seq": 1, "sockets": {}}
    now = _now()
    return web.json_response({
        "session_id": session_id, "state": "waiting",
        "technician": {"id": 1, "name": "Bench"}, "end_user_name": None,
        "created_at": now, "started_at": None, "ended_at": None, "end_reason": None,
        "key_expires_at": now, "key": f"{code[:3]} {code[3:6]} {code[6:]}",
        "join_url": f"http://127.0.0.1/j/{secrets.token_urlsafe(24)}", "expires_at": now,
    }, status=201)


async def join(request: web.Request) -> web.Response:
    state = request.app[STATE]
    data = await request.json()
    code = "".join(str(data.get("key", "")).split())
    session_id = state.keys.pop(code, None)
    if session_id is None:
        return web.json_response({"error": "key_unknown"}, status=404)
    token = "sbp_" + secrets.token_urlsafe(32)
    state.participants[token] = session_id
    state.sessions[session_id]["seq"] += 1
    return web.json_response({
        "session_id": session_id, "participant_token": token, "technician_name": "Bench",
        "name": data.get("name") or "Guest", "ws_url": f"/api/v1/sessions/{session_id}/ws",
    })


async def session_socket(request: web.Request) -> web.WebSocketResponse:
    state = request.app[STATE]
    session_id = request.match_info["session_id"]
    ws = web.WebSocketResponse(compress=False, heartbeat=30.0, max_msg_size=64 * 1024)
    await ws.prepare(request)
    hello = await ws.receive(timeout=10)
    token = json.loads(hello.data).get("token") if hello.type == WSMsgType.TEXT else None
    session = state.sessions.get(session_id)
    if session is None or token is None:
        await ws.close(code=4401, message=b"unauthenticated")
        return ws
    if token == state.token:
        you = {"role": "technician", "name": "Bench", "sender": "t1"}
    elif state.participants.get(token) == session_id:
        you = {"role": "end_user", "name": "Guest", "sender": "p1"}
    else:
        await ws.close(code=4401, message=b"unauthenticated")
        return ws
    sockets: dict[str, web.WebSocketResponse] = session["sockets"]
    sockets[you["sender"]] = ws
    try:
        await ws.send_str(DUMPS({"type": "welcome", "session": {"session_id": session_id},
                                 "you": you}))
        await ws.send_str(DUMPS({"type": "synced", "last_seq": session["seq"]}))
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            if data.get("type") != "chat.send":
                continue
            session["seq"] += 1
            seq = session["seq"]
            frame = DUMPS({"type": "event", "event": {
                "seq": seq, "type": "message", "at": _now(), "author": you,
                "text": data["text"], "client_id": data["id"]}})
            for other in list(sockets.values()):
                await other.send_str(frame)
            await ws.send_str(DUMPS({"type": "chat.ack", "id": data["id"], "seq": seq}))
    finally:
        if sockets.get(you["sender"]) is ws:
            del sockets[you["sender"]]
    return ws


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    app = web.Application(client_max_size=64 * 1024)
    app[STATE] = State(args.token)
    app.router.add_post("/api/v1/sessions", start_session)
    app.router.add_post("/api/v1/join", join)
    app.router.add_get("/api/v1/sessions/{session_id}/ws", session_socket)
    print(f"baseline on 127.0.0.1:{args.port}", flush=True)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
