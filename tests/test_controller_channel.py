"""The way to the active controller: local when this node is it, and local too when it
becomes it while a request waits (a forwarded one included)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from kafkapy.broker.controller_channel import ControllerRouter, ControllerUnavailable
from kafkapy.clock import FakeClock


class Becoming:
    """A controller service that is not active at first, then is."""

    def __init__(self) -> None:
        self.is_active = False


def router(local: Becoming, leader: list[int], clock: FakeClock) -> ControllerRouter:
    return ControllerRouter(1, local, {}, lambda: leader[0], clock, 1000, "cluster", 6000)  # type: ignore[arg-type]


async def answered_here() -> Any:
    return "answered here"


def test_a_forward_is_answered_here_once_this_node_becomes_the_active_controller() -> None:
    async def main() -> None:
        local, leader, clock = Becoming(), [-1], FakeClock()
        channel = router(local, leader, clock)

        async def elected() -> None:
            await anyio.sleep(0.05)
            leader[0], local.is_active = 1, True

        async with anyio.create_task_group() as tg:
            tg.start_soon(elected)
            with anyio.fail_after(5):
                assert await channel.forward(b"frame", "127.0.0.1", "User:ANONYMOUS", 19, 7, answered_here) == "answered here"

    anyio.run(main)


def test_with_no_controller_a_forward_gives_up_after_the_retry_window() -> None:
    async def main() -> None:
        clock = FakeClock()
        channel = router(Becoming(), [-1], clock)

        async def time_passes() -> None:
            while True:
                await anyio.sleep(0.01)
                clock.advance(500)

        async with anyio.create_task_group() as tg:
            tg.start_soon(time_passes)
            with anyio.fail_after(5), pytest.raises(ControllerUnavailable):
                await channel.forward(b"frame", "127.0.0.1", "User:ANONYMOUS", 19, 7, answered_here)
            tg.cancel_scope.cancel()

    anyio.run(main)


def test_a_controller_request_that_finds_no_controller_answers_every_topic_it_named() -> None:
    from kio.schema.errors import ErrorCode

    from kafkapy.handlers.context import RequestContext
    from kafkapy.handlers.controller import error_answer
    from kafkapy.wire.build import build
    from kafkapy.wire.protocol import request_type, response_type

    request = build(request_type(19, 7), {"timeout": 1000, "validate_only": False, "topics": [
        {"name": n, "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": []} for n in ("a", "b")]})
    answer = error_answer(RequestContext(19, 7, 1, None, "127.0.0.1"), request, ErrorCode.request_timed_out)
    response = build(response_type(19, 7), answer)
    assert [(t.name, t.error_code) for t in response.topics] == [("a", ErrorCode.request_timed_out), ("b", ErrorCode.request_timed_out)]
