"""Where files come from: a local or NFS directory, or (for tests) memory."""
