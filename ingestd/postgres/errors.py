"""PostgreSQL errors by SQLSTATE class: whose fault, and what a worker does about it.

- 08 connection, 57P operator intervention (a shutdown or restart), 53 insufficient resources,
  40 serialization or deadlock, 55P03 lock not available: not the file's fault. The file is
  given back with no attempt spent and retried with backoff.
- 22 data exception, 23 integrity violation, 54 program limit (an index row too big, nesting
  too deep): bad input. The file fails once, for good.
- 28 authentication, 3D no such database, 42501 no right, at connect: configuration. One
  line and exit 2 at start-up.

psycopg raises `OperationalError` for class 54 as for a lost connection, which is why the
class is read from the code, not from the exception's type. A connection refused before any
SQLSTATE exists (libpq's own messages) is a connection error, except the few texts libpq
uses for a refused login, read as configuration.
"""

from __future__ import annotations

import re
from typing import Any

RETRY = "retry"  # not the file's fault
BAD_INPUT = "bad_input"  # the file's content
CONFIGURATION = "configuration"  # a person must fix the setup
OTHER = "other"  # anything else the server says: retried, with its message

_RETRY_CLASSES = ("08", "57P", "53", "40", "55P03", "58")
_BAD_INPUT_CLASSES = ("22", "23", "54")
_CONFIGURATION_CLASSES = ("28", "3D", "42501")
# libpq's words for a login the server refused, when it gives no SQLSTATE.
_REFUSED_LOGIN = re.compile(
    r"password authentication failed|no password supplied|authentication failed"
    r"|database \"[^\"]*\" does not exist|role \"[^\"]*\" does not exist"
    r"|permission denied for database|no pg_hba\.conf entry|pg_hba\.conf rejects",
    re.IGNORECASE,
)


def classify(exc: BaseException) -> str:
    """RETRY, BAD_INPUT, CONFIGURATION or OTHER for a psycopg error."""
    code = getattr(exc, "sqlstate", None) or ""
    if code:
        if code.startswith(_CONFIGURATION_CLASSES):
            return CONFIGURATION
        if code.startswith(_BAD_INPUT_CLASSES):
            return BAD_INPUT
        if code.startswith(_RETRY_CLASSES):
            return RETRY
        return OTHER
    if _REFUSED_LOGIN.search(str(exc)):
        return CONFIGURATION
    return RETRY  # no SQLSTATE: the connection itself failed


_URL_PASSWORD = re.compile(r"(://[^:/?#@]*):[^/?#]*@")
_QUERY_PASSWORD = re.compile(r"([?&](?:ssl)?password=)[^&#]*", re.IGNORECASE)
_KEYWORD_PASSWORD = re.compile(
    r"(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s']\S*)", re.IGNORECASE
)


def redact(location: str) -> str:
    """A connection string (URL or libpq keywords) with every password shown as ***."""
    text = _URL_PASSWORD.sub(r"\1:***@", location)
    text = _QUERY_PASSWORD.sub(r"\1***", text)
    if "://" not in text:
        text = _KEYWORD_PASSWORD.sub(r"\1***", text)
    return text


def describe(exc: Any) -> str:
    """The server's message in one line, with its SQLSTATE when there is one."""
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    code = getattr(exc, "sqlstate", None)
    return f"{line} (SQLSTATE {code})" if code else line


def with_context(exc: Any) -> str:
    """The message, the context the server gives (a COPY's line and column), the SQLSTATE."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) or str(exc).strip()
    context = getattr(diag, "context", None)
    text = f"{primary} ({context.strip()})" if context else primary
    code = getattr(exc, "sqlstate", None)
    return f"{text} [SQLSTATE {code}]" if code else text


_COPY_LINE = re.compile(r"^COPY .*?, line (\d+)", re.DOTALL)


def copy_line(exc: Any) -> int | None:
    """The line of the COPY's input the server refused (1 is the first row sent), or None."""
    context = getattr(getattr(exc, "diag", None), "context", None) or ""
    for part in context.splitlines():
        found = _COPY_LINE.match(part.strip())
        if found:
            return int(found.group(1))
    return None
