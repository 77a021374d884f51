"""What a failed local activity raises in workflow code, checked on this SDK (temporalio 1.35):
a timeout raises `ActivityError`, but an error the activity raised comes back as the bare
`ApplicationError` once its retries are spent — catching `ActivityError` alone lets a broken
market file or calendar fail the whole workflow."""

from __future__ import annotations

from temporalio.exceptions import ActivityError, ApplicationError

LOCAL_ACTIVITY_FAILED = (ActivityError, ApplicationError)


def why_failed(err: ActivityError | ApplicationError) -> str:
    """The failure's first line (the activity's own message, not the wrapper's)."""
    cause = err.cause if isinstance(err, ActivityError) and err.cause is not None else err
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__
