"""Transcripts by email (web/transcriptmail.py): the company's and teams' levels, and an
end user's copy confirmed by a code (docs/api.md, Transcripts by email)."""

from __future__ import annotations

from typing import Final

from broker.transcriptmail.model import MAX_ADDRESSES

from .build import (
    BOOLEAN,
    ID,
    PARTICIPANT,
    STRING,
    TECHNICIAN,
    TECHNICIAN_CHANGES,
    TIME,
    Schema,
    array,
    json_body,
    json_response,
    nullable,
    obj,
    operation,
    path_param,
    ref,
)
from .sessions import SESSION, SESSION_ID

_TAGS = ["transcript mail"]
_LEVEL_ERRORS: Final = {400: ["invalid_transcript_mail", "invalid_email", "invalid_language",
                              "invalid_time_zone"]}
_TEAM_ID: Final = path_param("team_id", "A team's id", ID)

SCHEMAS: Final[dict[str, Schema]] = {
    "TranscriptMailLevel": obj({
        "enabled": BOOLEAN,
        "addresses": {**array(STRING), "maxItems": MAX_ADDRESSES},
        "language": {"enum": ["en", "de"]}, "time_zone": STRING,
    }, description="Where a level's transcripts go: on or off, to which addresses, in "
                   "which language and time zone (an IANA name). In a request every field "
                   "is optional."),
    "TranscriptCopy": obj({
        "email": STRING, "confirmed": BOOLEAN, "code_expires_at": nullable(TIME),
    }, description="An end user's copy: the address, whether it is confirmed, and until "
                   "when the code sent to it works (null once used)."),
}
_LEVEL_BODY: Final = obj({}, {"enabled": BOOLEAN, "addresses": array(STRING),
                              "language": {"enum": ["en", "de"]}, "time_zone": STRING})


def _level(operation_id: str, what: str, *, team: bool) -> dict[str, Schema]:
    parameters = [_TEAM_ID] if team else []
    # A team's id that is no whole number in range: 400 invalid_input.
    errors = ({400: [*_LEVEL_ERRORS[400], "invalid_input"], 404: ["not_found"]} if team
              else _LEVEL_ERRORS)
    return {
        "get": operation(
            f"get{operation_id}", f"Where {what} transcripts go (admins)", tags=_TAGS,
            security=TECHNICIAN, method="get", parameters=parameters,
            responses={200: json_response(ref("TranscriptMailLevel"), "The level")},
            errors={400: ["invalid_input"], 404: ["not_found"]} if team else None),
        "put": operation(
            f"put{operation_id}", f"Set where {what} transcripts go (admins)", tags=_TAGS,
            security=TECHNICIAN_CHANGES, method="put", parameters=parameters,
            body=json_body(_LEVEL_BODY),
            responses={200: json_response(ref("TranscriptMailLevel"), "The level, as stored")},
            errors=errors),
    }


PATHS: Final[dict[str, dict[str, Schema]]] = {
    "/api/v1/transcript-mail": _level("CompanyTranscriptMail", "the company's", team=False),
    "/api/v1/teams/{team_id}/transcript-mail": _level("TeamTranscriptMail", "a team's",
                                                      team=True),
    SESSION + "/transcript-copy": {"post": operation(
        "requestTranscriptCopy", "Send a code to the end user's address for a copy",
        tags=_TAGS, security=PARTICIPANT, method="post", parameters=[SESSION_ID],
        body=json_body(obj({"email": STRING})),
        responses={202: json_response(ref("TranscriptCopy"), "The code is on its way")},
        errors={400: ["invalid_email"],
                409: ["email_not_configured", "copy_confirmed", "too_many_codes"]})},
    SESSION + "/transcript-copy/confirm": {"post": operation(
        "confirmTranscriptCopy", "The code back: the copy goes at the end (now, if ended)",
        tags=_TAGS, security=PARTICIPANT, method="post", parameters=[SESSION_ID],
        body=json_body(obj({"code": STRING})),
        responses={200: json_response(obj({"email": STRING, "confirmed": BOOLEAN,
                                           "code_expires_at": nullable(TIME),
                                           "sent": BOOLEAN}),
                                      "Confirmed; `sent`: the copy was queued now")},
        errors={400: ["wrong_code"], 409: ["no_code", "code_expired"],
                429: ["rate_limited"]})},
}
