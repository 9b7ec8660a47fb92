"""Shared by the screen sharing tests over the session socket: a running session with both
sockets open, a consented share, and settings with STUN and TURN servers."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from broker.settings import Settings

from .conftest import Socket, Tech, join, open_socket, start_session
from .rtc_support import send

VIEW = "end_user_to_technician"
SHOW = "technician_to_end_user"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", port=8080,
                    ice_servers="stun:127.0.0.1:3478,turn:127.0.0.1:3478?transport=udp",
                    turn_secret="s3cret", turn_credential_seconds=7200)


class Pair:
    """A running session with both participants' sockets open."""

    def __init__(self, session_id: str, tech: Socket, user: Socket, user_token: str) -> None:
        self.session_id = session_id
        self.tech = tech
        self.user = user
        self.user_token = user_token

    @property
    def tech_sender(self) -> str:
        return str(self.tech.welcome["you"]["sender"])

    @property
    def user_sender(self) -> str:
        return str(self.user.welcome["you"]["sender"])


async def open_pair(client: TestClient, tech: Tech, *, user_socket: bool = True) -> Pair:
    started = await start_session(client, tech)
    joined = await join(client, started["key"])
    tech_socket = await open_socket(client, started["session_id"], tech.token)
    user = await open_socket(client, started["session_id"], joined["participant_token"]) \
        if user_socket else Socket(None)
    return Pair(started["session_id"], tech_socket, user, joined["participant_token"])


@pytest.fixture
async def pair(client: TestClient, tech: Tech) -> Pair:
    return await open_pair(client, tech)


async def consented_share(pair: Pair, share_id: str = "s1") -> None:
    await send(pair.tech, "share.request", id=share_id, direction=VIEW)
    await pair.user.next_event("share.requested")
    await send(pair.user, "share.consent", id=share_id, accept=True)
    await pair.tech.next_event("share.consented")

