"""The email a team gets for a customer's message left while nobody was online."""

from __future__ import annotations

from ..clock import isoformat
from ..handoff import Team
from ..settings import Settings
from .model import Request

_TEXTS = {
    "en": {"subject": "[{product}] Message from {name} ({severity}) for {team}",
           "intro": "{name} left a message for {team} while nobody was online.",
           "due": "A first answer is due by {due}.",
           "answer": "Answer by replying to this email, or start a session from the "
                     "request in the dashboard: its key goes to {email}.",
           "labels": {"email": "Email", "phone": "Phone", "severity": "Severity",
                      "request": "Request", "message": "Message"}},
    "de": {"subject": "[{product}] Nachricht von {name} ({severity}) an {team}",
           "intro": "{name} hat {team} eine Nachricht hinterlassen, als niemand online war.",
           "due": "Eine erste Antwort ist fällig bis {due}.",
           "answer": "Antworten Sie auf diese E-Mail, oder starten Sie im Dashboard eine "
                     "Sitzung aus der Anfrage: Ihr Schlüssel geht an {email}.",
           "labels": {"email": "E-Mail", "phone": "Telefon", "severity": "Dringlichkeit",
                      "request": "Anfrage", "message": "Nachricht"}},
}


def render(settings: Settings, request: Request, team: Team) -> tuple[str, str]:
    """Subject and text, in the broker's default language."""
    texts = _TEXTS.get(settings.default_language, _TEXTS["en"])
    labels: dict[str, str] = texts["labels"]  # type: ignore[assignment]
    words = {"product": settings.product_name, "name": request.name, "team": team.name,
             "severity": request.severity.value, "email": request.email or "",
             "due": isoformat(request.due_at)}
    lines = [str(texts["intro"]).format(**words), ""]
    lines += [f"{labels['email']}: {request.email or '–'}",
              f"{labels['phone']}: {request.phone or '–'}",
              f"{labels['severity']}: {request.severity.value}"]
    lines += [f"{name}: {value}" for name, value in request.fields.items()]
    lines += [f"{labels['request']}: {request.id}", "", f"{labels['message']}:",
              request.description, "", str(texts["due"]).format(**words),
              str(texts["answer"]).format(**words)]
    return str(texts["subject"]).format(**words), "\n".join(lines)
