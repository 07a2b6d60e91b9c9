"""The `file` ledger: lock files, the JSONL manifest, heartbeats and the pause flag in a state
dir on one POSIX filesystem shared by every worker (a local disk, or NFS with working locks)."""

from ingestd.ledgers.file.ledger import FileInspector, FileLedger

__all__ = ["FileInspector", "FileLedger"]
