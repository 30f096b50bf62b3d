"""Bridge-side uses of the shared client (blender_mediaidx.core.client): `mediaidx push`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from blender_mediaidx.core import protocol as P
from blender_mediaidx.core.client import BridgeClient

from ..errors import MediaIdxError, UsageError
from .security import load_client_keys


def server_key_text(value: str | None) -> str | None:
    """A Z85 public key given inline or as a .key file."""
    if value is None:
        return None
    p = Path(value)
    if p.is_file():
        import zmq.auth

        return zmq.auth.load_certificate(p)[0].decode("ascii")
    if len(value) != 40:
        raise UsageError("--server-key must be a 40-character Z85 key or a .key file")
    return value


def connect(address: str, *, name: str, server_key: str | None = None, client_key: Path | None = None,
            timeout: float = 10.0) -> BridgeClient:
    keys = load_client_keys(client_key) if client_key else None
    client = BridgeClient(address, name=name, kind="cli", server_public_key=server_key_text(server_key),
                          client_keys=keys, heartbeat_s=0.5)
    client.start()
    if not client.wait(lambda: client.state == "connected", timeout):
        client.stop()
        raise MediaIdxError(f"no bridge answering at {address}" + (f" ({client.last_error})" if client.last_error else ""))
    return client


def push_shots(address: str, to: str, asset_ids: list[int], mode: str, *, server_key: str | None = None,
               client_key: Path | None = None, timeout: float = 10.0, dry_run: bool = False) -> dict[str, Any]:
    """Send shots to a Blender session through the bridge; ``dry_run`` has the bridge check the session, the
    assets and the mode exactly as for a real push and answer what it would send, sending nothing."""
    client = connect(address, name=f"mediaidx-push-{id(object())}", server_key=server_key, client_key=client_key,
                     timeout=timeout)
    try:
        args: dict[str, Any] = {"to": to, "shots": [{"asset": i, "mode": mode} for i in asset_ids]}
        if dry_run:
            args["dry_run"] = True
        return client.call("push", args, timeout_s=timeout)
    except P.RemoteError as exc:
        raise MediaIdxError(exc.message) from None
    finally:
        client.stop()
