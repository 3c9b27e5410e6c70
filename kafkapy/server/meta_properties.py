"""Each log directory's meta.properties: which node it belongs to and which cluster, as
Kafka's `kafka-storage.sh format` writes it. A single node formats its own on first
start; the members of a cluster are formatted with one cluster id before they start
(`kafkapy storage format`)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from ..config import ConfigError, load_properties
from ..log.files import StorageError, replace_file
from ..log.manager import METADATA_PARTITION, LogManager, TopicPartition, kafka_uuid

META_PROPERTIES = "meta.properties"


def random_cluster_id() -> str:
    """A cluster id as Kafka makes one (`kafka-storage.sh random-uuid`, Uuid.randomUuid): a
    random UUID in URL-safe base64 without padding; never the reserved all-zero or one
    UUIDs, and never one that starts with "-", which a command line would take for an option."""
    while True:
        value = uuid.uuid4()
        text = kafka_uuid(value)
        if value.int > 1 and not text.startswith("-"):
            return text


def read_meta_properties(directory: Path) -> dict[str, str] | None:
    """The directory's meta.properties as key -> value, or None when it has none."""
    path = directory / META_PROPERTIES
    if not path.exists():
        return None
    return load_properties(path.read_text())


def verify_meta_properties(dirs: list[Path], node_id: int, cluster_id: str | None = None) -> str | None:
    """The cluster id the formatted directories name (None if none is formatted); raises
    ConfigError, with Kafka's words (MetaPropertiesEnsemble.verify), when one names
    another cluster than `cluster_id` or the others, or another node than `node_id`."""
    found_any = False
    directory_ids: dict[str, Path] = {}
    for d in sorted(dirs):
        props = read_meta_properties(d)
        if props is None:
            continue
        found_any = True
        path = d / META_PROPERTIES
        directory_id = props.get("directory.id")
        if directory_id is not None and directory_id in directory_ids:
            raise ConfigError(f"Duplicate directory ID {directory_id} found. It was the directory ID of "
                              f"{directory_ids[directory_id]}, but also of {d}: give each log directory its own "
                              f"meta.properties (a copied directory keeps the id of the one it was copied from)")
        if directory_id is not None:
            directory_ids[directory_id] = d
        found_cluster = props.get("cluster.id")
        if found_cluster is None:
            raise ConfigError(f"cluster.id was not specified in the v1 file: {path}")
        if cluster_id is None:
            cluster_id = found_cluster
        elif found_cluster != cluster_id:
            raise ConfigError(f"Invalid cluster.id in: {path}. Expected {cluster_id}, but read {found_cluster}")
        try:
            found_node = int(props.get("node.id", node_id))
        except ValueError:
            raise ConfigError(f"node.id in {path} is not a number: {props['node.id']!r}") from None
        if found_node != node_id:
            raise ConfigError(
                f"Stored node id {found_node} doesn't match previous node id {node_id} in {path}. If you moved your "
                "data, make sure your configured node id matches. If you intend to create a new node, you should "
                "remove all data in your data directories.")
    return cluster_id if found_any else None


def load_meta_properties(dirs: list[Path], node_id: int, *, generate: bool = True) -> str:
    """The cluster id the directories were formatted with; with `generate`, unformatted
    directories are formatted first with a new id."""
    cluster_id = verify_meta_properties(dirs, node_id)
    if cluster_id is None:
        if not generate:
            raise ConfigError(
                "the log directories are not formatted: the nodes of a cluster share one cluster id, so format each "
                "node's storage first, e.g. `kafkapy storage format --cluster-id $(kafkapy storage random-uuid) "
                "--config server.properties`, as kafka-storage.sh format does")
        cluster_id = random_cluster_id()
    format_storage(dirs, node_id, cluster_id)
    return cluster_id


def format_storage(dirs: list[Path], node_id: int, cluster_id: str) -> list[Path]:
    """Writes meta.properties into each directory that has none (each with its own
    directory.id, as Kafka 4 writes); returns those it wrote."""
    written = []
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
        path = d / META_PROPERTIES
        if not path.exists():
            replace_file(path, f"#\n#{time.ctime()}\nnode.id={node_id}\ndirectory.id={random_cluster_id()}\n"
                               f"version=1\ncluster.id={cluster_id}\n".encode())
            written.append(d)
    return written


def refuse_partitions_without_metadata_log(logs: LogManager) -> None:
    """A single node keeps its own metadata log: partition directories without it mean
    the metadata that names their topics was lost, and starting would set every one of
    them aside as stray. Refused, so that an operator restores it or chooses."""
    metadata = TopicPartition(*METADATA_PARTITION)
    partitions = sorted(logs.existing())
    if partitions and not logs.has_directory(metadata):
        named = ", ".join(str(tp) for tp in partitions[:5]) + (", ..." if len(partitions) > 5 else "")
        raise StorageError(
            f"the log directories {', '.join(map(str, logs.dirs))} hold partition directories ({named}) but no metadata "
            f"log ({metadata}): the metadata naming their topics is lost. Restore the {metadata} directory, or, to "
            "start with no topics, move the partition directories out of the log directories")
