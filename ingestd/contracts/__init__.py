"""The interfaces everything else meets at: a source of files, a ledger of claims and records,
the handler API, the meaning of a data file's name, and the errors they raise.

Nothing here imports another part of ingestd: the core is written against these, and each
backend implements them.
"""
