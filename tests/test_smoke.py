from aiohttp.test_utils import TestClient

from .conftest import Tech, join, start_session


async def test_start_join_chat_end(client: TestClient, tech: Tech) -> None:
    started = await start_session(client, tech)
    joined = await join(client, started["key"])
    assert joined["session_id"] == started["session_id"]
    ws = await client.ws_connect(joined["ws_url"])
    try:
        await ws.send_json({"type": "hello", "token": joined["participant_token"]})
        welcome = await ws.receive_json()
        assert welcome["type"] == "welcome"
    finally:
        await ws.close()
