"""Start Azurite's Table service on a free loopback port (local runs and tests only).

`start_azurite()` returns a running `AzuriteProcess` whose `connection_string` names the
port explicitly (`UseDevelopmentStorage=true` is fixed to port 10002). The binary comes
from `<repo>/node_modules/.bin/azurite-table` (installed by `npm ci`) or `AZURITE_BIN`.

    python -m shared.local.azurite      # prints the connection string, serves until Ctrl-C
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN_ENV = "AZURITE_BIN"
HOST = "127.0.0.1"
# Azurite's published development account; the key is public, not a secret.
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
# Another process may grab the port between probing and Azurite binding it: retry with a new one.
PORT_ATTEMPTS = 3


class AzuriteError(RuntimeError):
    """Azurite is not installed or did not start."""


def find_binary() -> Path:
    """`AZURITE_BIN` if set, else the repo's npm install; raises with install advice."""
    configured = os.environ.get(BIN_ENV)
    candidate = Path(configured) if configured else REPO_ROOT / "node_modules" / ".bin" / "azurite-table"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    source = f"{BIN_ENV}={configured!r}" if configured else "the repository's node_modules"
    raise AzuriteError(
        f"azurite-table not found at {candidate} (from {source}). Install it with `npm ci` in "
        f"{REPO_ROOT} (needs Node.js and npm), or point {BIN_ENV} at an azurite-table executable."
    )


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def connection_string(port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"TableEndpoint=http://{HOST}:{port}/{ACCOUNT_NAME};"
    )


class AzuriteProcess:
    """A running `azurite-table`; `stop()` (or leaving the `with` block) ends it and removes
    the temporary data directory if this object created it."""

    def __init__(self, process: subprocess.Popen, port: int, workdir: Path, owns_workdir: bool):
        self.process = process
        self.port = port
        self.workdir = workdir
        self._owns_workdir = owns_workdir

    @property
    def connection_string(self) -> str:
        return connection_string(self.port)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                _kill(self.process)
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> AzuriteProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_azurite(workdir: str | Path | None = None, timeout: float = START_TIMEOUT_SECONDS) -> AzuriteProcess:
    """Start the Table service on a free loopback port and wait until it accepts connections.

    Data lives in `workdir` (kept), or in a fresh temporary directory removed by `stop()`.
    """
    binary = find_binary()
    owns_workdir = workdir is None
    directory = Path(tempfile.mkdtemp(prefix="azurite-")) if owns_workdir else Path(workdir)
    directory.mkdir(parents=True, exist_ok=True)
    try:
        return _start_on_some_port(binary, directory, owns_workdir, timeout)
    except BaseException:
        if owns_workdir:
            shutil.rmtree(directory, ignore_errors=True)
        raise


def _start_on_some_port(binary: Path, directory: Path, owns_workdir: bool, timeout: float) -> AzuriteProcess:
    failure = ""
    for _ in range(PORT_ATTEMPTS):
        port = free_port()
        process, failure = _launch(binary, directory, port, timeout)
        if process is not None:
            return AzuriteProcess(process, port, directory, owns_workdir)
        if "EADDRINUSE" not in failure:
            break
    raise AzuriteError(f"azurite-table ({binary}) did not start: {failure}")


def _launch(binary: Path, directory: Path, port: int, timeout: float) -> tuple[subprocess.Popen | None, str]:
    """Start one process; returns it once the port answers, or (None, why) after stopping it."""
    command = [
        str(binary),
        "--tableHost",
        HOST,
        "--tablePort",
        str(port),
        "--location",
        str(directory),
        "--silent",
        "--skipApiVersionCheck",
        "--loose",
        "--disableTelemetry",
    ]
    # Output goes to files, not pipes: nobody reads a pipe while the tests run, and a full one blocks.
    log_path = directory / f"azurite-table-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        failure = _wait_until_listening(process, port, timeout)
    except BaseException:  # Ctrl-C while waiting must not leave Azurite running
        _kill(process)
        raise
    if failure:
        _kill(process)
        return None, f"{failure}; output:\n{_read_tail(log_path)}"
    return process, ""


def _wait_until_listening(process: subprocess.Popen, port: int, timeout: float) -> str:
    """'' once the port answers, else why not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"exited with code {process.returncode}"
        if _port_answers(port):
            return ""
        time.sleep(0.1)
    return f"port {HOST}:{port} did not answer within {timeout:g} s"


def _kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()


def _port_answers(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _read_tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:].strip() or "(no output)"
    except OSError as error:
        return f"(log {path} unreadable: {error})"


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # `kill` must stop Azurite too, not orphan it


def main() -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        azurite = start_azurite()
    except AzuriteError as error:
        print(error, file=sys.stderr)
        return 2
    with azurite:
        print(azurite.connection_string, flush=True)
        print(f"Azurite Table service on {HOST}:{azurite.port}; Ctrl-C stops it.", file=sys.stderr)
        try:
            azurite.process.wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
