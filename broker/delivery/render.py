"""The texts of SMS and emails, from per-language jinja2 templates beside this file."""

from __future__ import annotations

import dataclasses
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from pathlib import Path

import jinja2

from ..keys import IssuedKey, format_code

LANGUAGES = ("en", "de")
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=jinja2.select_autoescape(["html"]), keep_trailing_newline=False,
    undefined=jinja2.StrictUndefined)


@dataclasses.dataclass(frozen=True, slots=True)
class Invitation:
    """What every message says: who invites, where to go, which key, for how long."""

    technician: str
    product: str
    link: str
    join_page: str
    key: str
    minutes: int

    @classmethod
    def for_key(cls, key: IssuedKey, *, technician: str, product: str, base_url: str,
                now: float) -> Invitation:
        return cls(technician, product, f"{base_url}/j/{key.token}", f"{base_url}/join",
                   format_code(key.code), max(1, int((key.expires_at - now) // 60)))


def _render(language: str, name: str, invitation: Invitation, **extra: str) -> str:
    if language not in LANGUAGES:
        raise ValueError(f"no templates for language {language!r}")
    template = _ENV.get_template(f"{language}/{name}")
    return template.render(dataclasses.asdict(invitation), **extra).strip()


def sms_text(language: str, invitation: Invitation) -> str:
    return _render(language, "sms.txt", invitation)


def email_message(language: str, invitation: Invitation, *, sender: str,
                  recipient: str) -> EmailMessage:
    subject = _render(language, "subject.txt", invitation)
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = formataddr((invitation.product, sender))
    message["To"] = recipient
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message["Content-Language"] = language
    message.set_content(_render(language, "email.txt", invitation))
    message.add_alternative(_render(language, "email.html", invitation, subject=subject),
                            subtype="html")
    return message
