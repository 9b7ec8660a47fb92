"""Screen sharing over the session socket: the share's life as events, who may signal to
whom, frames held for a peer who is not ready, handovers and ends. Malformed SDP and
candidates, ICE servers and TURN credentials: tests/test_rtc_checks.py.

No media flows here (the SDP is a well-formed stand-in); tests/test_rtc_media.py makes real
WebRTC connections.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp.test_utils import TestClient

from .conftest import Tech, open_socket, start_session
from .rtc_pair_support import SHOW, VIEW, Pair, consented_share, open_pair
from .rtc_pair_support import pair as pair  # noqa: F401,PLC0414 - a fixture
from .rtc_pair_support import settings as settings  # noqa: F401,PLC0414 - a fixture
from .rtc_support import CANDIDATE, SDP, error_for, next_rtc, nothing_more, ping_pong, send


async def test_the_life_of_a_share_is_events_with_sequence_numbers(
        pair: Pair, client: TestClient, tech: Tech) -> None:
    await send(pair.tech, "share.request", id="s1", direction=VIEW)
    requested = await pair.user.next_event("share.requested")
    assert requested["share_id"] == "s1"
    assert requested["direction"] == VIEW and requested["source"] == "browser"
    assert requested["sharer"] == pair.user_sender and requested["viewer"] == pair.tech_sender
    assert requested["author"]["role"] == "technician"
    assert (await pair.tech.next_event("share.requested"))["seq"] == requested["seq"]

    await send(pair.user, "share.consent", id="s1", accept=True)
    consented = await pair.tech.next_event("share.consented")
    await send(pair.user, "share.start", id="s1")
    started = await pair.tech.next_event("share.started")
    await send(pair.tech, "share.pause", id="s1")
    paused = await pair.user.next_event("share.paused")
    assert paused["author"]["sender"] == pair.tech_sender
    await send(pair.tech, "share.resume", id="s1")
    resumed = await pair.user.next_event("share.resumed")
    await send(pair.user, "share.stop", id="s1")
    stopped = await pair.tech.next_event("share.stopped")
    assert stopped["reason"] == "stopped" and stopped["author"]["sender"] == pair.user_sender
    seqs = [e["seq"] for e in (requested, consented, started, paused, resumed, stopped)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 6

    # The log has them all, for the transcript and for a page that comes back later.
    response = await client.get(f"/api/v1/sessions/{pair.session_id}/events", headers=tech.auth)
    logged = [(e["seq"], e["type"]) for e in (await response.json())["events"]
              if e["type"].startswith("share.")]
    assert logged == list(zip(seqs, ["share.requested", "share.consented", "share.started",
                                     "share.paused", "share.resumed", "share.stopped"],
                              strict=True))

    # Stopped is final; a new request may follow.
    assert (await error_for(pair.user, "share.pause", id="s1"))["code"] == "share_ended"
    await send(pair.tech, "share.request", id="s2", direction=VIEW)
    assert (await pair.user.next_event("share.requested"))["share_id"] == "s2"


async def test_a_refusal_is_an_event_and_no_signaling_follows(pair: Pair) -> None:
    await send(pair.tech, "share.request", id="s1")
    await pair.user.next_event("share.requested")
    await send(pair.user, "share.consent", id="s1", accept=False)
    refused = await pair.tech.next_event("share.refused")
    assert refused["author"]["sender"] == pair.user_sender
    for socket, frame in ((pair.user, {"type": "rtc.offer", "sdp": SDP}),
                          (pair.tech, {"type": "rtc.ready"}),
                          (pair.tech, {"type": "rtc.answer", "sdp": SDP})):
        error = await error_for(socket, frame.pop("type"), id="s1", **frame)
        assert (error["code"], error["ref"]) == ("share_ended", "s1")
    await nothing_more(pair.tech)


async def test_no_signaling_before_consent(pair: Pair) -> None:
    await send(pair.tech, "share.request", id="s1")
    await pair.user.next_event("share.requested")
    # The end user's page (or anything holding its token) cannot skip the consent step...
    error = await error_for(pair.user, "rtc.offer", id="s1", sdp=SDP)
    assert (error["code"], error["ref"]) == ("share_not_consented", "s1")
    assert (await error_for(pair.user, "share.start", id="s1"))["code"] == "illegal_transition"
    # ...and the technician cannot reach the end user's browser with signaling either.
    for frame in ({"type": "rtc.ready"}, {"type": "rtc.candidate", "candidate": CANDIDATE},
                  {"type": "rtc.answer", "sdp": SDP}):
        error = await error_for(pair.tech, frame.pop("type"), id="s1", **frame)
        assert error["code"] == "share_not_consented"
    # The technician cannot consent for the end user.
    assert (await error_for(pair.tech, "share.consent", id="s1", accept=True))["code"] \
        == "wrong_peer"
    await nothing_more(pair.user)


async def test_a_participant_of_another_session_cannot_signal(
        client: TestClient, make_tech: Callable[..., Awaitable[Tech]], pair: Pair) -> None:
    await consented_share(pair)
    await send(pair.tech, "rtc.ready", id="s1")
    await pair.tech.next("rtc.config")
    other = await open_pair(client, await make_tech("Mallory"))
    for socket in (other.user, other.tech):
        for frame in ({"type": "rtc.offer", "sdp": SDP}, {"type": "rtc.answer", "sdp": SDP},
                      {"type": "rtc.candidate", "candidate": CANDIDATE},
                      {"type": "share.stop"}, {"type": "share.pause"}):
            error = await error_for(socket, frame.pop("type"), id="s1", **frame)
            assert (error["code"], error["ref"]) == ("share_unknown", "s1")
    await nothing_more(pair.tech)
    await nothing_more(pair.user)


async def test_an_admin_watching_the_session_is_not_a_peer(
        client: TestClient, make_tech: Callable[..., Awaitable[Tech]], pair: Pair) -> None:
    await consented_share(pair)
    admin = await make_tech("Root", admin=True)
    watcher = await open_socket(client, pair.session_id, admin.token)
    for frame in ({"type": "rtc.candidate", "candidate": CANDIDATE}, {"type": "rtc.ready"},
                  {"type": "share.stop"}):
        error = await error_for(watcher, frame.pop("type"), id="s1", **frame)
        assert error["code"] == "not_share_peer"


async def test_each_side_sends_only_its_own_frames(pair: Pair) -> None:
    await consented_share(pair)
    assert (await error_for(pair.tech, "rtc.offer", id="s1", sdp=SDP))["code"] == "wrong_peer"
    assert (await error_for(pair.user, "rtc.answer", id="s1", sdp=SDP))["code"] == "wrong_peer"
    assert (await error_for(pair.user, "rtc.restart", id="s1"))["code"] == "wrong_peer"
    assert (await error_for(pair.tech, "share.start", id="s1"))["code"] == "wrong_peer"
    # A pause by the sharing side is theirs to end.
    await send(pair.user, "share.start", id="s1")
    await pair.tech.next_event("share.started")
    await send(pair.user, "share.pause", id="s1")
    await pair.tech.next_event("share.paused")
    assert (await error_for(pair.tech, "share.resume", id="s1"))["code"] == "wrong_peer"
    assert (await error_for(pair.tech, "share.pause", id="s1"))["code"] == "illegal_transition"
    await send(pair.user, "share.resume", id="s1")
    await pair.tech.next_event("share.resumed")


async def test_signaling_relays_to_the_other_peer_only(
        client: TestClient, tech: Tech, pair: Pair) -> None:
    await consented_share(pair)
    admin_watch = await open_socket(client, pair.session_id, tech.token)  # replaces pair.tech
    for socket in (admin_watch, pair.user):
        await send(socket, "rtc.ready", id="s1")
        await socket.next("rtc.config")
    await send(pair.user, "share.start", id="s1")
    await pair.user.next("rtc.peer_ready")
    await send(pair.user, "rtc.offer", id="s1", sdp=SDP)
    offer = await admin_watch.next("rtc.offer")
    assert offer == {"type": "rtc.offer", "id": "s1", "sdp": SDP, "restart": False}
    await send(admin_watch, "rtc.answer", id="s1", sdp=SDP)
    assert (await pair.user.next("rtc.answer"))["sdp"] == SDP
    for candidate, mid, index in ((CANDIDATE, "0", 0), ("", None, None)):
        await send(admin_watch, "rtc.candidate", id="s1", candidate=candidate, sdp_mid=mid,
                   sdp_mline_index=index)
        got = await pair.user.next("rtc.candidate")
        assert (got["candidate"], got["sdp_mid"], got["sdp_mline_index"]) == (candidate, mid,
                                                                             index)
    await send(admin_watch, "rtc.restart", id="s1")
    assert (await pair.user.next("rtc.restart"))["id"] == "s1"
    await send(pair.user, "rtc.offer", id="s1", sdp=SDP, restart=True)
    assert (await admin_watch.next("rtc.offer"))["restart"] is True
    await nothing_more(admin_watch)  # nothing came back to its sender


async def test_frames_sent_before_the_peer_joins_are_held_for_it(
        client: TestClient, tech: Tech) -> None:
    """The technician shows their screen and offers before the end user's page is even
    open; the end user gets the offer and the candidates, in order, when it says ready."""
    pair = await open_pair(client, tech, user_socket=False)
    await send(pair.tech, "share.request", id="show", direction=SHOW)
    await send(pair.tech, "share.start", id="show")
    await pair.tech.next_event("share.started")
    await send(pair.tech, "rtc.ready", id="show")
    await pair.tech.next("rtc.config")
    await send(pair.tech, "rtc.offer", id="show", sdp=SDP)
    for port in range(3):
        await send(pair.tech, "rtc.candidate", id="show",
                   candidate=CANDIDATE.replace("51234", f"5000{port}"))
    await ping_pong(pair.tech)

    user = await open_socket(client, pair.session_id, pair.user_token)
    assert [e["type"] for e in user.replayed if e["type"].startswith("share.")] == [
        "share.started"]
    await send(user, "rtc.ready", id="show")
    assert (await next_rtc(user))["type"] == "rtc.config"
    assert (await next_rtc(user))["type"] == "rtc.offer"
    ports = [(await user.next("rtc.candidate"))["candidate"].split()[5] for _ in range(3)]
    assert ports == ["50000", "50001", "50002"]
    # The offer was there already: the technician is not asked for another one.
    await nothing_more(pair.tech)


async def test_a_viewer_ready_before_the_sharer_gets_an_offer_made_for_it(pair: Pair) -> None:
    await consented_share(pair)
    await send(pair.tech, "rtc.ready", id="s1")  # the viewer is ready first
    await pair.tech.next("rtc.config")
    await send(pair.user, "share.start", id="s1")
    await send(pair.user, "rtc.ready", id="s1")
    assert (await pair.user.next("rtc.config"))["id"] == "s1"
    assert (await pair.user.next("rtc.peer_ready"))["id"] == "s1"


async def test_a_reloaded_viewer_drops_stale_frames_and_asks_for_a_new_offer(
        client: TestClient, tech: Tech, pair: Pair) -> None:
    await consented_share(pair)
    await send(pair.user, "share.start", id="s1")
    for socket in (pair.tech, pair.user):
        await send(socket, "rtc.ready", id="s1")
        await socket.next("rtc.config")
    await pair.user.next("rtc.peer_ready")
    await pair.tech.close()  # the technician reloads the dashboard
    await send(pair.user, "rtc.offer", id="s1", sdp=SDP)  # for the old page: held
    await ping_pong(pair.user)

    # Only reconnected (same page, same peer connection): what waited arrives.
    tech_again = await open_socket(client, pair.session_id, tech.token)
    await send(tech_again, "rtc.ready", id="s1", fresh=False)
    await tech_again.next("rtc.config")
    assert (await next_rtc(tech_again))["type"] == "rtc.offer"
    await tech_again.close()

    await send(pair.user, "rtc.candidate", id="s1", candidate=CANDIDATE)  # held again
    await ping_pong(pair.user)
    reloaded = await open_socket(client, pair.session_id, tech.token)
    await send(reloaded, "rtc.ready", id="s1", fresh=True)
    await reloaded.next("rtc.config")
    await nothing_more(reloaded)  # the old connection's candidate is gone
    await pair.user.next("rtc.peer_ready")  # and the sharing side is asked for a new offer



async def test_requests_are_for_technicians_one_at_a_time(
        client: TestClient, tech: Tech, pair: Pair) -> None:
    error = await error_for(pair.user, "share.request", id="x")
    assert (error["code"], error["ref"]) == ("technician_only", "x")
    await send(pair.tech, "share.request", id="s1")
    await pair.user.next_event("share.requested")
    assert (await error_for(pair.tech, "share.request", id="s2", direction=SHOW))["code"] \
        == "share_busy"
    assert (await error_for(pair.tech, "share.request", id="s1"))["code"] == "share_exists"
    assert (await error_for(pair.tech, "share.request", id="bad id!"))["code"] \
        == "invalid_input"
    assert (await error_for(pair.tech, "share.request", id="s3", direction="sideways"))[
        "code"] == "invalid_input"
    # The technician withdraws the request; the next one may come.
    await send(pair.tech, "share.stop", id="s1", reason="cancelled")
    assert (await pair.user.next_event("share.stopped"))["reason"] == "cancelled"
    await send(pair.tech, "share.request", id="s2", direction=SHOW)
    await send(pair.tech, "share.start", id="s2")
    started = await pair.user.next_event("share.started")
    assert (started["sharer"], started["viewer"]) == (pair.tech_sender, pair.user_sender)

    waiting = await start_session(client, tech)
    early = await open_socket(client, waiting["session_id"], tech.token)
    assert (await error_for(early, "share.request", id="s1"))["code"] == "session_waiting"


async def test_the_end_of_the_session_ends_its_shares(
        client: TestClient, tech: Tech, pair: Pair) -> None:
    await consented_share(pair)
    response = await client.post(f"/api/v1/sessions/{pair.session_id}/end", headers=tech.auth)
    assert response.status == 200
    assert await pair.user.close_code() == 4010



async def test_a_handover_ends_the_share_and_its_consent(
        client: TestClient, tech: Tech, pair: Pair,
        make_tech: Callable[..., Awaitable[Tech]]) -> None:
    await consented_share(pair)
    bob = await make_tech("Bob")
    offered = await client.post(f"/api/v1/sessions/{pair.session_id}/transfer",
                                headers=tech.auth,
                                json={"to_technician_id": bob.technician.id, "note": "Tier 2"})
    handoff = await offered.json()
    accepted = await client.post(f"/api/v1/handoffs/{handoff['handoff_id']}/accept",
                                 headers=bob.auth)
    assert accepted.status == 200
    stopped = await pair.user.next_event("share.stopped")
    assert stopped["reason"] == "handed_over"
    assert (await pair.user.next_event("handed_over"))["to"] == "Bob"
    # The new owner asks again; the end user must consent again.
    bob_socket = await open_socket(client, pair.session_id, bob.token)
    try:
        await send(bob_socket, "share.request", id="s2", direction=VIEW)
        requested = await pair.user.next_event("share.requested")
        assert requested["author"]["name"] == "Bob"
    finally:
        await bob_socket.close()
