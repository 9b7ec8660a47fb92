"""The post-session survey: questions admins configure, answers end users give once."""

from .model import Answers, Question, SurveyConfig, SurveyResponse
from .service import SurveyService

__all__ = ["Answers", "Question", "SurveyConfig", "SurveyResponse", "SurveyService"]
