"""The I/O shell: sockets, the event loop, timers. Everything below it is plain objects."""

from .broker import BrokerServer
from .supervisor import Supervisor

__all__ = ["BrokerServer", "Supervisor"]
