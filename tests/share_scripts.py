"""Screen shares from request to stop, as the pages and the agent drive them, frame by
frame: the scripts tests/test_fuzz_protocol.py puts fuzz frames between."""

from __future__ import annotations

from typing import Any, Final

from .rtc_support import CANDIDATE, SDP

ROLES: Final = ("technician", "end_user", "agent")
T, U, A = ROLES
# Hypothesis puts fuzz frames between the steps (on the same share ids now and then).
SCRIPTS: Final[dict[str, list[tuple[str, dict[str, Any]]]]] = {
    "browser": [
        (T, {"type": "share.request", "id": "s1"}),
        (U, {"type": "share.consent", "id": "s1", "accept": True}),
        (U, {"type": "share.start", "id": "s1"}), (T, {"type": "rtc.ready", "id": "s1"}),
        (U, {"type": "rtc.ready", "id": "s1"}),
        (U, {"type": "rtc.offer", "id": "s1", "sdp": SDP}),
        (T, {"type": "rtc.answer", "id": "s1", "sdp": SDP}),
        (T, {"type": "rtc.candidate", "id": "s1", "candidate": CANDIDATE, "sdp_mid": "0",
             "sdp_mline_index": 0}),
        (U, {"type": "rtc.candidate", "id": "s1", "candidate": ""}),
        (T, {"type": "rtc.restart", "id": "s1"}), (U, {"type": "share.pause", "id": "s1"}),
        (U, {"type": "share.resume", "id": "s1"}), (T, {"type": "share.stop", "id": "s1"})],
    "agent": [
        (T, {"type": "share.request", "id": "s2", "source": "agent"}),
        (A, {"type": "share.consent", "id": "s2", "accept": True}),
        (A, {"type": "share.start", "id": "s2"}), (T, {"type": "rtc.ready", "id": "s2"}),
        (A, {"type": "rtc.ready", "id": "s2"}),
        (A, {"type": "rtc.offer", "id": "s2", "sdp": SDP}),
        (T, {"type": "rtc.answer", "id": "s2", "sdp": SDP}),
        (T, {"type": "control.request", "id": "s2"}),
        (A, {"type": "control.consent", "id": "s2", "accept": True}),
        (T, {"type": "control.stop", "id": "s2"}), (A, {"type": "share.stop", "id": "s2"})],
    "shown": [
        (T, {"type": "share.request", "id": "s3", "direction": "technician_to_end_user"}),
        (T, {"type": "share.start", "id": "s3"}), (U, {"type": "rtc.ready", "id": "s3"}),
        (T, {"type": "rtc.offer", "id": "s3", "sdp": SDP}),
        (U, {"type": "rtc.answer", "id": "s3", "sdp": SDP}),
        (U, {"type": "share.pause", "id": "s3"}), (U, {"type": "share.stop", "id": "s3"})],
}
