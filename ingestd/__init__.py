"""ingestd: every file that lands in a shared directory, processed exactly once by a fleet."""

__version__ = "0.3.0.dev0"
