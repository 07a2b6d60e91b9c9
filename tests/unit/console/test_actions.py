"""Who may act on the console: the token file, the comparison, the origin check."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestd.console.actions import Token, read_tokens, same_origin, who
from ingestd.console.command import tokens_from
from ingestd.contracts.errors import StartupError

SECRET = "s3cret-token-0123456789"


def test_a_token_file_names_who_holds_each_token(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"# operators\n\nalice:{SECRET}\n bob : {SECRET}-b \n")
    assert read_tokens(path) == [Token("alice", SECRET), Token("bob", f"{SECRET}-b")]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("", "no NAME:TOKEN line"),
        ("# only a comment\n", "no NAME:TOKEN line"),
        (SECRET, ":1: give NAME:TOKEN"),
        (f":{SECRET}", ":1: give NAME:TOKEN"),
        ("alice:short", "shorter than 16"),
    ],
)
def test_a_bad_token_file_says_what_is_wrong(tmp_path: Path, content: str, says: str) -> None:
    path = tmp_path / "tokens"
    path.write_text(content)
    with pytest.raises(ValueError, match=says):
        read_tokens(path)


def test_who_holds_the_token_presented() -> None:
    tokens = [Token("alice", SECRET), Token("bob", SECRET + "b")]
    assert who(tokens, SECRET) == "alice"
    assert who(tokens, SECRET + "b") == "bob"
    assert who(tokens, SECRET[:-1]) is None
    assert who(tokens, "") is None and who(tokens, None) is None


def test_only_a_request_from_this_host_may_act() -> None:
    assert same_origin(None, "127.0.0.1:9465")  # curl, a script: no Origin at all
    assert same_origin("http://127.0.0.1:9465", "127.0.0.1:9465")
    assert not same_origin("http://evil.example", "127.0.0.1:9465")
    assert not same_origin("http://127.0.0.1:9466", "127.0.0.1:9465")
    assert not same_origin("null", "127.0.0.1:9465")


def test_actions_need_a_private_token_file(tmp_path: Path) -> None:
    assert tokens_from(False, None) is None
    with pytest.raises(StartupError, match="needs --console-token-file"):
        tokens_from(True, None)
    with pytest.raises(StartupError, match="is for --console-actions"):
        tokens_from(False, tmp_path / "tokens")
    with pytest.raises(StartupError, match="No such file"):
        tokens_from(True, tmp_path / "missing")
    path = tmp_path / "tokens"
    path.write_text(f"alice:{SECRET}\n")
    path.chmod(0o644)
    with pytest.raises(StartupError, match="chmod 600"):
        tokens_from(True, path)
    path.chmod(0o600)
    assert tokens_from(True, path) == [Token("alice", SECRET)]
