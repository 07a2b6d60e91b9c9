"""The exceptions a handler author raises to say what became of a file.

- `BadInput`: the content can never be processed. The file is recorded `failed` with the
  message, never retried.
- `RetryLater`: not the file's fault (an output directory read-only or full, a database or
  bucket unreachable). The file is given back without spending an attempt and retried after a
  backoff; the streak is logged once.

Any other exception is a crash of this attempt: it counts towards `--max-attempts`, and its
message is kept in the lock file's owner record and in the poison record if it comes to that.
"""

from __future__ import annotations


class BadInput(Exception):
    """The file's content can never be processed: record it failed, do not retry."""


class RetryLater(Exception):
    """Not the file's fault: give it back without spending an attempt, retry after a backoff."""


class StartupError(Exception):
    """Something a person must fix before the daemon can run: one line, exit 2."""
