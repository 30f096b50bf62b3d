"""The bridge protocol: msgpack maps over ZeroMQ DEALER/ROUTER (docs/protocol.md). No bpy here.

Every message is one msgpack map in the first frame, optionally followed by one raw data frame (file
chunks). Requests carry ``v`` (protocol version), ``id``, ``op``, ``args`` and ``deadline_ms`` (how long the
sender will wait, counted from sending); replies carry the request's ``id`` and ``ok`` with ``result`` or
``error`` = {code, message}; events carry ``event`` and ``data``.
"""

from __future__ import annotations

import itertools
from typing import Any

import msgpack

PROTOCOL_VERSION = 1
MAX_CONTROL_BYTES = 1 << 20        # a control frame larger than this is refused (and dropped by libzmq above MAX_MESSAGE)
MAX_MESSAGE_BYTES = 8 << 20        # ZMQ_MAXMSGSIZE on the server: the largest frame a peer may send
DEFAULT_DEADLINE_MS = 10_000
INT_MIN, INT_MAX = -(1 << 63), (1 << 63) - 1  # integer arguments must fit SQLite's (and off_t's) 64 bits

# Error codes (docs/protocol.md lists when each is used).
BAD_REQUEST = "bad_request"
UNSUPPORTED_VERSION = "unsupported_version"
UNKNOWN_OP = "unknown_op"
NOT_FOUND = "not_found"
FORBIDDEN = "forbidden"
UNAVAILABLE = "unavailable"
TIMEOUT = "timeout"
CANCELLED = "cancelled"
CONFLICT = "conflict"
INTERNAL = "internal"

OPS = ("hello", "ping", "search", "recent", "stats", "show", "probe", "scan", "cancel", "jobs", "fetch", "credit",
       "abort", "thumbnail", "push", "sessions")
EVENTS = ("job.progress", "job.done", "fetch.chunk", "fetch.done", "fetch.error", "shots", "bye")


class ProtocolError(Exception):
    """A message that breaks the protocol; ``code`` is one of the error codes above."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class RemoteError(Exception):
    """An error reply from the other side."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


_ids = itertools.count(1)


def next_id() -> int:
    return next(_ids)


def encode(msg: dict[str, Any]) -> bytes:
    """A message as msgpack; ValueError naming the problem when something in it cannot be sent (a Path, a
    set, an integer beyond 64 bits), so a caller's mistake never reaches an IO thread as another exception."""
    try:
        return msgpack.packb(msg, use_bin_type=True, datetime=False)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"cannot send this message: {exc} (use str, int, float, bool, bytes, list, dict)") from None


def decode(frame: bytes, max_bytes: int | None = MAX_CONTROL_BYTES) -> dict[str, Any]:
    """One control frame to a map; ProtocolError for anything else (never another exception type).

    ``max_bytes`` guards the bridge against huge requests; clients pass None, because the bridge's own
    replies and events (a 1000-result search, 500 pushed shots with their probes) can be larger than that."""
    if max_bytes is not None and len(frame) > max_bytes:
        raise ProtocolError(BAD_REQUEST, f"control frame of {len(frame)} bytes (at most {max_bytes})")
    try:
        msg = msgpack.unpackb(frame, raw=False, strict_map_key=False, use_list=True)
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, ValueError, TypeError, UnicodeDecodeError,
            OverflowError) as exc:
        raise ProtocolError(BAD_REQUEST, f"not a msgpack map ({type(exc).__name__})") from None
    except Exception as exc:  # msgpack raises a few more on hostile input; none may escape
        raise ProtocolError(BAD_REQUEST, f"undecodable frame ({type(exc).__name__})") from None
    if not isinstance(msg, dict):
        raise ProtocolError(BAD_REQUEST, "a message must be a map")
    return msg


def check_request(msg: dict[str, Any]) -> tuple[Any, str, dict[str, Any], int | None]:
    """(id, op, args, deadline_ms) of a request, or ProtocolError naming what is wrong."""
    rid = msg.get("id")
    if not isinstance(rid, int | str) or isinstance(rid, bool) or (isinstance(rid, str) and len(rid) > 64):
        raise ProtocolError(BAD_REQUEST, "'id' must be an integer or a short string")
    v = msg.get("v")
    if v != PROTOCOL_VERSION:
        raise ProtocolError(UNSUPPORTED_VERSION, f"protocol version {v!r} not supported (this bridge speaks "
                                                 f"{PROTOCOL_VERSION})")
    op = msg.get("op")
    if not isinstance(op, str):
        raise ProtocolError(BAD_REQUEST, "'op' must be a string")
    if op not in OPS:
        raise ProtocolError(UNKNOWN_OP, f"unknown op {op[:40]!r}")
    args = msg.get("args", {})
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ProtocolError(BAD_REQUEST, "'args' must be a map")
    deadline = msg.get("deadline_ms")
    if deadline is not None and (not isinstance(deadline, int) or isinstance(deadline, bool) or deadline <= 0):
        raise ProtocolError(BAD_REQUEST, "'deadline_ms' must be a positive integer")
    return rid, op, args, deadline


def request(op: str, args: dict[str, Any] | None = None, *, rid: Any = None,
            deadline_ms: int | None = DEFAULT_DEADLINE_MS) -> dict[str, Any]:
    msg: dict[str, Any] = {"v": PROTOCOL_VERSION, "id": next_id() if rid is None else rid, "op": op,
                           "args": args or {}}
    if deadline_ms is not None:
        msg["deadline_ms"] = int(deadline_ms)
    return msg


def ok(rid: Any, result: Any) -> dict[str, Any]:
    return {"v": PROTOCOL_VERSION, "id": rid, "ok": True, "result": result}


def error(rid: Any, code: str, message: str) -> dict[str, Any]:
    return {"v": PROTOCOL_VERSION, "id": rid, "ok": False, "error": {"code": code, "message": message}}


def event(name: str, data: Any = None, **extra: Any) -> dict[str, Any]:
    return {"v": PROTOCOL_VERSION, "event": name, "data": data, **extra}


def arg(args: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any = ..., *,
        required: bool = False) -> Any:
    """A typed argument, or ProtocolError(bad_request) naming it."""
    if name not in args or args[name] is None:
        if required or default is ...:
            raise ProtocolError(BAD_REQUEST, f"missing argument '{name}'")
        return default
    value = args[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise ProtocolError(BAD_REQUEST, f"argument '{name}' has the wrong type")
    if not isinstance(value, kinds):
        raise ProtocolError(BAD_REQUEST, f"argument '{name}' has the wrong type")
    if isinstance(value, int) and not isinstance(value, bool) and not INT_MIN <= value <= INT_MAX:
        # ids, offsets and counts go to SQLite and the OS as 64-bit integers
        raise ProtocolError(BAD_REQUEST, f"argument '{name}' is out of range")
    return value
