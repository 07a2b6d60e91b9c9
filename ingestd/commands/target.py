"""What an operator command looks at: DIR (or a bucket) and its ledger, from the arguments
every command shares (DIR, --state-dir, --ledger, --pg-schema, --fleet)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ingestd import ledgers, sources
from ingestd.contracts.ledger import Inspector
from ingestd.contracts.source import Source


def where(args: argparse.Namespace) -> ledgers.Where:
    """Where the ledger is; ValueError for a location of no kind ingestd knows."""
    source_kind = sources.kind(args.dir)
    ledger_kind = ledgers.kind(args.ledger)
    state = ledger_kind.state_dir(args.ledger) if args.ledger else None
    state = state or args.state_dir or source_kind.default_state_dir(args.dir)
    source_id = sources.identity(source_kind.parse(args.dir), args.fleet)
    return ledgers.Where(args.ledger, state, args.pg_schema, source_id)


def state_dir(args: argparse.Namespace) -> Path | None:
    return where(args).state_dir


def view(args: argparse.Namespace) -> tuple[Source, Inspector]:
    """The source (what is there) and the ledger's inspector (not the composition root: an
    operator command builds neither a daemon nor a handler)."""
    found = where(args)
    source = sources.kind(args.dir).for_operator(args.dir, found.state_dir)
    return source, ledgers.kind(args.ledger).for_operator(found)


def problem(args: argparse.Namespace) -> str | None:
    """Why DIR (and the state dir) cannot be inspected, or None: a typo in DIR must not look
    like a healthy, empty fleet."""
    try:
        source_kind = sources.kind(args.dir)
        ledger_kind = ledgers.kind(args.ledger)
        found = where(args)
    except ValueError as exc:
        return str(exc)
    if (why := source_kind.problem(args.dir)) is not None:
        return why
    if ledger_kind.uses_state_dir:
        if found.state_dir is None:
            return f"{args.dir}: a bucket source needs --ledger or --state-dir"
        if found.state_dir.exists() and not found.state_dir.is_dir():
            return f"state dir is not a directory: {found.state_dir}"
    return None
