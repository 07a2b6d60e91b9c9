"""The process's plumbing: settings, logs, metrics, health verdicts and probes, systemd."""
