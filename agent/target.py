"""What the end user gives the agent: a join link, an agent link, or a typed key.

- ``https://support.example.com/j/<token>``: the join link of a session nobody joined yet
  (the agent redeems it like a browser would, but with ``POST /api/v1/agent/join``);
- ``https://support.example.com/a/<token>``: an agent link from the end user's chat page
  (``POST /api/v1/agent/join``), when the chat is already open in a browser;
- ``482 913 075``: the nine-digit key, with the broker's address from ``--broker`` or the
  ``SUPPORTBROKER_URL`` environment variable;
- ``https://support.example.com/join?key=482913075``: the same, as a link.
"""

from __future__ import annotations

import dataclasses
import re
from urllib.parse import parse_qs, urlsplit

_KEY = re.compile(r"^\d{9}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,400}$")


class TargetError(ValueError):
    """Not something the agent can join with; the message says what to give instead."""


@dataclasses.dataclass(frozen=True, slots=True)
class JoinTarget:
    """Where and how to join: exactly one of `key`, `token` (join link) or `agent_link`."""

    base_url: str
    key: str | None = None
    token: str | None = None
    agent_link: str | None = None

    def __post_init__(self) -> None:
        if sum(v is not None for v in (self.key, self.token, self.agent_link)) != 1:
            raise ValueError("exactly one of key, token and agent_link")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http(s) URL")


def parse_target(text: str, broker: str | None = None) -> JoinTarget:
    text = text.strip()
    digits = re.sub(r"[\s.-]", "", text)
    if _KEY.match(digits):
        if not broker:
            raise TargetError("A typed key needs the broker's address: add --broker "
                              "https://support.example.com (or set SUPPORTBROKER_URL), or "
                              "give the whole join link instead.")
        return JoinTarget(_base(broker), key=digits)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TargetError("Give the join link (https://…/j/…), the agent link from the "
                          "chat page (https://…/a/…) or the nine-digit key.")
    base = f"{parts.scheme}://{parts.netloc}"
    prefix, _, last = parts.path.rstrip("/").rpartition("/")
    if prefix.endswith("/j") and _TOKEN.match(last):
        return JoinTarget(base + prefix[:-2], token=last)
    if prefix.endswith("/a") and _TOKEN.match(last):
        return JoinTarget(base + prefix[:-2], agent_link=last)
    key = parse_qs(parts.query).get("key", [""])[0]
    if parts.path.rstrip("/").endswith("/join") and _KEY.match(re.sub(r"[\s.-]", "", key)):
        return JoinTarget(base + parts.path.rstrip("/")[:-5], key=re.sub(r"[\s.-]", "", key))
    raise TargetError("This link is not a join link (…/j/…) or an agent link (…/a/…).")


def _base(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TargetError(f"--broker must be the broker's address, like "
                          f"https://support.example.com, not {url!r}")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
