"""kafkapy: a Kafka wire-protocol-compatible broker in Python."""

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
