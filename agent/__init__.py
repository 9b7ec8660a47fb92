"""The native support agent: joins a support session as the end user's computer, shows its
screen to the technician over WebRTC (aiortc), and lets the technician control mouse and
keyboard once the person at the computer agreed. See docs/agent.md.

It is an end-user participant of the broker's protocol (docs/protocol.md): the same share
and signaling frames as a browser, plus `agent.hello` and the `control.*` frames. Mouse and
keyboard events travel on a WebRTC data channel between the technician's browser and this
program, never through the broker.
"""

__version__ = "0.1.0"
