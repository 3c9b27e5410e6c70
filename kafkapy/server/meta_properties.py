"""Each log directory's meta.properties: which node it belongs to and which cluster, as
Kafka's `kafka-storage.sh format` writes it. A single node formats its own on first
start; the members of a cluster are formatted with one cluster id before they start."""

from __future__ import annotations

import base64
import time
import uuid
from pathlib import Path

from ..config import ConfigError

META_PROPERTIES = "meta.properties"


def random_cluster_id() -> str:
    """A cluster id as Kafka makes one (`kafka-storage.sh random-uuid`): a UUID in URL-safe base64."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def load_meta_properties(dirs: list[Path], node_id: int, *, generate: bool = True) -> str:
    """The cluster id the directories were formatted with; with `generate`, unformatted
    directories are formatted first with a new id."""
    cluster_id = None
    for d in dirs:
        path = d / META_PROPERTIES
        if not path.exists():
            continue
        props = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
        if int(props.get("node.id", node_id)) != node_id:
            raise ConfigError(f"{path} belongs to node {props['node.id']}, but node.id is {node_id}")
        if cluster_id is not None and props.get("cluster.id") != cluster_id:
            raise ConfigError(f"{path} names cluster {props.get('cluster.id')}, other log dirs name {cluster_id}")
        cluster_id = props.get("cluster.id")
    if cluster_id is None:
        if not generate:
            raise ConfigError(
                "the log directories are not formatted: the nodes of a cluster share one cluster id, so format each "
                "node's storage first, e.g. `kafkapy storage format --cluster-id $(kafkapy storage random-uuid) "
                "--config server.properties`, as kafka-storage.sh format does")
        cluster_id = random_cluster_id()
    format_storage(dirs, node_id, cluster_id)
    return cluster_id


def format_storage(dirs: list[Path], node_id: int, cluster_id: str) -> None:
    """Writes meta.properties into each directory that has none."""
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
        path = d / META_PROPERTIES
        if not path.exists():
            path.write_text(f"#\n#{time.ctime()}\nnode.id={node_id}\nversion=1\ncluster.id={cluster_id}\n")
