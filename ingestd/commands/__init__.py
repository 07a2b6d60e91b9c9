"""The top: the command line, the composition root that picks backends for `run`, and the
operator commands (status, verify, explain, health, timeline, workers, compact, ...)."""
