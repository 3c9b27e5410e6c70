"""The partition leader's way to the controller for ISR changes: proposals pending together
go in one AlterPartition, one per partition at a time, and a top-level error or a
controller change is ridden out."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import anyio
from kio.schema.errors import ErrorCode

from kafkapy.broker.alter_partition import AlterPartitionManager, IsrChange, IsrChangeResult
from kafkapy.broker.controller_channel import ControllerUnavailable

TOPIC = uuid.uuid4()
EPOCHS = {1: 10, 2: 20, 3: 30}


class Controller:
    """Answers each proposal with its ISR accepted, after the test lets it; remembers what it was sent."""

    def __init__(self, top_errors: Sequence[ErrorCode | type[Exception]] = ()) -> None:
        self.requests: list[tuple[int, int, list[tuple[IsrChange, tuple[int, ...]]]]] = []
        self.top_errors = list(top_errors)
        self.release = anyio.Event()

    async def alter_partition(self, broker_id: int, broker_epoch: int, proposals) -> tuple[ErrorCode, list[IsrChangeResult]]:
        self.requests.append((broker_id, broker_epoch, [(c, tuple(e)) for c, e in proposals]))
        await self.release.wait()
        if self.top_errors:
            error = self.top_errors.pop(0)
            if isinstance(error, type):
                raise error("no controller")
            return error, []
        return ErrorCode.none, [
            IsrChangeResult(ErrorCode.none, 1, c.leader_epoch, c.partition_epoch + 1, c.new_isr) for c, _ in proposals]


def manager(controller: Controller) -> AlterPartitionManager:
    return AlterPartitionManager(controller, 1, lambda: 5, EPOCHS.__getitem__)


def change(partition: int, isr: tuple[int, ...] = (1, 2)) -> IsrChange:
    return IsrChange(TOPIC, partition, 3, 7, isr)


async def until(predicate) -> None:
    with anyio.fail_after(5):
        while not predicate():
            await anyio.sleep(0.001)


def test_proposals_pending_together_go_in_one_request_with_member_epochs() -> None:
    async def main() -> None:
        controller = Controller()
        m = manager(controller)
        results: dict[int, IsrChangeResult] = {}

        async def submit(c: IsrChange) -> None:
            results[c.partition] = await m.submit(c)

        async with anyio.create_task_group() as tg:
            tg.start_soon(submit, change(0))
            await until(lambda: len(controller.requests) == 1)
            # While the first is in flight, two more wait and then go together.
            tg.start_soon(submit, change(1, (1, 3)))
            tg.start_soon(submit, change(2))
            await until(lambda: len(m._unsent) == 2)  # both queued behind the first
            controller.release.set()
        assert [[c.partition for c, _ in r[2]] for r in controller.requests] == [[0], [1, 2]]
        assert controller.requests[1][:2] == (1, 5)
        assert controller.requests[1][2][0][1] == (10, 30)  # the broker epochs of ISR members 1 and 3
        assert results[1] == IsrChangeResult(ErrorCode.none, 1, 3, 8, (1, 3))
        assert sorted(results) == [0, 1, 2]

    anyio.run(main)


def test_a_second_proposal_for_a_partition_in_flight_is_not_attempted() -> None:
    async def main() -> None:
        controller = Controller()
        m = manager(controller)
        async with anyio.create_task_group() as tg:
            tg.start_soon(m.submit, change(0))
            await until(lambda: len(controller.requests) == 1)
            assert (await m.submit(change(0, (1,)))).error == ErrorCode.operation_not_attempted
            controller.release.set()
        # Once answered, the partition may propose again.
        assert (await m.submit(change(0, (1,)))).error == ErrorCode.none

    anyio.run(main)


def test_top_level_errors_and_a_missing_controller_are_retried() -> None:
    async def main() -> None:
        controller = Controller([ErrorCode.not_controller, ControllerUnavailable, ErrorCode.stale_broker_epoch])
        controller.release.set()
        with anyio.fail_after(5):
            result = await manager(controller).submit(change(0))
        assert result.error == ErrorCode.none and len(controller.requests) == 4

    anyio.run(main)


def test_a_cancelled_sender_leaves_the_others_proposals_to_be_sent() -> None:
    async def main() -> None:
        controller = Controller()
        m = manager(controller)
        results: list[IsrChangeResult] = []

        async def second() -> None:
            results.append(await m.submit(change(1)))

        first_scope = anyio.CancelScope()

        async def first() -> None:
            with first_scope:
                await m.submit(change(0))

        async with anyio.create_task_group() as tg:
            tg.start_soon(first)
            await until(lambda: len(controller.requests) == 1)
            tg.start_soon(second)
            await until(lambda: len(m._unsent) == 1)
            first_scope.cancel()  # the sender gives up while its request is out
            await until(lambda: len(controller.requests) == 2)
            controller.release.set()
        assert [c.partition for c, _ in controller.requests[1][2]] == [1]
        assert results[0].error == ErrorCode.none

    anyio.run(main)
