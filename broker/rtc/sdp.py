"""Cheap checks of the SDP and ICE candidates the broker relays.

The broker does not understand media; it only refuses what no WebRTC stack would accept,
so that the receiving peer gets well-formed input and the sender gets a clear error
(`bad_sdp`, `bad_candidate`) instead of a silent failure at the other end.
"""

from __future__ import annotations

import ipaddress
import re

from ..errors import InvalidInput

MAX_SDP = 60_000
MAX_CANDIDATE = 512
_LINE = re.compile(r"^[a-z]=[^\x00-\x1f\x7f]*$")
_MEDIA = re.compile(r"^m=(audio|video|application|text|message) \d{1,5}(/\d+)? [\w/.-]+( \S+)+$")
_FOUNDATION = re.compile(r"^[A-Za-z0-9+/]{1,32}$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})*$")
_TOKEN = re.compile(r"^[\x21-\x7e]{1,256}$")
_MID = re.compile(r"^[\x21-\x7e]{1,64}$")
_TYPES = frozenset({"host", "srflx", "prflx", "relay"})


def _bad_sdp(why: str) -> InvalidInput:
    return InvalidInput(f"The session description is not valid: {why}.", code="bad_sdp")


def check_sdp(sdp: str) -> None:
    """Raise InvalidInput(bad_sdp) unless `sdp` looks like a WebRTC session description."""
    if not sdp or len(sdp) > MAX_SDP:
        raise _bad_sdp(f"it must have 1 to {MAX_SDP} characters")
    lines = sdp.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or lines[0] != "v=0":
        raise _bad_sdp("the first line must be v=0")
    seen: set[str] = set()
    media = 0
    for number, line in enumerate(lines, 1):
        if not _LINE.match(line):
            raise _bad_sdp(f"line {number} is not <letter>=<value>")
        kind = line[0]
        if kind == "m":
            if not {"o", "s", "t"} <= seen:
                raise _bad_sdp("o=, s= and t= must come before the first m= line")
            if not _MEDIA.match(line):
                raise _bad_sdp(f"line {number} is not a media line")
            media += 1
        elif line.startswith("a=candidate:"):
            try:
                check_candidate(line[2:])
            except InvalidInput as exc:
                raise _bad_sdp(f"line {number}: {exc.message}") from exc
        elif line.startswith(("a=ice-ufrag:", "a=ice-pwd:", "a=fingerprint:")):
            seen.add(line[2:line.index(":")])
        seen.add(kind)
    if not media:
        raise _bad_sdp("it has no m= line")
    for needed in ("ice-ufrag", "ice-pwd", "fingerprint"):
        if needed not in seen:
            raise _bad_sdp(f"it has no a={needed}")


def _bad_candidate(why: str) -> InvalidInput:
    return InvalidInput(f"The ICE candidate is not valid: {why}.", code="bad_candidate")


def check_candidate(candidate: str, sdp_mid: str | None = None,
                    sdp_mline_index: int | None = None) -> None:
    """Raise InvalidInput(bad_candidate) unless this is an RFC 8839 candidate attribute
    (``candidate:…``, as in RTCIceCandidate.candidate) or "" (end of candidates)."""
    if sdp_mid is not None and not _MID.match(sdp_mid):
        raise _bad_candidate("sdp_mid must be 1 to 64 visible characters")
    if sdp_mline_index is not None and not 0 <= sdp_mline_index < 1024:
        raise _bad_candidate("sdp_mline_index must be 0 to 1023")
    if candidate == "":
        return
    if len(candidate) > MAX_CANDIDATE or not candidate.startswith("candidate:"):
        raise _bad_candidate(f"it must start with 'candidate:' and be at most {MAX_CANDIDATE} "
                             "characters")
    parts = candidate[len("candidate:"):].split(" ")
    if len(parts) < 8 or len(parts) % 2:
        raise _bad_candidate("it needs foundation, component, transport, priority, address, "
                             "port, 'typ' and a type")
    foundation, component, transport, priority, address, port, typ, kind = parts[:8]
    if not _FOUNDATION.match(foundation):
        raise _bad_candidate("bad foundation")
    if not (component.isdigit() and 1 <= int(component) <= 256):
        raise _bad_candidate("the component is 1 to 256")
    if transport.lower() not in ("udp", "tcp"):
        raise _bad_candidate("the transport is UDP or TCP")
    if not (priority.isdigit() and len(priority) <= 10 and int(priority) < 2**32):
        raise _bad_candidate("the priority is a 32-bit number")
    if not _is_address(address):
        raise _bad_candidate("the address is not an IP address or a host name")
    if not _is_port(port):
        raise _bad_candidate("the port is 0 to 65535")
    if typ != "typ" or kind not in _TYPES:
        raise _bad_candidate("the type is host, srflx, prflx or relay")
    extensions = parts[8:]
    for name, value in zip(extensions[::2], extensions[1::2], strict=True):
        if not (_TOKEN.match(name) and _TOKEN.match(value)):
            raise _bad_candidate("bad extension")
        if name == "raddr" and not _is_address(value):
            raise _bad_candidate("raddr is not an address")
        if name == "rport" and not _is_port(value):
            raise _bad_candidate("rport is not a port")


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return bool(_HOSTNAME.match(text))
    return True


def _is_port(text: str) -> bool:
    return text.isdigit() and len(text) <= 5 and int(text) <= 65535
