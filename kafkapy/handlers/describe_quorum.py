"""DescribeQuorum (55): the metadata quorum's leader, epoch, high watermark, and how far
each voter and observer has fetched, as Kafka's KafkaRaftClient answers it.

On the controller listener the Raft leader answers from its own state, any other voter
with NOT_LEADER_OR_FOLLOWER. On a broker listener the request goes to the active
controller, as a Kafka 4 broker forwards it (`kafka-metadata-quorum.sh
--bootstrap-server` works through any broker)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kio.schema.errors import ErrorCode

from ..log.manager import METADATA_PARTITION
from ..metadata.acls import AclOperation
from .context import Node, RequestContext
from .controller import error_answer, on_active_controller
from .registry import handles

if TYPE_CHECKING:
    from ..raft.describe import QuorumDescription, ReplicaDescription

_TOPIC, _PARTITION = METADATA_PARTITION


def _replica(r: ReplicaDescription) -> dict[str, Any]:
    # A static quorum (controller.quorum.voters) knows no directory ids: Kafka sends zero.
    return {"replica_id": r.replica_id, "replica_directory_id": None, "log_end_offset": r.log_end_offset,
            "last_fetch_timestamp": r.last_fetch_timestamp, "last_caught_up_timestamp": r.last_caught_up_timestamp}


def _partition(error: ErrorCode, description: QuorumDescription | None = None, index: int = _PARTITION) -> dict[str, Any]:
    d = description
    return {
        "partition_index": index, "error_code": error, "error_message": None,
        "leader_id": d.leader_id if d else -1, "leader_epoch": d.leader_epoch if d else -1,
        "high_watermark": d.high_watermark if d else -1,
        "current_voters": [_replica(r) for r in d.voters] if d else [],
        "observers": [_replica(r) for r in d.observers] if d else [],
    }


def _nodes(node: Node) -> list[dict[str, Any]]:
    """The voters' controller endpoints (v2), from controller.quorum.voters."""
    names = node.config.strings("controller.listener.names")
    return [{"node_id": v.node_id, "listeners": [{"name": names[0], "host": v.host, "port": v.port}] if names else []}
            for v in node.config.quorum_voters]


def _response(topics: list[dict[str, Any]], nodes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error_code": ErrorCode.none, "error_message": None, "topics": topics, "nodes": nodes or []}


def describe(node: Node, ctx: RequestContext, request: Any) -> Any:
    """This node's answer, from the state of its own quorum."""
    if not node.authorized_on_cluster(ctx, AclOperation.DESCRIBE):
        return error_answer(ctx, request, ErrorCode.cluster_authorization_failed)
    asked = [(t.topic_name, p.partition_index) for t in request.topics for p in t.partitions]
    if asked != [(_TOPIC, _PARTITION)]:
        # As Kafka: anything but exactly the metadata partition is an unknown partition, each.
        return _response([{"topic_name": t.topic_name,
                           "partitions": [_partition(ErrorCode.unknown_topic_or_partition, index=p.partition_index)
                                          for p in t.partitions]} for t in request.topics])
    description = node.metadata.quorum.describe()
    if description is None:
        return _response([{"topic_name": _TOPIC, "partitions": [_partition(ErrorCode.not_leader_or_follower)]}])
    return _response([{"topic_name": _TOPIC, "partitions": [_partition(ErrorCode.none, description)]}], _nodes(node))


@handles(55)
async def handle_describe_quorum(node: Node, ctx: RequestContext, request: Any) -> Any:
    if ctx.via_controller_listener:
        return describe(node, ctx, request)

    async def here() -> Any:
        return describe(node, ctx, request)

    return await on_active_controller(node, ctx, request, here)
