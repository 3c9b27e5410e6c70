"""The broker's background tasks are supervised: a failure is logged with the task's name
and the task goes on after a backoff; a failed log directory halts the broker only when it
holds the metadata log."""

from __future__ import annotations

import errno
import logging

import anyio
import pytest

from kafkapy.clock import FakeClock
from kafkapy.config import BrokerConfig
from kafkapy.server import broker as broker_module
from kafkapy.server.broker import BrokerServer

pytestmark = pytest.mark.timeout(30)


def server_on(*dirs) -> BrokerServer:  # type: ignore[no-untyped-def]
    config = BrokerConfig({"listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": ",".join(map(str, dirs))})
    server = BrokerServer(config, FakeClock())
    server._bind()
    server._open_storage()
    return server


def close(server: BrokerServer) -> None:
    server.kill()
    server._close_files()
    for sock in server._sockets:
        sock.close()


def test_a_failing_background_task_is_logged_by_name_and_started_again(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(broker_module, "_TASK_RESTART_BACKOFF_S", 0.01)
    server = BrokerServer(BrokerConfig({"log.dirs": str(tmp_path)}), FakeClock())
    runs: list[int] = []

    async def flaky() -> None:
        runs.append(len(runs))
        if len(runs) < 3:
            raise RuntimeError(f"failure {len(runs)}")

    async def main() -> None:
        with anyio.fail_after(5):
            await server._supervised("retention", flaky)

    with caplog.at_level(logging.ERROR):
        anyio.run(main)

    assert runs == [0, 1, 2]
    failures = [r for r in caplog.records if "Background task retention failed" in r.getMessage()]
    assert [str(r.exc_info[1]) for r in failures if r.exc_info] == ["failure 1", "failure 2"]


def test_losing_a_data_directory_leaves_the_broker_running_and_losing_the_metadata_one_halts_it(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    server = server_on(first, second)
    logs = server._logs
    assert logs is not None
    try:
        logs.fail_dir(second, OSError(errno.EIO, "Input/output error"), "flushing t-0")
        assert server._halted is None and not server._stop.is_set()

        logs.fail_dir(first, OSError(errno.ENOSPC, "No space left on device"), "appending to __cluster_metadata-0")
        assert server._stop.is_set() and server._killed
        assert server._halted is not None and str(first) in str(server._halted)
        assert "metadata log" in str(server._halted)
    finally:
        close(server)
