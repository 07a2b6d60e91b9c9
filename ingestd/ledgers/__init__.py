"""Who holds what and what is finished: the `file` ledger (a state dir) or (for tests) memory."""
