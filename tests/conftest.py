import pytest
from hypothesis import HealthCheck, settings

from helpers import crash, open_log
from kafkapy.log.partition import PartitionLog

# File-backed examples can exceed hypothesis' default 200 ms deadline on a loaded
# machine; every test is bounded by pytest-timeout instead.
settings.register_profile("kafkapy", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("kafkapy")


@pytest.fixture
def log_dir(tmp_path):
    return tmp_path / "topic-0"


@pytest.fixture
def opened():
    """Opens logs with helpers.open_log, and at the end lets go of them as a crash would
    (the test's files go with tmp_path)."""
    logs: list[PartitionLog] = []

    def open_(*args, **kwargs) -> PartitionLog:
        log = open_log(*args, **kwargs)
        logs.append(log)
        return log

    yield open_
    for log in logs:
        crash(log)
