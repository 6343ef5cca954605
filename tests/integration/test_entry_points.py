"""The module entry points as an operator starts them: the ARM emulator on the port asked for,
and `python -m shared` refusing a bad setting in one line, before any request."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from shared.local.azurite import free_port

ROOT = Path(__file__).resolve().parents[2]
SUB = "3f2c8a51-6b0e-4d7a-9c21-5e8f0a1b2c3d"  # a subscription of the demo fleet
EMULATOR = [sys.executable, "-m", "shared.local.arm_emulator"]
# Another process may take the probed port before the emulator binds it: then try another.
PORT_ATTEMPTS = 3


def start_emulator_on_a_free_port() -> tuple[subprocess.Popen, int, str]:
    """The emulator started with `--port <free port>`; returns it, the port and the URL it printed."""
    for _ in range(PORT_ATTEMPTS):
        port = free_port()
        process = subprocess.Popen(
            [*EMULATOR, "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        printed = process.stdout.readline().strip()
        if printed:
            return process, port, printed
        _, stderr = process.communicate(timeout=10)
        if "Address already in use" not in stderr:
            pytest.fail(f"the emulator did not start: {stderr}")
    pytest.fail(f"no free port found in {PORT_ATTEMPTS} attempts")


def list_clusters(port: int) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(
            "GET",
            f"/subscriptions/{SUB}/providers/Microsoft.ContainerService/managedClusters?api-version=2026-08-01",
            headers={"Authorization": "Bearer local"},
        )
        response = connection.getresponse()
        assert response.status == 200
        return json.loads(response.read())
    finally:
        connection.close()


def test_the_emulator_listens_on_the_port_it_is_given():
    process, port, printed = start_emulator_on_a_free_port()
    try:
        assert printed == f"http://127.0.0.1:{port}"
        assert "aks-dev-weu" in {cluster["name"] for cluster in list_clusters(port)["value"]}
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
        process.stdout.close()
        process.stderr.close()


def test_the_emulator_on_a_busy_port_says_so_in_one_line():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([*EMULATOR, "--port", str(port)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [
        f"cannot listen on 127.0.0.1:{port}: Address already in use; choose another --port, or 0 for a free one"
    ]


@pytest.mark.parametrize("port", ["70000", "-1", "http"], ids=["too-high", "negative", "not-a-number"])
def test_the_emulator_refuses_a_port_that_is_not_one(port):
    done = subprocess.run([*EMULATOR, f"--port={port}"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "argument --port: must be a TCP port from 0 to 65535" in done.stderr
    assert "Traceback" not in done.stderr


BAD_SETTINGS = {
    "policy-default-off": (
        {"WARDEN_POLICY": '{"default": "Off"}'},
        "error: policy $.default: is 'Off'; expected one of ",
        "(from WARDEN_POLICY)",
    ),
    "schedule-out-of-range": (
        {"WARDEN_VERIFY_SCHEDULE": "99 99 99 99 99 99"},
        "error: WARDEN_VERIFY_SCHEDULE: second 99 is outside 0-59",
        "(in '99 99 99 99 99 99')",
    ),
}


@pytest.mark.parametrize(("env", "start", "end"), BAD_SETTINGS.values(), ids=BAD_SETTINGS.keys())
def test_plan_refuses_a_bad_setting_in_one_line_before_any_request(env, start, end):
    # Nothing listens on the ARM port: a request made before the settings are checked would fail
    # another way (exit 1), and nothing beyond loopback is ever contacted.
    base = {
        "WARDEN_SUBSCRIPTIONS": SUB,
        "AZURE_RESOURCE_MANAGER_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-m", "shared", "plan"], cwd=ROOT, env=base | env, capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout) == (2, "")
    [line] = done.stderr.splitlines()
    assert line.startswith(start) and line.endswith(end)
    assert "policy $.default: policy" not in line and line.count("WARDEN_VERIFY_SCHEDULE") <= 1
