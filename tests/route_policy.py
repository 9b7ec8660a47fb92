"""The authorization decision of every route (tests/test_route_matrix.py): which kinds of
caller get past it, and how a call to it is made (its body, headers and parameters)."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from .conftest import PASSWORD

if TYPE_CHECKING:
    from .route_scene import Scene


class Who(enum.Enum):
    NONE = "no credential"
    FORGED_TECH = "a made-up API token (and login cookie)"
    FORGED_USER = "a made-up participant token (and cookie)"
    OTHER_TECH = "another technician (not in the session, not an admin)"
    OTHER_USER = "another session's end user"
    ENDED_USER = "an ended session's end user"
    ADMIN = "an admin (not in the session)"
    OWN_TECH = "the session's technician"
    OWN_USER = "the session's end user"


ANYONE: Final = frozenset(Who)
UNKNOWN: Final = frozenset({Who.NONE, Who.FORGED_TECH, Who.FORGED_USER})  # no credential
NOBODY: Final = frozenset[Who]()
TECHS: Final = frozenset({Who.OTHER_TECH, Who.ADMIN, Who.OWN_TECH})
ADMINS: Final = frozenset({Who.ADMIN})
MANAGERS: Final = frozenset({Who.OWN_TECH, Who.ADMIN})  # the owner, and admins
SESSION: Final = MANAGERS | {Who.OWN_USER}
PARTICIPANTS: Final = frozenset({Who.OWN_TECH, Who.OWN_USER})  # files: admins not included
END_USER: Final = frozenset({Who.OWN_USER})
SECRET: Final = "my password is hunter2"
COOKIE_SOCKETS: Final = frozenset({"/api/v1/technician/ws", "/api/v1/supervision/ws",
                                   "/api/v1/sessions/{session_id}/watch"})
SOCKETS: Final = COOKIE_SOCKETS | {"/api/v1/sessions/{session_id}/ws"}


Body = Callable[["Scene"], Awaitable[dict[str, Any]]]


async def _no_body(scene: Scene) -> dict[str, Any]:
    return {}


def _json(value: dict[str, Any]) -> Body:
    async def body(scene: Scene) -> dict[str, Any]:
        return value
    return body


@dataclasses.dataclass(frozen=True)
class Rule:
    """Who gets past a route's authorization, and how to call it."""

    allowed: frozenset[Who]
    body: Body = _no_body  # JSON on the API, form fields on pages
    headers: tuple[tuple[str, str], ...] = ()
    # Path parameters that are not the scene's attribute of the same name.
    params: tuple[tuple[str, str], ...] = ()
    fresh: bool = False  # the call changes the scene: each allowed caller gets a new one
    refused: frozenset[int] | None = None  # the status every caller gets, where it is fixed
    hidden: bool = False  # to technicians refused, the thing does not exist (404)


TUS = (("Tus-Resumable", "1.0.0"),)
UPLOAD = "/api/v1/sessions/{session_id}/files/{upload_id}"
FILES = "/api/v1/sessions/{session_id}/files/"
SESSION_PATH = "/api/v1/sessions/{session_id}"
WEBHOOK = (("id", "webhook_id"),)


async def _login_form(scene: Scene) -> dict[str, Any]:
    return {"email": scene.people.alice.technician.email, "password": PASSWORD}


async def _join_form(scene: Scene) -> dict[str, Any]:
    return {"token": await scene.new_link_token(), "name": "Dana"}


async def _join_json(scene: Scene) -> dict[str, Any]:
    return {"token": await scene.new_link_token()}


async def _agent_join(scene: Scene) -> dict[str, Any]:
    return {"link": await scene.agent_link()}


async def _team(scene: Scene) -> dict[str, Any]:
    return {"name": f"Team {await scene.counter()}"}


async def _erin(scene: Scene) -> dict[str, Any]:
    return {"technician_id": scene.people.erin.technician.id}


async def _canned(scene: Scene) -> dict[str, Any]:
    return {"scope": "personal", "title": "Greeting", "text": "Hello {customer}"}


async def _webhook(scene: Scene) -> dict[str, Any]:
    return {"url": "https://help.example.com/hook", "events": ["session.ended"]}


async def _new_technician(scene: Scene) -> dict[str, Any]:
    return {"email": f"new{await scene.counter()}@example.com", "name": "New Technician"}


async def _new_password(scene: Scene) -> dict[str, Any]:
    # A wrong current password: the form answers (past authorization) and nothing changes.
    return {"current": "not the password", "new": "a new long password", "repeat":
            "a new long password"}


async def _transfer(scene: Scene) -> dict[str, Any]:
    return {"note": "Over to you", "to_technician_id": scene.people.erin.technician.id}


# Every route: (method, path as the router spells it) -> Rule. A HEAD route that aiohttp
# adds for a GET follows the GET's rule.
POLICY: Final[dict[tuple[str, str], Rule]] = {
    # Pages
    ("GET", "/"): Rule(ANYONE),
    ("GET", "/login"): Rule(ANYONE),
    ("POST", "/login"): Rule(ANYONE, _login_form),
    ("POST", "/login/seat"): Rule(ANYONE),  # without a login waiting for a seat: to /login
    # Single sign-on (not set up here: 404 for everyone; tests/test_sso_browser.py).
    ("GET", "/login/sso"): Rule(NOBODY, refused=frozenset({404})),
    ("GET", "/login/sso/callback"): Rule(NOBODY, refused=frozenset({404})),
    ("POST", "/logout"): Rule(ANYONE),
    ("GET", "/dashboard"): Rule(TECHS),
    ("GET", "/admin"): Rule(ADMINS),
    ("GET", "/join"): Rule(ANYONE),
    ("POST", "/join"): Rule(ANYONE, _join_form),
    ("GET", "/j/{token}"): Rule(ANYONE),
    ("GET", "/s/{session_id}"): Rule(END_USER),
    ("GET", "/sessions"): Rule(TECHS),
    ("GET", "/reports"): Rule(TECHS),
    ("GET", "/sessions/{session_id}/transcript"): Rule(MANAGERS),
    ("GET", "/lang/{lang}"): Rule(ANYONE),
    # A technician's own password (a must after a one-time one): their login cookie.
    ("GET", "/password"): Rule(TECHS),
    ("POST", "/password"): Rule(TECHS, _new_password),
    ("GET", "/static"): Rule(ANYONE),
    # Second factors: the login's second step answers anyone (without a pending sign-in
    # it sends them to /login); a technician's own factors need their login (or, while
    # the policy makes them set one up, their pending sign-in: tests/test_factors.py).
    ("GET", "/login/factor"): Rule(ANYONE),
    ("POST", "/login/factor"): Rule(ANYONE, _json({"code": "000000"})),
    ("GET", "/account/security"): Rule(TECHS),
    ("POST", "/account/totp/new"): Rule(TECHS),
    ("GET", "/account/totp"): Rule(TECHS),
    ("POST", "/account/totp"): Rule(TECHS, _json({"code": "000000"})),
    ("POST", "/account/totp/remove"): Rule(TECHS),
    ("POST", "/account/recovery-codes"): Rule(TECHS),  # none set up: 409, past authorization
    ("GET", "/account/confirm"): Rule(TECHS),
    ("POST", "/account/confirm"): Rule(TECHS, _json({"password": "not the password"})),
    # Passkeys: the options take the CSRF header (none here: 403 for everyone, as for a
    # forged request); answers that are no passkey's are refused past authorization.
    ("POST", "/account/passkeys/options"): Rule(NOBODY, refused=frozenset({403})),
    ("POST", "/account/passkeys"): Rule(TECHS, _json({"name": "Laptop", "credential": "{}"})),
    # A passkey is its technician's alone (hidden from every other, admins included).
    ("POST", "/account/passkeys/{id}/remove"): Rule(
        frozenset({Who.OWN_TECH}), hidden=True, fresh=True, params=(("id", "passkey_id"),)),
    ("POST", "/login/passkey/options"): Rule(NOBODY, refused=frozenset({403})),
    # Signing in with a passkey: an answer that is no passkey's is 401 for everyone.
    ("POST", "/login/passkey"): Rule(NOBODY, _json({"credential": "{}"}),
                                     refused=frozenset({401})),
    ("GET", "/api/v1/me/factors"): Rule(TECHS),
    ("GET", "/api/v1/factor-policy"): Rule(ADMINS),
    ("PUT", "/api/v1/factor-policy"): Rule(ADMINS, _json({"required": "off"})),
    ("POST", "/api/v1/technicians/{technician_id}/factors/reset"): Rule(ADMINS),
    # Sessions
    ("POST", "/api/v1/sessions"): Rule(TECHS),
    ("GET", "/api/v1/sessions"): Rule(TECHS),
    ("GET", SESSION_PATH): Rule(SESSION),
    ("GET", SESSION_PATH + "/events"): Rule(SESSION),
    ("POST", SESSION_PATH + "/messages"): Rule(SESSION, _json({"text": "hello"})),
    ("POST", SESSION_PATH + "/end"): Rule(MANAGERS, fresh=True),
    ("POST", SESSION_PATH + "/revoke"): Rule(MANAGERS),  # not_waiting: past authorization
    ("GET", SESSION_PATH + "/transcript"): Rule(MANAGERS),
    ("POST", "/api/v1/join"): Rule(ANYONE, _join_json),
    ("POST", SESSION_PATH + "/deliveries"): Rule(
        MANAGERS, _json({"channel": "email", "to": "dana@example.com"})),
    ("GET", SESSION_PATH + "/deliveries"): Rule(MANAGERS),
    # Signed by Twilio, not by any of these credentials (and 404 while not configured).
    ("POST", "/api/v1/webhooks/twilio/status"): Rule(NOBODY, refused=frozenset({404})),
    # Handoff
    ("GET", "/api/v1/technicians"): Rule(TECHS),
    # Administration: admins only (a PATCH body here is the matrix's tus bytes: a 400 past
    # authorization for admins).
    ("POST", "/api/v1/technicians"): Rule(ADMINS, _new_technician),
    ("PATCH", "/api/v1/technicians/{technician_id}"): Rule(ADMINS),
    ("POST", "/api/v1/technicians/{technician_id}/password-reset"): Rule(ADMINS),
    ("GET", "/api/v1/teams"): Rule(TECHS),
    ("POST", "/api/v1/teams"): Rule(ADMINS, _team),
    ("POST", "/api/v1/teams/{team_id}/members"): Rule(ADMINS, _erin),
    ("DELETE", "/api/v1/teams/{team_id}/members/{technician_id}"): Rule(ADMINS),
    ("PATCH", "/api/v1/teams/{team_id}/members/{technician_id}"): Rule(ADMINS),
    # The supervisor board: admins and team leads (none in the scene: admins alone).
    ("GET", "/supervise"): Rule(ADMINS),
    ("GET", "/api/v1/supervision"): Rule(ADMINS),
    ("GET", "/supervise/{session_id}"): Rule(ADMINS),  # watching: not its own technician
    # Joining and taking over from the board: not its own technician either.
    ("POST", SESSION_PATH + "/supervision/join"): Rule(ADMINS, fresh=True),
    ("POST", SESSION_PATH + "/supervision/take-over"): Rule(
        ADMINS, _json({"note": "A supervisor takes over"}), fresh=True),
    ("POST", SESSION_PATH + "/transfer"): Rule(MANAGERS, _transfer, fresh=True),
    ("GET", SESSION_PATH + "/handoffs"): Rule(MANAGERS),
    ("GET", "/api/v1/handoffs"): Rule(TECHS),
    # A transfer offered to the session's technician in person: theirs alone to answer.
    ("POST", "/api/v1/handoffs/{handoff_id}/accept"): Rule(
        frozenset({Who.OWN_TECH}), params=(("handoff_id", "handoff_to_own"),)),
    ("POST", "/api/v1/handoffs/{handoff_id}/decline"): Rule(
        frozenset({Who.OWN_TECH}), _json({"reason": "busy"}),
        params=(("handoff_id", "handoff_to_own"),)),
    # A transfer of the technician's own session: the owner (or an admin) takes it back.
    ("POST", "/api/v1/handoffs/{handoff_id}/cancel"): Rule(
        MANAGERS, params=(("handoff_id", "handoff_from_own"),), fresh=True),
    ("GET", "/api/v1/queues"): Rule(TECHS),
    ("GET", SESSION_PATH + "/notes"): Rule(MANAGERS),
    ("PUT", SESSION_PATH + "/notes"): Rule(MANAGERS, _json({"notes": "printer"})),
    ("POST", SESSION_PATH + "/collaborators"): Rule(MANAGERS, _erin, fresh=True),
    # About the caller's own place in the session: not being in it is a 409 not_present.
    ("DELETE", SESSION_PATH + "/collaborators/me"): Rule(TECHS),
    ("GET", "/api/v1/logins"): Rule(ADMINS),
    ("POST", "/api/v1/logins/{login_id}/end"): Rule(ADMINS),
    # The console: canned responses (a personal one is its owner's alone, and hidden from
    # every other technician, admins included) and one's own preferences.
    ("GET", "/api/v1/canned-responses"): Rule(TECHS),
    ("POST", "/api/v1/canned-responses"): Rule(TECHS, _canned),
    ("PUT", "/api/v1/canned-responses/{id}"): Rule(
        frozenset({Who.OWN_TECH}), _canned, params=(("id", "canned_id"),), hidden=True),
    ("DELETE", "/api/v1/canned-responses/{id}"): Rule(
        frozenset({Who.OWN_TECH}), params=(("id", "canned_id"),), hidden=True),
    ("GET", "/api/v1/me/preferences"): Rule(TECHS),
    ("PUT", "/api/v1/me/preferences"): Rule(TECHS, _json({"sound": False})),
    # Customers' requests: the form and availability are public, a request is its
    # customer's (none in the scene: a message to the scene's team) and its team's.
    ("GET", "/api/v1/intake-form"): Rule(ANYONE),
    ("PUT", "/api/v1/intake-form"): Rule(ADMINS),
    ("GET", "/api/v1/availability"): Rule(ANYONE),
    ("POST", "/api/v1/requests"): Rule(ANYONE, _json({"description": "Help", "name": "Dana",
                                                      "email": "dana@example.com"})),
    ("GET", "/api/v1/requests"): Rule(TECHS),
    ("GET", "/api/v1/requests/{request_id}"): Rule(ADMINS),
    ("POST", "/api/v1/requests/{request_id}/session"): Rule(ADMINS, fresh=True),
    ("GET", SESSION_PATH + "/request"): Rule(MANAGERS),
    ("PUT", "/api/v1/teams/{team_id}/message-email"): Rule(
        ADMINS, _json({"email": "desk@example.com"})),
    # The audit log: admins only.
    ("GET", "/api/v1/audit"): Rule(ADMINS),
    # Reports: technicians their own figures, admins everyone's; teams' for admins.
    ("GET", "/api/v1/reports/daily"): Rule(TECHS),
    ("GET", "/api/v1/reports/technicians"): Rule(TECHS),
    ("GET", "/api/v1/reports/teams"): Rule(ADMINS),
    ("GET", "/api/v1/reports/categories"): Rule(TECHS),
    # Webhooks: admins only.
    ("GET", "/api/v1/webhooks"): Rule(ADMINS),
    ("POST", "/api/v1/webhooks"): Rule(ADMINS, _webhook),
    ("PATCH", "/api/v1/webhooks/{id}"): Rule(
        ADMINS, _json({"description": "Desk"}), params=WEBHOOK),
    ("DELETE", "/api/v1/webhooks/{id}"): Rule(ADMINS, params=WEBHOOK, fresh=True),
    ("POST", "/api/v1/webhooks/{id}/rotate"): Rule(ADMINS, params=WEBHOOK),
    ("POST", "/api/v1/webhooks/{id}/test"): Rule(ADMINS, params=WEBHOOK),
    ("GET", "/api/v1/webhooks/{id}/deliveries"): Rule(ADMINS, params=WEBHOOK),
    # The post-session survey: questions read by technicians, set by admins; answered by
    # the session's end user alone (before the end a 409 session_not_ended, past
    # authorization), read by the session's technicians.
    ("GET", "/api/v1/survey"): Rule(TECHS),
    ("PUT", "/api/v1/survey"): Rule(ADMINS, _json({"enabled": True})),
    ("POST", SESSION_PATH + "/survey"): Rule(END_USER, _json({"rating": 5})),
    ("GET", SESSION_PATH + "/survey"): Rule(MANAGERS),
    # The technician's closing form: categories read by technicians, set by admins; a
    # session's closing recorded (after the end: before it a 409 session_not_ended, past
    # authorization) and read by its technicians and admins.
    ("GET", "/api/v1/closing-categories"): Rule(TECHS),
    ("PUT", "/api/v1/closing-categories"): Rule(ADMINS, _json({"categories": []})),
    ("PUT", SESSION_PATH + "/closing"): Rule(MANAGERS, _json({"resolved": True})),
    ("GET", SESSION_PATH + "/closing"): Rule(MANAGERS),
    # Transcripts by email: the company's and teams' levels are admins'; a copy is the
    # session's end user's to ask for (without email set up a 409, past authorization)
    # and to confirm (no code asked for: a 409 no_code).
    ("GET", "/api/v1/transcript-mail"): Rule(ADMINS),
    ("PUT", "/api/v1/transcript-mail"): Rule(ADMINS, _json({"enabled": False})),
    ("GET", "/api/v1/teams/{team_id}/transcript-mail"): Rule(ADMINS),
    ("PUT", "/api/v1/teams/{team_id}/transcript-mail"): Rule(ADMINS, _json({"enabled": False})),
    ("POST", SESSION_PATH + "/transcript-copy"): Rule(
        END_USER, _json({"email": "dana@example.com"})),
    ("POST", SESSION_PATH + "/transcript-copy/confirm"): Rule(END_USER, _json({"code": "1"})),
    # The customer-facing pages (web/portal.py) are public; the embedded chat page shows
    # nothing of the session (its script says hello with the token from the fragment).
    ("GET", "/support"): Rule(ANYONE),
    ("GET", "/support/{team}"): Rule(ANYONE, params=(("team", "team_id"),)),
    ("GET", "/s/{session_id}/embed"): Rule(ANYONE),
    ("GET", "/widget.js"): Rule(ANYONE),
    # A CORS preflight from a site of widget_origins (none here).
    ("OPTIONS", "/api/v1/requests"): Rule(NOBODY, refused=frozenset({403})),
    # Operations
    ("GET", "/healthz"): Rule(ANYONE),
    ("GET", "/readyz"): Rule(ANYONE),
    ("GET", "/metrics"): Rule(ANYONE),
    ("GET", "/api/v1/openapi.json"): Rule(ANYONE),
    # API tokens: one's own (admins: anyone's, revoking a token of another technician's
    # is hidden from the rest).
    ("GET", "/tokens"): Rule(TECHS),
    ("GET", "/api/v1/tokens"): Rule(TECHS),
    # (A token creates none with scopes it lacks: the one scope every caller's has.)
    ("POST", "/api/v1/tokens"): Rule(TECHS, _json({"name": "CI", "scopes": ["admin"]})),
    ("DELETE", "/api/v1/tokens/{token_id}"): Rule(MANAGERS, fresh=True, hidden=True),
    # Sockets (opened with each credential); a HEAD is no handshake and reaches nothing.
    ("GET", SESSION_PATH + "/ws"): Rule(SESSION),
    ("HEAD", SESSION_PATH + "/ws"): Rule(NOBODY, refused=frozenset({400})),
    ("GET", "/api/v1/technician/ws"): Rule(TECHS),
    ("HEAD", "/api/v1/technician/ws"): Rule(NOBODY, refused=frozenset({400})),
    ("GET", "/api/v1/supervision/ws"): Rule(ADMINS),
    ("HEAD", "/api/v1/supervision/ws"): Rule(NOBODY, refused=frozenset({400})),
    ("GET", SESSION_PATH + "/watch"): Rule(ADMINS),
    ("HEAD", SESSION_PATH + "/watch"): Rule(NOBODY, refused=frozenset({400})),
    # The agent
    ("POST", SESSION_PATH + "/agent-link"): Rule(END_USER),
    ("POST", "/api/v1/agent/join"): Rule(ANYONE, _agent_join),
    # Files: the session's participants (admins not included); the sender alone changes
    # an upload.
    ("OPTIONS", FILES): Rule(ANYONE),
    ("OPTIONS", UPLOAD): Rule(ANYONE, params=(("upload_id", "upload_done"),)),
    ("POST", FILES): Rule(PARTICIPANTS, headers=(*TUS, ("Upload-Length", "3"))),
    ("GET", FILES): Rule(PARTICIPANTS),
    ("HEAD", UPLOAD): Rule(PARTICIPANTS, params=(("upload_id", "upload_done"),)),
    ("GET", UPLOAD): Rule(PARTICIPANTS, params=(("upload_id", "upload_done"),)),
    ("PATCH", UPLOAD): Rule(END_USER, headers=(
        *TUS, ("Upload-Offset", "0"), ("Content-Type", "application/offset+octet-stream")),
        params=(("upload_id", "upload_open"),)),
    ("DELETE", UPLOAD): Rule(END_USER, headers=TUS, params=(("upload_id", "upload_open"),)),
}
