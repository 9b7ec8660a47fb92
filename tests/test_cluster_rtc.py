"""Two broker processes sharing PostgreSQL and Redis: a screen share works with its peers
on different nodes. See tests/cluster.py for how the nodes are run."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from .cluster import TECH_PASSWORD, Node, cluster
from .cluster_support import (
    _log_in,
    _next_of,
    _post,
    _start_and_join,
)
from .netns import NetnsUnavailable, loopback_only
from .rtc_peer import AiortcPeer
from .rtc_support import SDP, must_run
from .test_chaos import _transcript


async def _rtc_peer(http: aiohttp.ClientSession, node: Node, session_id: str, token: str,
                    share_id: str, *, sharer: bool, offer_early: bool = False
                    ) -> tuple[AiortcPeer, str]:
    """An aiortc peer on a session socket at `node`, synced; and its sender name."""
    ws = await http.ws_connect(f"{node.base}/api/v1/sessions/{session_id}/ws")
    await ws.send_json({"type": "hello", "token": token, "after": 0})
    peer = AiortcPeer(ws, share_id, sharer=sharer, offer_early=offer_early)
    welcome = await peer.next("welcome")
    await peer.next("synced")
    return peer, str(welcome["you"]["sender"])


async def _until_pong(peer: AiortcPeer) -> list[dict[str, Any]]:
    """What reaches the peer until the answer to a ping: the broker has handled all that
    the peer sent before."""
    await peer.send("ping")
    frames = []
    for _ in range(1000):
        frame = await peer.next()
        if frame["type"] == "pong":
            return frames
        frames.append(frame)
    raise AssertionError(f"no pong among {frames[-5:]}")


async def _offered(peer: AiortcPeer) -> None:
    """Until the peer has sent its offer, and the broker has handled it."""
    async with asyncio.timeout(10):
        while peer.offers == 0:
            await asyncio.sleep(0.02)
    await _until_pong(peer)


async def test_a_screen_share_with_its_peers_on_two_nodes(tmp_path: Path) -> None:
    """The technician at node 1 asks for the screen of the end user's agent at node 2 and
    sees it: consent, start, an offer made before the technician was ready (held for it),
    answer and candidates across nodes, real video frames, pause and resume, remote
    control, and a stop sent by both at once, stored once. Then the technician shows their
    screen to the end user's page at node 2, offering before the page is ready."""
    async with cluster(tmp_path) as nodes, aiohttp.ClientSession() as http:
        one, two = nodes.nodes
        alice = await nodes.technician("alice@example.com", "Alice")
        session_id, participant = await _start_and_join(http, one, two, alice)
        status, link = await _post(
            http, f"{two.base}/api/v1/sessions/{session_id}/agent-link", participant)
        assert status == 201, link
        status, admitted = await _post(http, f"{two.base}/api/v1/agent/join",
                                       link=link["link"])
        assert status == 200, admitted
        # Every socket opens before the test enters its loopback-only network namespace
        # (the nodes, PostgreSQL and Redis are outside it; the peers' media inside).
        technician, tech_sender = await _rtc_peer(http, one, session_id, alice, "view",
                                                  sharer=False)
        agent, agent_sender = await _rtc_peer(http, two, session_id,
                                              admitted["participant_token"], "view",
                                              sharer=True, offer_early=True)
        page, page_sender = await _rtc_peer(http, two, session_id, participant, "show",
                                            sharer=False)
        await agent.send("agent.hello", version="0.1.0", platform="Linux")
        assert (await technician.next_event("agent.connected"))["author"]["sender"] == \
            agent_sender
        try:
            namespace = loopback_only()
            namespace.__enter__()
        except (NetnsUnavailable, PermissionError, OSError) as exc:
            must_run(f"cannot make a network namespace: {exc}")
        try:
            try:
                await _share_across_nodes(technician, agent, page, tech_sender,
                                          agent_sender, page_sender)
            finally:
                for peer in (technician, agent, page):
                    await peer.close()
        finally:
            namespace.__exit__(None, None, None)

        # Each change stored once, in the order it was made, whichever node made it.
        shares = [(e["type"], e["share_id"])
                  for e in await _transcript(http, one.base, alice, session_id)
                  if e["type"].startswith(("share.", "control."))]
        assert [kind for kind, share in shares if share == "view"] == [
            "share.requested", "share.consented", "share.started", "share.paused",
            "share.resumed", "control.requested", "control.granted", "control.stopped",
            "share.stopped"]
        assert [kind for kind, share in shares if share == "show"] == [
            "share.started", "share.stopped"]


async def _share_across_nodes(technician: AiortcPeer, agent: AiortcPeer, page: AiortcPeer,
                              tech_sender: str, agent_sender: str, page_sender: str) -> None:
    # The agent's share is asked for at node 1; the agent said hello at node 2.
    await technician.share("share.request", direction="end_user_to_technician",
                           source="agent")
    requested = await agent.next_event("share.requested")
    assert (requested["sharer"], requested["viewer"]) == (agent_sender, tech_sender)
    await agent.share("share.consent", accept=True)
    await technician.next_event("share.consented")
    await agent.share("share.start")
    await technician.next_event("share.started")

    # The agent offers at once; the technician is not ready yet: the offer waits.
    await agent.share("rtc.ready")
    await _offered(agent)
    await technician.share("rtc.ready")
    assert (await technician.next("rtc.config"))["id"] == "view"
    assert (await technician.next("rtc.offer"))["restart"] is False
    await asyncio.wait_for(technician.got_frame.wait(), 20)
    await technician.wait_frames(10)
    assert agent.offers == 1  # the waiting offer was the one: no rtc.peer_ready for another
    # End-of-candidates both ways (the offer and answer carry aiortc's candidates).
    await technician.share("rtc.candidate", candidate="", sdp_mid="0", sdp_mline_index=0)
    assert (await agent.next("rtc.candidate"))["candidate"] == ""
    await agent.share("rtc.candidate", candidate="", sdp_mid="0", sdp_mline_index=0)
    assert (await technician.next("rtc.candidate"))["sdp_mid"] == "0"

    # Pause at node 1, resume at node 1 after the agent stopped sending; frames again.
    await technician.share("share.pause")
    assert (await agent.next_event("share.paused"))["author"]["sender"] == tech_sender
    await agent.pause_media(True)
    await technician.share("share.resume")
    await agent.next_event("share.resumed")
    await agent.pause_media(False)
    await technician.wait_frames(10)

    # Remote control: asked for at node 1, granted at node 2.
    await technician.share("control.request")
    assert (await agent.next_event("control.requested"))["control"] == "requested"
    await agent.share("control.consent", accept=True)
    assert (await technician.next_event("control.granted"))["author"]["sender"] == \
        agent_sender

    # Both stop it at the same moment, on their own nodes: it is stopped once.
    await asyncio.gather(technician.share("share.stop"), agent.share("share.stop"))
    answers = [await _until_pong(technician), await _until_pong(agent)]
    refused = [f for frames in answers for f in frames if f["type"] == "error"]
    assert [(f["code"], f["ref"]) for f in refused] == [("share_ended", "view")], refused
    for peer, frames in zip((technician, agent), answers, strict=True):
        if not any(f["type"] == "event" and f["event"]["type"] == "share.stopped"
                   for f in frames):
            await peer.next_event("share.stopped")
    await technician.share("rtc.candidate", candidate="")
    assert (await technician.next("error"))["code"] == "share_ended"

    # The other way: the technician (node 1) shows their screen and offers before the end
    # user's page (node 2) is ready; the page gets the offer when it says rtc.ready.
    await technician.switch("show", sharer=True, offer_early=True)
    await technician.share("share.request", direction="technician_to_end_user")
    await technician.share("share.start")
    started = await page.next_event("share.started")
    while started["share_id"] != "show":  # the page saw the agent's share go by
        started = await page.next_event("share.started")
    assert (started["sharer"], started["viewer"]) == (tech_sender, page_sender)
    await technician.share("rtc.ready")
    await _offered(technician)
    await page.share("rtc.ready")
    assert (await page.next("rtc.config"))["id"] == "show"
    await page.next("rtc.offer")
    await asyncio.wait_for(page.got_frame.wait(), 20)
    await page.wait_frames(5)
    assert technician.offers == 1
    await page.share("share.stop")
    assert (await technician.next_event("share.stopped"))["author"]["sender"] == page_sender


async def test_a_supervisor_at_another_node_gets_the_screen_relayed(tmp_path: Path) -> None:
    """The watching admin's socket is at node 2, the technician's at node 1: the relay's
    signaling (docs/supervision.md, "The shared screen") crosses the bus both ways, and
    the supervisor leaving reaches the technician; the end user (node 2) gets none of it."""
    async with cluster(tmp_path) as nodes, aiohttp.ClientSession() as http, \
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as boss:
        one, two = nodes.nodes
        alice = await nodes.technician("alice@example.com", "Alice")
        await nodes.cli("technician", "add", "--email", "root@example.com", "--name", "Root",
                        "--admin", stdin=TECH_PASSWORD + "\n")
        session_id, participant = await _start_and_join(http, one, two, alice)
        technician, _ = await _rtc_peer(http, one, session_id, alice, "s1", sharer=False)
        user, _ = await _rtc_peer(http, two, session_id, participant, "s1", sharer=True)
        await technician.share("share.request")
        await user.next_event("share.requested")
        await user.share("share.consent", accept=True)
        await user.share("share.start")
        await technician.next_event("share.started")

        assert (await _log_in(boss, two, "root@example.com", TECH_PASSWORD))[0] == 303
        watch = await boss.ws_connect(f"{two.base}/api/v1/sessions/{session_id}/watch")
        await _next_of(watch, "synced")
        await watch.send_json({"type": "watch.ready", "share": "s1"})
        relay = (await _next_of(watch, "watch.config"))["id"]
        assert (await technician.next("watch.peer_ready"))["supervisor"]["name"] == "Root"
        await technician.send("watch.offer", id=relay, sdp=SDP)
        assert (await _next_of(watch, "watch.offer"))["sdp"] == SDP
        await watch.send_json({"type": "watch.answer", "id": relay, "sdp": SDP})
        assert (await technician.next("watch.answer"))["id"] == relay
        await watch.close()
        assert (await technician.next("watch.stop"))["reason"] == "left"
        leaked = [f["type"] for f in await _until_pong(user) if f["type"].startswith("watch.")]
        assert leaked == []
        for peer in (technician, user):
            await peer.close()
