"""kafkapy: a Kafka wire-protocol-compatible broker in Python."""

from .wire.kio_import import import_kio_without_hypothesis

# Before any module of kafkapy imports kio (see kio_import).
import_kio_without_hypothesis()

__version__ = "0.1.0"
__all__ = ["AsyncBroker", "Broker", "Cluster"]


def __getattr__(name: str) -> object:
    # The broker is imported on first use, so `kafkapy` stays quick to import for tools.
    if name == "Cluster":
        from .testing import cluster

        return cluster.Cluster
    if name in __all__:
        from .testing import embedded

        return getattr(embedded, name)
    raise AttributeError(f"module 'kafkapy' has no attribute {name!r}")
