"""The post-session survey (seed 000): the questions admins configure and an end user's
answers.

Three questions, each shown or not, each with its wording replaceable per language (the
pages have a default wording in every language): a rating from 1 to 5, "was your problem
solved?" (yes or no), and a comment. Admins read and replace the whole configuration as
one JSON document (`SurveyConfig.to_json`, `SurveyConfig.parse`); an end user's answers
are checked against it (`SurveyConfig.check`). Every answer is optional, but a survey
sent with none is refused.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

from ..clock import isoformat
from ..errors import InvalidInput

LANGUAGES: Final = ("en", "de")
QUESTIONS: Final = ("rating", "solved", "comment")
MAX_LABEL: Final = 200
MAX_COMMENT: Final = 2000


@dataclasses.dataclass(frozen=True, slots=True)
class Question:
    """One question: shown or not, and its own wording per language (empty: the page's)."""

    name: str
    enabled: bool = True
    label: tuple[tuple[str, str], ...] = ()  # (language, text)

    def __post_init__(self) -> None:
        if self.name not in QUESTIONS:
            raise ValueError(f"no survey question {self.name!r}")

    def text(self, language: str) -> str | None:
        return dict(self.label).get(language)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "enabled": self.enabled, "label": dict(self.label)}


@dataclasses.dataclass(frozen=True, slots=True)
class Answers:
    """An end user's answers; None where they gave none (or the question is off)."""

    rating: int | None = None
    solved: bool | None = None
    comment: str | None = None

    def __post_init__(self) -> None:
        if self.rating is not None and not 1 <= self.rating <= 5:
            raise ValueError("a rating is from 1 to 5")

    def to_json(self) -> dict[str, Any]:
        return {"rating": self.rating, "solved": self.solved, "comment": self.comment}


@dataclasses.dataclass(frozen=True, slots=True)
class SurveyConfig:
    """Whether end users are asked at all, and the questions, always all three in order."""

    enabled: bool = True
    questions: tuple[Question, ...] = tuple(Question(name) for name in QUESTIONS)

    def question(self, name: str) -> Question:
        return next(q for q in self.questions if q.name == name)

    @property
    def asks(self) -> bool:
        """Whether the end user's page shows a survey."""
        return self.enabled and any(q.enabled for q in self.questions)

    def to_json(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "questions": [q.to_json() for q in self.questions]}

    @classmethod
    def parse(cls, raw: Any) -> SurveyConfig:
        """A configuration as an admin sent it (the shape of `to_json`)."""
        if not isinstance(raw, dict) or set(raw) - {"enabled", "questions"}:
            raise InvalidInput("The survey is an object of enabled and questions.",
                               code="invalid_survey")
        enabled = raw.get("enabled", True)
        if not isinstance(enabled, bool):
            raise InvalidInput("enabled is true or false.", code="invalid_survey")
        given = raw.get("questions", [])
        if not isinstance(given, list) or not all(isinstance(q, dict) for q in given):
            raise InvalidInput("questions is a list of objects.", code="invalid_survey")
        found: dict[str, Question] = {}
        for item in given:
            question = _question(item)
            if question.name in found:
                raise InvalidInput(f"The question {question.name} is listed twice.",
                                   code="invalid_survey")
            found[question.name] = question
        return cls(enabled, tuple(found.get(name, Question(name)) for name in QUESTIONS))

    def check(self, raw: Any) -> Answers:
        """An end user's answers, checked against the questions that are shown."""
        if not isinstance(raw, dict):
            raise InvalidInput("The answers are a JSON object.", code="invalid_answers")
        shown = {q.name for q in self.questions if q.enabled}
        for name, value in raw.items():
            if name not in shown and value is not None:
                raise InvalidInput(f"The survey does not ask {name[:40]!r}.",
                                   code="invalid_answers")
        rating = raw.get("rating")
        if rating is not None and (isinstance(rating, bool) or not isinstance(rating, int)
                                   or not 1 <= rating <= 5):
            raise InvalidInput("rating is a whole number from 1 to 5.", code="invalid_answers")
        solved = raw.get("solved")
        if solved is not None and not isinstance(solved, bool):
            raise InvalidInput("solved is true or false.", code="invalid_answers")
        comment = raw.get("comment")
        if comment is not None:
            if not isinstance(comment, str):
                raise InvalidInput("comment is text.", code="invalid_answers")
            comment = _multiline(comment)
            if len(comment) > MAX_COMMENT:
                raise InvalidInput(f"A comment has at most {MAX_COMMENT} characters.",
                                   code="invalid_answers")
        answers = Answers(rating, solved, comment or None)
        if answers == Answers():
            raise InvalidInput("Answer at least one question.", code="no_answers")
        return answers


@dataclasses.dataclass(frozen=True, slots=True)
class SurveyResponse:
    """A session's survey, as its end user sent it."""

    session_id: str
    answers: Answers
    language: str
    submitted_at: float

    def to_json(self) -> dict[str, Any]:
        return {"session_id": self.session_id, **self.answers.to_json(),
                "language": self.language, "submitted_at": isoformat(self.submitted_at)}


def _question(item: dict[str, Any]) -> Question:
    name = item.get("name")
    if name not in QUESTIONS or set(item) - {"name", "enabled", "label"}:
        raise InvalidInput(f"A question is one of {', '.join(QUESTIONS)}, with enabled "
                           "and label.", code="invalid_survey")
    enabled = item.get("enabled", True)
    label = item.get("label", {})
    if not isinstance(enabled, bool):
        raise InvalidInput("enabled is true or false.", code="invalid_survey")
    if not isinstance(label, dict) or set(label) - set(LANGUAGES):
        raise InvalidInput("label maps en and de to a question's own wording.",
                           code="invalid_survey")
    texts = []
    for language in LANGUAGES:
        text = label.get(language)
        if text is None:
            continue
        if not isinstance(text, str):
            raise InvalidInput("A label is text.", code="invalid_survey")
        text = " ".join("".join(c if c >= " " else " " for c in text).split())
        if len(text) > MAX_LABEL:
            raise InvalidInput(f"A label has at most {MAX_LABEL} characters.",
                               code="invalid_survey")
        if text:
            texts.append((language, text))
    return Question(str(name), enabled, tuple(texts))


def _multiline(raw: str) -> str:
    """Trimmed, without control characters but line breaks and tabs."""
    lines = ["".join(c for c in line if c >= " " or c == "\t").rstrip()
             for line in raw.replace("\r\n", "\n").split("\n")]
    return "\n".join(lines).strip()
