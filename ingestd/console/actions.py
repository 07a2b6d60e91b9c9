"""The console's actions (retry, pause, resume): who may act, and acting as the CLI does.

A token file holds one `NAME:TOKEN` per line (`#` comments, blank lines allowed); NAME says
who acted in the log and in the ledger. A request proves itself with a token in its form
(`token`) or an `Authorization: Bearer` header: never a cookie or a password the browser
replays by itself, so a page elsewhere cannot make a visitor's browser act (CSRF); a request
whose `Origin` is another site is refused besides.
"""

from __future__ import annotations

import hmac
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from ingestd.commands.verify import request_retries
from ingestd.contracts.ledger import Inspector
from ingestd.contracts.source import Source

MIN_TOKEN = 16  # characters: a short token is guessed
ACTIONS = ("retry", "pause", "resume")


@dataclass(frozen=True)
class Token:
    name: str
    secret: str


def read_tokens(path: Path) -> list[Token]:
    """The tokens in `path`; ValueError saying what is wrong with the file (OSError if it
    cannot be read)."""
    tokens = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, secret = line.partition(":")
        name, secret = name.strip(), secret.strip()
        if not sep or not name or not name.isprintable():
            raise ValueError(f"{path}:{number}: give NAME:TOKEN")
        if len(secret) < MIN_TOKEN:
            raise ValueError(f"{path}:{number}: {name}'s token is shorter than {MIN_TOKEN} "
                             "characters")  # fmt: skip
        tokens.append(Token(name, secret))
    if not tokens:
        raise ValueError(f"{path}: no NAME:TOKEN line")
    return tokens


def loose_permissions(path: Path) -> bool:
    """Whether others than the owner may read the token file."""
    return bool(os.stat(path).st_mode & 0o077)


def who(tokens: list[Token], presented: str | None) -> str | None:
    """The name of the token presented, or None. Compares every token in constant time."""
    if not presented:
        return None
    found = None
    for token in tokens:
        if hmac.compare_digest(token.secret.encode(), presented.encode()):
            found = token.name
    return found


def same_origin(origin: str | None, host: str | None) -> bool:
    """Whether a request's `Origin` (absent: not a cross-site browser request) is this host."""
    if not origin:
        return True
    scheme, _, rest = origin.partition("://")
    return scheme in ("http", "https") and bool(host) and rest == host


def act(action: str, names: list[str], name: str, source: Source, inspector: Inspector) -> str:
    """Do `action` as token `name` would on the command line; the line the CLI would print."""
    if action in ("pause", "resume"):
        changed = inspector.set_paused(action == "pause")
        word = "paused" if action == "pause" else "resumed"
        return word if changed else f"already {word}"
    actor = f"console:{name}@{socket.gethostname()}"
    answers = request_retries(source, inspector, names, actor)
    return "; ".join(f"{n}: {why or 'will be processed again'}" for n, why in answers)
