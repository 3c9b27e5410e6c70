"""The follower's and the observer's side of the Raft core: fetching from the leader,
truncating to a diverging epoch, fetching the leader's snapshot when the log it needs
is gone (KIP-630), and learning the high watermark. Part of RaftCore, kept in a module
of its own; its methods work on the core's state."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kio.schema.errors import ErrorCode

from .log import OffsetAndEpoch
from .messages import FetchRequest, FetchResponse, FetchSnapshotRequest, FetchSnapshotResponse
from .output import NO_LEADER, Append, InstallSnapshot, Role, Snapshot, Truncate

if TYPE_CHECKING:
    from .core import RaftCore


def send_fetch(core: RaftCore, now: int) -> None:
    if core.leader_id != NO_LEADER:
        destination = core.leader_id
    elif not core.is_voter and core.voters:
        # An observer asks a voter at random which one leads, passing over those that left
        # a fetch unanswered while another may answer (as Kafka's observers pass over a
        # bootstrap server whose request failed): a dead leader costs one request timeout.
        destination = core.rng.choice(sorted(core.voters - core._unanswered) or sorted(core.voters))
    else:
        return
    correlation = core._next_correlation()
    core._inflight_fetch = (correlation, now + core.config.request_timeout_ms, destination)
    core._next_fetch_ms = None
    if core._snapshot_download is not None:
        snapshot_id, received = core._snapshot_download
        core._send(destination, FetchSnapshotRequest(correlation, core.epoch, core.node_id, snapshot_id,
                                                     len(received), core.config.fetch_snapshot_max_bytes))
        return
    core._send(destination, FetchRequest(correlation, core.epoch, core.node_id, core.log.end_offset,
                                         core.log.last_epoch, core.config.fetch_max_wait_ms,
                                         core._high_watermark_or_unknown()))

def on_fetch_timeout(core: RaftCore, now: int) -> None:
    """The fetch in flight went unanswered within the request timeout: it is sent again."""
    assert core._inflight_fetch is not None
    if not core.is_voter:
        core._unanswered.add(core._inflight_fetch[2])
    send_fetch(core, now)


def _answered(core: RaftCore) -> None:
    assert core._inflight_fetch is not None
    core._unanswered.discard(core._inflight_fetch[2])
    core._inflight_fetch = None


def on_fetch_response(core: RaftCore, now: int, response: FetchResponse) -> None:
    if core._inflight_fetch is None or response.correlation != core._inflight_fetch[0]:
        return
    _answered(core)
    if core._maybe_newer_epoch(now, response.epoch, response.leader_id):
        return
    if response.error != ErrorCode.none or response.epoch != core.epoch or core.role is not Role.FOLLOWER:
        core._next_fetch_ms = now + core.config.retry_backoff_ms
        return
    core._heard_from_leader = True
    core._fetch_deadline = now + core.config.fetch_timeout_ms
    if response.snapshot_id is not None:
        core._snapshot_download = (response.snapshot_id, bytearray())
        send_fetch(core, now)
        return
    if response.diverging is not None:
        # The log up to the truncation point is not yet known to match the leader's (an
        # older epoch may diverge too): the next fetch validates it, so the high
        # watermark moves only on an answer without a diverging epoch, as in Kafka.
        offset = core.log.truncation_offset(OffsetAndEpoch(response.diverging.end_offset, response.diverging.epoch))
        core.log.truncate_to(offset)
        core._out.log.append(Truncate(offset))
    else:
        if response.batches and response.base_offset == core.log.end_offset:
            for batch in response.batches:
                core._out.log.append(Append(core.log.end_offset, batch))
                core.log.append(batch)
        high_watermark = min(response.high_watermark, core.log.end_offset)
        if high_watermark > core._high_watermark_or_unknown():
            core._set_high_watermark(high_watermark)
    send_fetch(core, now)

def on_fetch_snapshot_response(core: RaftCore, now: int, response: FetchSnapshotResponse) -> None:
    if core._inflight_fetch is None or response.correlation != core._inflight_fetch[0]:
        return
    _answered(core)
    if core._maybe_newer_epoch(now, response.epoch, response.leader_id):
        return
    download = core._snapshot_download
    if (response.error != ErrorCode.none or download is None or core.role is not Role.FOLLOWER
            or response.snapshot_id != download[0] or response.position != len(download[1])):
        # The leader has a newer snapshot, or something moved: start again from a plain fetch.
        core._snapshot_download = None
        core._next_fetch_ms = now + core.config.retry_backoff_ms
        return
    core._heard_from_leader = True
    core._fetch_deadline = now + core.config.fetch_timeout_ms
    snapshot_id, received = download
    received += response.data
    if len(received) >= response.size:
        core._snapshot_download = None
        core.snapshot = Snapshot(snapshot_id, bytes(received))
        core.log.reset(snapshot_id.offset, snapshot_id.epoch)
        core._out.log.append(InstallSnapshot(core.snapshot))
        # A snapshot holds only committed records: the state machine now stands at its end.
        core._delivered = snapshot_id.offset
        if snapshot_id.offset > core._high_watermark_or_unknown():
            core.high_watermark = core._out.high_watermark = snapshot_id.offset
    send_fetch(core, now)
