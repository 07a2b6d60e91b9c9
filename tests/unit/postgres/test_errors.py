"""PostgreSQL errors read by SQLSTATE (a retry, bad input, or a person's fix), and passwords
redacted from every form of connection string."""

from __future__ import annotations

import pytest

from ingestd.postgres.errors import BAD_INPUT, CONFIGURATION, RETRY, classify, redact


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://u:s3cr%40t@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u@/db?host=/run&password=s3cret&port=5", "postgresql://u@/db?host=/run&password=***&port=5"),
        ("postgres://h/db?PASSWORD=s3cret", "postgres://h/db?PASSWORD=***"),
        ("host=h password=s3cret dbname=db", "host=h password=*** dbname=db"),
        ("host=h password = 'it\\'s s3cret' user=u", "host=h password = *** user=u"),
        ("host=h sslpassword=s3cret", "host=h sslpassword=***"),
        ("postgresql://h/db", "postgresql://h/db"),
    ],
)  # fmt: skip
def test_every_form_of_password_is_redacted(text: str, shown: str) -> None:
    assert redact(text) == shown
    assert "s3cr" not in redact(text)


@pytest.mark.parametrize(
    ("sqlstate", "kind"),
    [("08006", RETRY), ("57P01", RETRY), ("53100", RETRY), ("40001", RETRY), ("55P03", RETRY),
     ("22003", BAD_INPUT), ("23505", BAD_INPUT), ("54000", BAD_INPUT), ("54001", BAD_INPUT),
     ("28P01", CONFIGURATION), ("3D000", CONFIGURATION), ("42501", CONFIGURATION)],
)  # fmt: skip
def test_errors_are_classified_by_sqlstate(sqlstate: str, kind: str) -> None:
    class Error(Exception):
        pass

    error = Error("x")
    error.sqlstate = sqlstate  # type: ignore[attr-defined]
    assert classify(error) == kind


def test_a_refused_login_without_sqlstate_is_configuration() -> None:
    refused = Exception('connection failed: FATAL:  password authentication failed for user "x"')
    assert classify(refused) == CONFIGURATION
    assert classify(Exception("connection refused")) == RETRY
