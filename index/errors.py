"""Project exceptions and the record of a bad input, with messages a user can act on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class NewsAssistantError(Exception):
    """Base of every error the product raises on purpose."""


class ConfigError(NewsAssistantError):
    """A setting is missing or wrong."""


class StoreUnavailableError(NewsAssistantError):
    """The Chroma store cannot be reached (a server that is down, a locked folder)."""


@dataclass(frozen=True, slots=True)
class LoadIssue:
    """One bad input record: where it is and what is wrong with it."""

    path: Path
    line: int | None
    field: str | None
    reason: str

    def __str__(self) -> str:
        where = str(self.path)
        if self.line is not None:
            where += f":{self.line}"
        field = f" field '{self.field}':" if self.field else ""
        return f"{where}:{field} {self.reason}"


@dataclass(frozen=True, slots=True)
class LoadNote:
    """Something the loader assumed or did on its own that a user may want to know."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"
