from .request import AlterPartitionRequest
from .response import AlterPartitionResponse

__all__ = (
    "AlterPartitionRequest",
    "AlterPartitionResponse",
)
