"""The web console: the fleet on one page, each file's story, the probes and the metrics, over
HTTP (`ingestd console DIR`, or a worker's `--metrics-listen` port with `--console`)."""
