"""A handler's open PostgreSQL transaction that the PostgreSQL ledger may join.

The `pg` handler leaves a file's rows uncommitted; when the ledger lives in the same database
it writes the file's record through the same connection and commits both at once. Only the
PostgreSQL parts know this protocol: the core passes a neutral `Transaction` along.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Joinable(Protocol):
    """`database` names the database (`current_database@system_identifier`); a ledger on the
    same one writes its record through `connection`, then `commit()` commits both."""

    @property
    def database(self) -> str: ...

    @property
    def connection(self) -> Any: ...

    def commit(self) -> None: ...

    def close(self) -> None: ...
