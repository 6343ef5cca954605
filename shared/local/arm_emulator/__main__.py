"""`python -m shared.local.arm_emulator [--fleet FILE] [--port N]`: serve until SIGINT/SIGTERM.

Prints the base URL on stdout (one line, flushed) so a parent process can read it.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from shared.local.arm_emulator import ArmEmulator
from shared.local.arm_emulator.emulator import MAX_LATENCY_SECONDS, MAX_RUN_COMMAND_SECONDS

DEMO_FLEET = Path(__file__).resolve().parent.parent / "demo_fleet.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.local.arm_emulator", description=__doc__)
    parser.add_argument("--fleet", type=Path, default=DEMO_FLEET, help="fleet JSON (default: the demo fleet)")
    parser.add_argument("--port", type=_port, default=0, help="TCP port on 127.0.0.1 (default 0: a free port)")
    parser.add_argument("--lro-polls", type=int, default=1, help="status reads an operation stays InProgress")
    parser.add_argument("--retry-after", type=int, default=0, help="Retry-After seconds on long-running answers")
    parser.add_argument("--latency-seconds", type=_latency, default=0.0, help="wait before handling each ARM request")
    parser.add_argument(
        "--run-command-seconds",
        type=_run_command_seconds,
        default=0.0,
        help="least time a VMSS run-command stays InProgress (real ones take ~20 s)",
    )
    args = parser.parse_args(argv)
    try:
        fleet = json.loads(args.fleet.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        print(f"cannot read fleet file {args.fleet}: {error}; expected a JSON fleet document", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    options = {
        "lro_polls": args.lro_polls,
        "retry_after": args.retry_after,
        "latency_seconds": args.latency_seconds,
        "run_command_seconds": args.run_command_seconds,
    }
    emulator = ArmEmulator(fleet, **options)
    try:
        emulator.start(args.port)
    except OSError as error:
        message = (
            f"cannot listen on 127.0.0.1:{args.port}: {error.strerror}; choose another --port, or 0 for a free one"
        )
        print(message, file=sys.stderr)
        return 2
    try:
        print(emulator.base_url, flush=True)
        stop.wait()
    finally:
        emulator.stop()
    return 0


def _seconds(value: str, limit: float) -> float:
    """Checked here so a bad value is argparse's exit 2 with a message, not a traceback."""
    seconds = float(value)
    if not 0 <= seconds <= limit:
        raise argparse.ArgumentTypeError(f"must be between 0 and {limit:g} seconds, got {value}")
    return seconds


def _port(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or int(value) > 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port from 0 to 65535 (0: a free port), got {value!r}")
    return int(value)


def _latency(value: str) -> float:
    return _seconds(value, MAX_LATENCY_SECONDS)


def _run_command_seconds(value: str) -> float:
    return _seconds(value, MAX_RUN_COMMAND_SECONDS)


if __name__ == "__main__":
    sys.exit(main())
