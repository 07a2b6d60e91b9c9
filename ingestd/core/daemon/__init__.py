"""The daemon: one object that starts and stops a few services sharing one `Shared` state.

`daemon.py` owns the lifecycle (signals, start-up, the tasks, shutdown); each service owns one
concern: `waiting.py` (the source and the ledger that are not there yet), `claiming.py` (the
claim loop and the pause), `ticking.py` (rescans, settle checks, idle exit), `heartbeats.py`
(heartbeats, pruning, a worker id used twice, claims re-asserted), `publishing.py` (passes of
`--publish-in-order`) and `telemetry.py` (metrics, their textfile, the systemd watchdog).
"""

from ingestd.contracts.errors import StartupError
from ingestd.core.daemon.daemon import Daemon

__all__ = ["Daemon", "StartupError"]
