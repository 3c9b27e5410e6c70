"""Request frames through a running broker's own request path, in this process: frame
reader, request decoding, the handler, response encoding, as a connection does them, but
with no socket in between. What the fuzzing tests and `benchmarks/fuzz.py` drive.

Every frame ends in one of the outcomes a client could see: an answer (decoded again at
the request's version, so an answer that does not encode or decode fails), no answer
(Produce with acks=0), the connection closed by design (a frame or request the broker
cannot read), or a request legitimately parked longer than the bound (a long-poll Fetch
whose max_wait is longer, say). Anything else is a `Defect`: an exception the broker did
not mean, an answer that does not read back, a request that hangs, an event loop blocked.
"""

from __future__ import annotations

import datetime
import enum
import traceback
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, fields
from typing import Any

import anyio
from kio.serial.errors import OutOfBoundValue

from ..handlers import APIS, CloseConnection, dispatch
from ..handlers import Broker as BrokerState
from ..wire.framing import FrameError, FrameReader
from ..wire.protocol import FileSlice, InvalidRequest, decode_request, decode_response, peek_header
from .embedded import Broker

# Longer than any handler should take to answer a request it does not park.
DEFAULT_BOUND_S = 5.0
DESCRIBE_TRANSACTIONS = 65
# A blocked event loop is told from a slow handler by how long the loop itself fails to
# cancel the request past its bound.
_LOOP_GRACE_S = 10.0


class Outcome(enum.Enum):
    ANSWERED = "answered"
    NO_ANSWER = "no answer"
    CLOSED = "connection closed"
    PARKED = "parked"
    # Kafka's bytes that kio's decoder refuses: DescribeTransactions answers a transaction
    # that has not begun with -1 as its start time, as Kafka does, and kio decodes that
    # int64 field as a timestamp, which it will not have negative.
    ANSWERED_BEYOND_KIO = "answered with a value kio cannot decode"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    api_key: int = -1
    version: int = -1
    response: Any = None
    reason: str = ""


class Defect(AssertionError):
    """What the broker must never do with any request: a crash, an unreadable answer, a hang."""


class RequestTarget:
    """One client's view of a broker started by the test kit (`kafkapy.Broker`)."""

    def __init__(self, broker: Broker, bound_s: float = DEFAULT_BOUND_S, client_host: str = "127.0.0.1") -> None:
        self.broker = broker
        self.bound_s = bound_s
        self.client_host = client_host
        self.max_frame_size = broker.config.int("socket.request.max.bytes")
        self.outcomes: dict[Outcome, int] = dict.fromkeys(Outcome, 0)

    @property
    def state(self) -> BrokerState:
        supervisor = self.broker.supervisor
        assert supervisor is not None and supervisor.server is not None
        state = getattr(supervisor.server, "broker", None)
        assert isinstance(state, BrokerState), "the broker is not serving"
        return state

    def send_stream(self, data: bytes) -> list[Result]:
        """The bytes one connection received, cut into frames by the broker's frame reader;
        each whole frame answered in order. A bad size prefix closes the connection."""
        reader = FrameReader(self.max_frame_size)
        try:
            frames = reader.feed(data)
        except FrameError as e:
            return [self._count(Result(Outcome.CLOSED, reason=str(e)))]
        results = []
        for frame in frames:
            result = self.send(bytes(frame))
            results.append(result)
            if result.outcome is Outcome.CLOSED:
                break
        return results

    def send(self, frame: bytes) -> Result:
        """One request frame without its size prefix."""
        future = self.broker.submit(self._answer, frame)
        try:
            return self._count(future.result(timeout=self.bound_s + _LOOP_GRACE_S))
        except FutureTimeout:
            future.cancel()
            raise Defect(f"the event loop was blocked for more than {self.bound_s + _LOOP_GRACE_S:.0f} s "
                         f"by {_describe(frame)}") from None

    async def _answer(self, frame: bytes) -> Result:
        try:
            api_key, version, correlation_id = peek_header(frame)
        except InvalidRequest as e:
            return Result(Outcome.CLOSED, reason=str(e))
        answer: Any = None
        with anyio.move_on_after(self.bound_s) as scope:
            try:
                answer = await dispatch(self.state, frame, self.client_host)
            except (InvalidRequest, CloseConnection) as e:
                return Result(Outcome.CLOSED, api_key, version, reason=str(e))
            except Exception as e:
                raise Defect(f"{_describe(frame)} raised {e!r}\n{traceback.format_exc()}") from e
        if scope.cancelled_caught:
            waits_ms = _longest_wait_ms(frame, api_key, version)
            if waits_ms >= self.bound_s * 1000:
                return Result(Outcome.PARKED, api_key, version, reason=f"asked to wait up to {waits_ms} ms")
            raise Defect(f"{_describe(frame)} was not answered within {self.bound_s} s "
                         f"though it asked to wait at most {waits_ms} ms")
        if answer is None:
            return Result(Outcome.NO_ANSWER, api_key, version)
        chunks, size = answer
        try:
            encoded = b"".join(c.read() if type(c) is FileSlice else bytes(c) for c in chunks)
        finally:
            for chunk in chunks:
                if type(chunk) is FileSlice:
                    chunk.release()
        if len(encoded) != size:
            raise Defect(f"{_describe(frame)}: the answer is {len(encoded)} bytes, its frame says {size}")
        api = APIS[api_key]
        # An ApiVersions of a version the broker lacks is answered at v0, as Kafka answers it.
        answer_version = version if api.min_version <= version <= api.max_version else 0
        try:
            answered_id, response = decode_response(encoded[4:], api_key, answer_version)
        except OutOfBoundValue as e:
            if api_key == DESCRIBE_TRANSACTIONS and "negative timestamp" in str(e):
                return Result(Outcome.ANSWERED_BEYOND_KIO, api_key, answer_version, reason=str(e))
            raise Defect(f"{_describe(frame)}: the answer does not decode at v{answer_version}: {e!r}") from e
        except Exception as e:
            raise Defect(f"{_describe(frame)}: the answer does not decode at v{answer_version}: {e!r}") from e
        if answered_id != correlation_id:
            raise Defect(f"{_describe(frame)}: answered with correlation id {answered_id}")
        return Result(Outcome.ANSWERED, api_key, answer_version, response)

    def _count(self, result: Result) -> Result:
        self.outcomes[result.outcome] += 1
        return result


def _longest_wait_ms(frame: bytes, api_key: int, version: int) -> int:
    """The longest wait the request asks for in its own fields (max_wait, timeout,
    rebalance and session timeouts): how long the broker may legitimately hold it."""
    try:
        _, request = decode_request(frame, api_key, version)
    except InvalidRequest:
        return 0
    waits = [getattr(request, f.name) for f in fields(request)]
    return max((int(w.total_seconds() * 1000) for w in waits if isinstance(w, datetime.timedelta)), default=0)


def _describe(frame: bytes) -> str:
    try:
        api_key, version, _ = peek_header(frame)
    except InvalidRequest:
        return f"a {len(frame)}-byte frame"
    try:
        _, request = decode_request(frame, api_key, version)
    except InvalidRequest:
        request = f"{len(frame)} bytes"
    text = repr(request)
    return f"api {api_key} v{version} ({text[:2000]}{'...' if len(text) > 2000 else ''})"
