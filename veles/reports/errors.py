"""Why a report could not be requested or produced, in words a user can act on."""

from __future__ import annotations


class ReportError(Exception):
    """A report failed; the message is its `error` column and is safe to show."""


class ReportInputError(ReportError, ValueError):
    """A request field is wrong; `field` names it so forms and API clients can point at it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class StorageError(ReportError):
    """The file store could not be reached or refused the file."""


class SourceError(ReportError):
    """The risk engine (live figures) could not be asked in time."""
