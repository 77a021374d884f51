"""What a failed local activity raises in workflow code, checked on this SDK (temporalio 1.35):
a timeout raises `ActivityError`, but an error the activity raised comes back as the bare
`ApplicationError` once its retries are spent — catching `ActivityError` alone lets a broken
market file or calendar fail the whole workflow. Say one with `protocol.parse.first_line`."""

from __future__ import annotations

from temporalio.exceptions import ActivityError, ApplicationError

LOCAL_ACTIVITY_FAILED = (ActivityError, ApplicationError)
