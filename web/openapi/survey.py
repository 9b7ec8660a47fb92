"""The post-session survey (web/survey.py): its questions, an end user's answers, and
reading them (docs/api.md, Post-session survey)."""

from __future__ import annotations

from typing import Final

from broker.survey.model import MAX_COMMENT, MAX_LABEL, QUESTIONS

from .build import (
    BOOLEAN,
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
    ref,
)
from .sessions import SESSION, SESSION_ID

_TAGS = ["survey"]
_RATING: Final = {"type": "integer", "minimum": 1, "maximum": 5}
_LABEL: Final = {"type": "string", "maxLength": MAX_LABEL}

SCHEMAS: Final[dict[str, Schema]] = {
    "SurveyConfig": obj({
        "enabled": BOOLEAN,
        "questions": array(obj({"name": {"enum": list(QUESTIONS)}}, {
            "enabled": BOOLEAN,
            "label": obj({}, {"en": _LABEL, "de": _LABEL},
                         description="The question's own wording per language; without "
                                     "one, the page's standard wording")})),
    }, description="Whether end users are asked, and the three questions (answers always "
                   "list all three, in order)."),
    "SurveyResponse": obj({
        "session_id": STRING, "rating": nullable(_RATING), "solved": nullable(BOOLEAN),
        "comment": nullable(STRING), "language": {"enum": ["en", "de"]},
        "submitted_at": TIME,
    }, description="A session's survey as its end user answered it; null where not "
                   "answered."),
}

_ANSWERS: Final = obj({}, {"rating": nullable(_RATING), "solved": nullable(BOOLEAN),
                           "comment": nullable({"type": "string",
                                                "maxLength": MAX_COMMENT})},
                      description="At least one answer, to questions that are shown")

PATHS: Final[dict[str, dict[str, Schema]]] = {
    "/api/v1/survey": {
        "get": operation(
            "getSurvey", "The post-session survey's questions", tags=_TAGS,
            security=TECHNICIAN, method="get",
            responses={200: json_response(ref("SurveyConfig"),
                                          "The survey")}),
        "put": operation(
            "putSurvey", "Replace the survey's questions (admins)", tags=_TAGS,
            security=TECHNICIAN_CHANGES, method="put",
            body=json_body(ref("SurveyConfig")),
            responses={200: json_response(ref("SurveyConfig"),
                                          "The survey, as stored")},
            errors={400: ["invalid_survey"]}),
    },
    SESSION + "/survey": {
        "post": operation(
            "answerSurvey", "The end user's answers, once, after the session ended",
            tags=_TAGS, security=PARTICIPANT, method="post", parameters=[SESSION_ID],
            body=json_body(_ANSWERS),
            responses={201: json_response(ref("SurveyResponse"),
                                          "Stored, and sent as `survey.completed`")},
            errors={400: ["invalid_answers", "no_answers"],
                    409: ["session_not_ended", "survey_off", "survey_done"]}),
        "get": operation(
            "getSessionSurvey", "A session's survey answers", tags=_TAGS,
            security=TECHNICIAN, method="get", parameters=[SESSION_ID],
            responses={200: json_response(
                obj({"survey": nullable(ref("SurveyResponse"))}),
                "The answers, or null")}),
    },
}
