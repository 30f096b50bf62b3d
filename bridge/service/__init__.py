"""The bridge service: ZeroMQ for Blender sessions (docs/protocol.md)."""

from .server import BridgeServer, serve

__all__ = ["BridgeServer", "serve"]
