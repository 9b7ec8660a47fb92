"""Screen sharing over WebRTC: the share state machine, who may signal to whom, ICE servers
with TURN credentials, and the queue for a peer who is not ready yet.

The broker never touches media: it relays signaling between the two peers of a share, and
only after the sharing side consented. See docs/protocol.md, "Screen sharing".
"""

from .ice import IceConfig, turn_credentials
from .model import ControlState, Direction, Peer, Share, ShareState, Source
from .sdp import check_candidate, check_sdp
from .service import ShareService
from .signaling import ShareSignaling, SignalingPeer

__all__ = ["ControlState", "Direction", "IceConfig", "Peer", "Share", "ShareService",
           "ShareSignaling", "ShareState", "SignalingPeer", "Source", "check_candidate",
           "check_sdp", "turn_credentials"]
