"""The controller listener's APIs ask for CLUSTER_ACTION on the cluster, as Kafka's
ControllerApis does: BrokerRegistration, BrokerHeartbeat, AllocateProducerIds and
AlterPartition. A principal without it is answered CLUSTER_AUTHORIZATION_FAILED before
the controller sees the request; one with it reaches the controller (here one that is no
longer active, which answers NOT_CONTROLLER)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from kio.schema.errors import ErrorCode

from kafkapy.broker.controller_service import NotController
from kafkapy.handlers.context import Node, RequestContext
from kafkapy.handlers.controller import handle_allocate_producer_ids, handle_broker_heartbeat, handle_broker_registration
from kafkapy.handlers.leaders import handle_alter_partition
from kafkapy.metadata.acls import CLUSTER_NAME, Acl, AclImage, AclOperation, AclPermission, PatternType, ResourceType
from kafkapy.security.authorizer import Authorizer

BROKER = "User:broker"
CLUSTER_ID = "q1Sh-9_ISia_zwGINzRvyQ"


class _InactiveController:
    is_active = False

    async def _not_controller(self, *args: Any) -> Any:
        raise NotController(controller_id=3)

    register_broker = broker_heartbeat = reserve_producer_ids = alter_partition = _not_controller


@dataclass
class _ControllerNode:
    """What these handlers use of a Node, with the real authorization methods."""

    authorizer: Authorizer
    image: Any
    controller_service: Any
    cluster_id: str = CLUSTER_ID
    authorized = Node.authorized
    authorized_on_cluster = Node.authorized_on_cluster


def _node(*acls: Acl) -> Any:
    image = SimpleNamespace(acls=AclImage({uuid.uuid4(): a for a in acls}))
    return _ControllerNode(Authorizer(), image, _InactiveController())


def _ctx(api_key: int, version: int, principal: str) -> RequestContext:
    return RequestContext(api_key, version, 1, "broker-2", "127.0.0.1", via_controller_listener=True, principal=principal)


REGISTRATION = SimpleNamespace(
    cluster_id=CLUSTER_ID, broker_id=2, incarnation_id=uuid.uuid4(), rack=None,
    listeners=[SimpleNamespace(name="PLAINTEXT", host="127.0.0.1", port=9093, security_protocol=0)])
HEARTBEAT = SimpleNamespace(broker_id=2, broker_epoch=5, current_metadata_offset=10, want_fence=False, want_shut_down=False)
ALLOCATION = SimpleNamespace(broker_id=2, broker_epoch=5)
ISR_CHANGE = SimpleNamespace(broker_id=2, broker_epoch=5, topics=[SimpleNamespace(topic_id=uuid.uuid4(), partitions=[
    SimpleNamespace(partition_index=0, leader_epoch=1, partition_epoch=1, new_isr_with_epochs=[
        SimpleNamespace(broker_id=2, broker_epoch=5)])])])

Handler = Callable[[Any, RequestContext, Any], Any]
CASES: list[tuple[str, Handler, int, int, Any]] = [
    ("BrokerRegistration", handle_broker_registration, 62, 4, REGISTRATION),
    ("BrokerHeartbeat", handle_broker_heartbeat, 63, 1, HEARTBEAT),
    ("AllocateProducerIds", handle_allocate_producer_ids, 67, 0, ALLOCATION),
    ("AlterPartition", handle_alter_partition, 56, 3, ISR_CHANGE),
]


@pytest.mark.parametrize(("handler", "api_key", "version", "request_"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_controller_apis_need_cluster_action(handler: Handler, api_key: int, version: int, request_: Any) -> None:
    node = _node(Acl(ResourceType.CLUSTER, CLUSTER_NAME, PatternType.LITERAL, BROKER, "*",
                     AclOperation.CLUSTER_ACTION, AclPermission.ALLOW),
                 Acl(ResourceType.CLUSTER, CLUSTER_NAME, PatternType.LITERAL, "User:admin", "*",
                     AclOperation.ALTER, AclPermission.ALLOW))

    def error_of(principal: str) -> int:
        return anyio.run(handler, node, _ctx(api_key, version, principal), request_)["error_code"]

    assert error_of(BROKER) == ErrorCode.not_controller
    # ALTER on the cluster is no substitute for CLUSTER_ACTION here.
    assert error_of("User:admin") == ErrorCode.cluster_authorization_failed
    assert error_of("User:ANONYMOUS") == ErrorCode.cluster_authorization_failed
