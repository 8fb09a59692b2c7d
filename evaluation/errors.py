"""The evaluation's errors: one that stops a run, one that fails a single question."""

from __future__ import annotations

from index.errors import NewsAssistantError


class EvaluationError(NewsAssistantError):
    """The evaluation cannot go on: a bad question file, an unreachable server, a clash."""


class QuestionFailed(NewsAssistantError):
    """One question got no answer (a server error); recorded, and retried on the next run."""
