"""The `simulate` handler: the provider's processing, `minutes * --seconds-in-min` of waiting.

A simulation file holds one decimal number of minutes, in ASCII. Everything else is bad input.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
from dataclasses import dataclass

from ingestd.contracts.errors import BadInput
from ingestd.handlers import Job, Outcome

MAX_SIMULATION_BYTES = 4096
# Decimal numbers as ASCII text only: float() also takes `1_000`, Arabic-Indic and fullwidth
# digits, which no provider means as a number of minutes.
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_ASCII_SPACE = " \t\n\r\f\v"
_BOM = "\ufeff"


def parse_minutes(content: bytes, max_minutes: float) -> float:
    """The processing time a simulation file holds, or `BadInput` saying why not."""
    if len(content) > MAX_SIMULATION_BYTES:
        raise BadInput(f"over {MAX_SIMULATION_BYTES} bytes")
    try:
        text = content.decode("utf-8").removeprefix(_BOM).strip(_ASCII_SPACE)
    except UnicodeDecodeError:
        raise BadInput("not UTF-8 text") from None
    if not text:
        raise BadInput("empty")
    if _DECIMAL.fullmatch(text) is None:
        if text.lower().lstrip("+-") in ("nan", "inf", "infinity"):
            raise BadInput(f"not a finite number: {text[:40]!r}")
        raise BadInput(f"not a number: {text[:40]!r}")
    minutes = float(text)
    if not math.isfinite(minutes):  # 1e999
        raise BadInput(f"not a finite number: {text[:40]!r}")
    if minutes < 0:
        raise BadInput(f"negative minutes: {text[:40]!r}")
    if minutes > max_minutes:
        raise BadInput(f"{text[:40]} minutes is over the cap of {max_minutes:g}")
    return minutes


@dataclass(frozen=True)
class Options:
    seconds_in_min: float = 60.0  # --seconds-in-min: one simulated minute, in seconds
    max_minutes: float = 1440.0  # --max-minutes: more than this is bad input


OPTIONS = Options


async def handle(job: Job) -> Outcome:
    """Wait `minutes * seconds_in_min` seconds; the head read at claim time is all it needs."""
    options: Options = job.options or Options()
    content = job.head
    minutes = parse_minutes(content, options.max_minutes)
    await asyncio.sleep(minutes * options.seconds_in_min)
    return Outcome(minutes=minutes, size=len(content), sha256=hashlib.sha256(content).hexdigest())
