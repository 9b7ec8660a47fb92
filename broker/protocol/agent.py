"""The native agent announcing itself on its session socket.

The agent is an end-user participant like a browser (it redeemed the support key, or an
agent link made by the end user's chat page); after `synced` it says `agent.hello`, which
the broker stores as an `agent.connected` event, so both sides (and a page that connects
later) know that screen view and remote control through the agent are possible. When the
socket closes, `agent.disconnected` is stored.
"""

from __future__ import annotations

import dataclasses

from . import Message, client_message


@client_message
@dataclasses.dataclass(frozen=True, slots=True)
class AgentHello(Message):
    """`platform` is a short operating system name ("Linux", "Windows", "Darwin"),
    `version` the agent's version; both are shown to the technician."""

    TYPE = "agent.hello"
    version: str = ""
    platform: str = ""

    def __post_init__(self) -> None:
        if len(self.version) > 40 or len(self.platform) > 40:
            raise ValueError("version and platform have at most 40 characters")
