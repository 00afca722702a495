"""Named errors of the pipeline. Each message is one sentence that says what to set or do."""

from __future__ import annotations


class PipelineError(Exception):
    """Base of every error the pipeline raises on purpose."""


class MalformedMessage(PipelineError):
    """A queue message that does not follow the pixel contract; it goes to the DLQ."""


class BackendUnavailable(PipelineError):
    """The AWS endpoint cannot be reached."""


class MissingResource(PipelineError):
    """A table or queue that the settings name does not exist."""


class StorageError(PipelineError):
    """DynamoDB refused a request for a reason other than throttling."""


class RollupsIncomplete(PipelineError):
    """A closed day in the range has no up-to-date rollup yet (the compactor has not run)."""


class InvalidSite(PipelineError, ValueError):
    """A site domain or hostname pattern that the site registry won't take."""
