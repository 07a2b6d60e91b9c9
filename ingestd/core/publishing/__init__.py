"""Publishing outputs in name order per key: the plan (pure) and the pass that carries it out."""
