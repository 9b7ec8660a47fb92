"""The pages and the agent speak only what broker/protocol defines: the generated
web/static/protocol.js is up to date, every SBProtocol name a page uses exists, and every
frame, event or channel message name written out in web/static/*.js or agent/*.py is a
registered one."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from broker.protocol import CLIENT, SERVER
from broker.protocol.channel import CHANNEL
from broker.protocol.events import EVENTS
from broker.protocol.js import TARGET, contract, render
from broker.webhooks.model import EventType

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted(path for path in (ROOT / "web" / "static").glob("*.js") if path != TARGET)
AGENT = sorted((ROOT / "agent").glob("*.py"))

FRAMES = set(CLIENT) | set(SERVER)
WIRE = FRAMES | set(EVENTS) | set(CHANNEL)
FAMILIES = {name.split(".")[0] for name in WIRE if "." in name}
# The admin page's webhook section names help-desk event types (session.created, ...): a
# vocabulary of its own, declared once in broker/webhooks/model.py, not frames.
OWN_VOCABULARY = {"webhooks.js": {str(kind) for kind in EventType}}
# `type` values in the pages that belong to the browser's own objects, not to the wire.
NOT_WIRE = {
    "offer", "answer",  # RTCSessionDescription.type
    "inbound-rtp",      # RTCStats.type
    "session.json",     # the agent's state file
}

_Q = r"""["']([^"'\n]*)["']"""  # one quoted string, either quote
JS_TYPES = [  # (pattern, the names it may be)
    (re.compile(r"\btype:\s*" + _Q), FRAMES),
    (re.compile(r"""["']type["']:\s*""" + _Q), FRAMES),
    (re.compile(r"\.type\s*[!=]==?\s*" + _Q), FRAMES | set(EVENTS)),
    (re.compile(_Q + r"\s*[!=]==?\s*[\w.]*\.type\b"), FRAMES | set(EVENTS)),
    (re.compile(r"\bcase\s+" + _Q + ":"), WIRE),
    (re.compile(r"\bt:\s*" + _Q), set(CHANNEL)),
    (re.compile(r"""["']t["']:\s*""" + _Q), set(CHANNEL)),
    (re.compile(r"\.t\s*[!=]==?\s*" + _Q), set(CHANNEL)),
]
PY_TYPES = [
    (re.compile(r"""["']type["']:\s*""" + _Q), FRAMES),
    (re.compile(r"""\[["']type["']\]\s*[!=]=\s*""" + _Q), FRAMES | set(EVENTS)),
    (re.compile(r"""\.get\(["']type["']\)\s*[!=]=\s*""" + _Q), FRAMES | set(EVENTS)),
    (re.compile(r"""["']t["']:\s*""" + _Q), set(CHANNEL)),
    (re.compile(r"""\.get\(["']t["']\)\s*[!=]=\s*""" + _Q), set(CHANNEL)),
    (re.compile(r"(?<![.\w])kind\s*[!=]=\s*" + _Q), WIRE),
]
KIND_IN = re.compile(r"(?<![.\w])kind\s+in\s+\(([^)]*)\)")
# A whole string literal named like a wire name of a known family ("share.stopped").
DOTTED = re.compile(r"""["']((?:""" + "|".join(sorted(FAMILIES)) + r""")\.[a-z_]+)["']""")
REFERENCE = re.compile(r"\bP((?:\.[A-Za-z_]\w*)+)")


def _found(path: Path, patterns: list[tuple[re.Pattern[str], set[str]]]
           ) -> list[tuple[str, set[str], str]]:
    """(name, what it may be, where) of every wire name written out in one file."""
    text = path.read_text(encoding="utf-8")
    found = []
    for pattern, allowed in patterns:
        for match in pattern.finditer(text):
            found.append((match.group(1), allowed, f"{path.name}: {match.group(0)}"))
    dotted = WIRE | OWN_VOCABULARY.get(path.name, set())
    for match in DOTTED.finditer(text):
        found.append((match.group(1), dotted, f"{path.name}: {match.group(0)}"))
    if path.suffix == ".py":
        for match in KIND_IN.finditer(text):
            for name in re.findall(_Q, match.group(1)):
                found.append((name, WIRE, f"{path.name}: {match.group(0)}"))
    return found


def test_the_generated_protocol_js_is_up_to_date() -> None:
    assert TARGET.read_text(encoding="utf-8") == render(), (
        "web/static/protocol.js differs from broker/protocol: run python -m broker.protocol.js")
    check = subprocess.run([sys.executable, "-m", "broker.protocol.js", "--check"],  # noqa: S603
                           cwd=ROOT, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_the_contract_holds_every_definition() -> None:
    data = contract()
    assert set(data["frame"].values()) == FRAMES
    assert set(data["event"].values()) == set(EVENTS)
    assert set(data["channel"].values()) == set(CHANNEL)
    assert data["finalClose"] == [4000, 4010, 4401, 4403]
    assert data["share"]["first"] == {"end_user_to_technician": "requested",
                                      "technician_to_end_user": "consented"}


def test_every_protocol_name_a_page_uses_exists() -> None:
    data = contract()
    used = 0
    missing = []
    for path in PAGES:
        for match in REFERENCE.finditer(path.read_text(encoding="utf-8")):
            node: Any = data
            for part in match.group(1).split(".")[1:]:
                if not isinstance(node, dict) or part not in node:
                    missing.append(f"{path.name}: P{match.group(1)}")
                    break
                node = node[part]
            used += 1
    assert not missing, f"SBProtocol has no {missing}"
    assert used >= 100, f"only {used} SBProtocol references: did the pages stop using it?"


def test_every_wire_name_in_the_pages_and_the_agent_is_registered() -> None:
    found = [hit for path in PAGES for hit in _found(path, JS_TYPES)]
    found += [hit for path in AGENT for hit in _found(path, PY_TYPES)]
    unknown = [where for name, allowed, where in found
               if name not in allowed and name not in NOT_WIRE]
    assert not unknown, f"not registered in broker/protocol: {unknown}"
    # The scan must see something to mean anything: the pages' own structural uses are
    # few now (they use SBProtocol), the WebRTC description types are among them.
    names = {name for name, _, _ in found}
    assert {"offer", "answer"} <= names, "the scan no longer sees the pages' `type:` fields"


def test_the_scan_catches_unregistered_names(tmp_path: Path) -> None:
    page = tmp_path / "page.js"
    page.write_text('send({ type: "chat.sned" }); if (msg.type === "welcom") x();\n'
                    'channel.send({ t: "mvoe" }); const y = "share.stoped";\n'
                    'if (m.t === "screen") z(); if (e.type === "share.stopped") w();\n',
                    encoding="utf-8")
    agent = tmp_path / "agent.py"
    agent.write_text('send({"type": "share.stop"})\nif kind == "welcom": pass\n'
                     'if kind in ("move", "dwn"): pass\nif frame.get("t") == "scren": pass\n',
                     encoding="utf-8")
    hits = _found(page, JS_TYPES) + _found(agent, PY_TYPES)
    unknown = sorted({name for name, allowed, _ in hits if name not in allowed})
    assert unknown == ["chat.sned", "dwn", "mvoe", "scren", "share.stoped", "welcom"]
    assert {name for name, allowed, _ in hits if name in allowed} == {
        "screen", "share.stopped", "share.stop", "move"}


def test_the_pages_write_no_close_code_of_their_own() -> None:
    literal = re.compile(r"\.code\s*[!=]==?\s*\d|\bnew Set\(\[\s*\d{4}")
    found = [f"{path.name}: {match.group(0)}" for path in PAGES
             for match in literal.finditer(path.read_text(encoding="utf-8"))]
    assert not found, f"close codes come from SBProtocol.close: {found}"
