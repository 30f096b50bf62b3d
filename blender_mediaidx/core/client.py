"""The bridge client. No bpy here: Blender, headless scripts, the `mediaidx push` command and tests share it.

One IO thread owns the ZeroMQ DEALER socket (sockets belong to one thread). The caller's thread sends
through a queue and a wake-up pipe, and receives through ``pump()``, which runs reply callbacks and event
handlers on the caller's thread: Blender calls it from a timer (its main thread), headless jobs and tests
from their own loops. Nothing blocks the caller; ``call()`` is the blocking convenience for scripts.

The IO thread also keeps the link alive (a ping every ``heartbeat_s``; no answer for ``dead_after_s``
means disconnected; the first answer after that re-registers the session) and runs file fetches: chunks
arrive under credit-based flow control, are written to ``<dest>.part`` and hashed as they come, and the
file is renamed into place only when its hash matches the bridge's. A broken fetch resumes from the bytes
already on disk. On the same host the bytes come over a plain socket instead (the data channel,
docs/protocol.md), read by a thread of their own; ZeroMQ still carries the control and the hash.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import queue
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

from . import protocol as P

log = logging.getLogger(__name__)

Callback = Callable[[Any], None]
ErrorCallback = Callable[[P.RemoteError], None]

DATA_BUFFER = 1 << 20         # the data channel's receive buffer, reused
DATA_SOCKET_BUFFER = 4 << 20  # the kernel's (SO_RCVBUF): larger batches, fewer wake-ups
DATA_TIMEOUT_S = 30.0         # a bridge that sends nothing for this long: the fetch fails (and can resume)
FETCH_REPLY_TIMEOUT_S = 300.0  # the answer to `fetch` (a resume first hashes the part on the bridge: big plates)
# Fetches this client has open on the bridge at once (the bridge allows 32 per connection); a push of more shots
# waits here and starts as earlier ones end, so its reply timeout starts only when it is sent.
MAX_FETCHES_AT_ONCE = 16
ABANDONED_MAX = 1024          # fetch requests given up on, remembered so that a late reply is aborted


def _hasher() -> Any:
    import xxhash

    return xxhash.xxh3_128()


@dataclass
class Transfer:
    """A file being fetched; its callbacks run in ``pump()``."""

    dest: Path
    source: dict[str, Any]
    chunk_size: int
    window: int
    on_progress: Callable[[Transfer], None] | None = None
    on_done: Callable[[Transfer], None] | None = None
    on_error: Callable[[Transfer, P.RemoteError], None] | None = None
    size: int | None = None
    received: int = 0
    resumed_from: int = 0
    done: bool = False
    error: P.RemoteError | None = None
    transfer_id: int | None = None
    channel: str = "frames"     # how the bytes came: frames (ZeroMQ), or the data channel: unix, tcp
    # IO-thread state (a data-channel thread owns _fh and _hash once it starts)
    _fh: Any = field(default=None, repr=False)
    _hash: Any = field(default=None, repr=False)
    _unacked: int = 0
    _request_id: Any = None
    _last_rx: float = 0.0       # when the bridge last sent anything for it (frames), for the timeouts
    _ctrl: queue.Queue[tuple[str, dict[str, Any]]] | None = field(default=None, repr=False)
    _data_sock: socket.socket | None = field(default=None, repr=False)

    @property
    def part(self) -> Path:
        return self.dest.with_name(self.dest.name + ".part")

    @property
    def meta(self) -> Path:
        return self.dest.with_name(self.dest.name + ".part.json")

    @property
    def finished(self) -> bool:
        return self.done or self.error is not None


class BridgeClient:
    """A connection to a mediaidx bridge. Create, ``start()``, then ``request``/``call``/``fetch`` and ``pump``."""

    def __init__(self, address: str = "tcp://127.0.0.1:5557", *, name: str = "blender", kind: str = "blender",
                 server_public_key: bytes | str | None = None,
                 client_keys: tuple[bytes | str, bytes | str] | None = None,
                 heartbeat_s: float = 2.0, dead_after_s: float = 6.0, info: dict[str, Any] | None = None,
                 data_channel: str | None = None) -> None:
        self.address = address
        # auto: the same-host data channel when the bridge is local; frames: always ZeroMQ; unix / tcp: that one
        self.data_channel = data_channel or os.environ.get("MEDIAIDX_DATA_CHANNEL", "auto")
        # An address can look local and not be (an SSH tunnel, a sandboxed Blender with its own /tmp, a
        # container): when the channel cannot be reached, this client falls back to frames for good.
        self._channel_unreachable = False
        self.name = name
        self.kind = kind
        self.info = info or {}
        self.server_public_key = _key(server_public_key)
        self.client_keys = (_key(client_keys[0]), _key(client_keys[1])) if client_keys else None
        self.heartbeat_s = heartbeat_s
        self.dead_after_s = dead_after_s
        self.state = "disconnected"            # disconnected | connecting | connected
        self.session: dict[str, Any] | None = None
        self.last_error: str | None = None
        self._outbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._pending: dict[Any, tuple[Callback | None, ErrorCallback | None, float]] = {}
        self._handlers: dict[str, list[Callable[[Any, dict[str, Any]], None]]] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._transfers: dict[Any, Transfer] = {}   # by fetch request id, until the bridge answers (IO thread)
        self._fetches_waiting: collections.deque[Transfer] = collections.deque()  # beyond MAX_FETCHES_AT_ONCE
        self._by_tid: dict[int, Transfer] = {}      # by transfer id, while chunks flow (IO thread)
        # Fetch request ids this client stopped waiting for (IO thread): a late reply still opened a transfer on
        # the bridge, which this client then aborts rather than leave it open until the bridge's idle sweep.
        self._abandoned: dict[Any, None] = {}
        self._data_threads: list[threading.Thread] = []
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        os.set_blocking(self._wake_r, False)

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> BridgeClient:
        if self._thread is None:
            self.state = "connecting"
            self._thread = threading.Thread(target=self._io_main, name=f"mediaidx-bridge-{self.name}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Close the link (the bridge forgets this session); safe to call twice."""
        if self._thread is not None:
            self._stop.set()
            self._wake()
            self._thread.join(timeout)
            self._thread = None
        for th in self._data_threads:  # they end once the IO thread has closed their sockets
            th.join(timeout)
        self.state = "disconnected"
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake_r = self._wake_w = -1

    def __enter__(self) -> BridgeClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- caller's thread -----------------------------------------------------------------------------------
    def request(self, op: str, args: dict[str, Any] | None = None, *, on_reply: Callback | None = None,
                on_error: ErrorCallback | None = None, timeout_s: float = 10.0) -> Any:
        """Send a request; ``on_reply(result)`` or ``on_error(RemoteError)`` run later in ``pump()``."""
        msg = P.request(op, args, deadline_ms=int(timeout_s * 1000))
        P.encode(msg)  # ValueError here, in the caller's thread, for arguments that cannot be sent
        self._pending[msg["id"]] = (on_reply, on_error, time.monotonic() + timeout_s)
        self._send("msg", msg)
        return msg["id"]

    def notify(self, op: str, args: dict[str, Any] | None = None) -> None:
        """A message that gets no reply (fetch credit, abort)."""
        msg = P.request(op, args, deadline_ms=None)
        P.encode(msg)  # ValueError in the caller's thread, not in the IO thread
        self._send("msg", msg)

    def call(self, op: str, args: dict[str, Any] | None = None, timeout_s: float = 10.0) -> Any:
        """Blocking request for scripts and headless jobs (pumps other traffic while it waits)."""
        box: dict[str, Any] = {}
        self.request(op, args, on_reply=lambda r: box.setdefault("result", r),
                     on_error=lambda e: box.setdefault("error", e), timeout_s=timeout_s)
        self.wait(lambda: bool(box), timeout_s + 1.0)
        if "error" in box:
            raise box["error"]
        if "result" not in box:
            raise P.RemoteError(P.TIMEOUT, f"no answer to {op!r} within {timeout_s:.0f} s")
        return box["result"]

    def on(self, event: str, handler: Callable[[Any, dict[str, Any]], None]) -> None:
        """Run ``handler(data, message)`` in ``pump()`` for every ``event`` from the bridge."""
        self._handlers.setdefault(event, []).append(handler)

    def fetch(self, dest: str | os.PathLike[str], *, asset: int | None = None, path: str | None = None,
              thumbnail: int | None = None, chunk_size: int = 1 << 20, window: int = 8,
              on_progress: Callable[[Transfer], None] | None = None, on_done: Callable[[Transfer], None] | None = None,
              on_error: Callable[[Transfer, P.RemoteError], None] | None = None) -> Transfer:
        """Fetch a catalogued file (``asset``), a file inside the bridge's roots (``path``) or an asset's
        thumbnail to ``dest``. Resumes from ``<dest>.part`` when one is there."""
        source = {k: v for k, v in (("asset", asset), ("path", path), ("thumbnail", thumbnail)) if v is not None}
        if len(source) != 1:
            raise ValueError("fetch needs exactly one of asset, path, thumbnail")
        P.encode(source)  # ValueError here for a source that cannot be sent (a Path, a 65-bit id)
        t = Transfer(Path(dest), source, chunk_size, window, on_progress, on_done, on_error)
        t.dest.parent.mkdir(parents=True, exist_ok=True)
        self._send("fetch", t)
        return t

    def wait(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Pump until ``predicate()`` holds or the time is up (headless loops, scripts, tests).
        Sleeps on the inbox, so a reply is handled the moment it arrives."""
        end = time.monotonic() + timeout_s
        while True:
            self.pump()
            if predicate():
                return True
            remaining = end - time.monotonic()
            if remaining <= 0:
                return False
            try:
                kind, item = self._inbox.get(timeout=min(remaining, 0.05))
            except queue.Empty:
                continue
            with _logged():
                self._dispatch(kind, item)

    def pump(self, max_items: int = 500, budget_s: float = 0.02) -> int:
        """Apply what arrived: reply callbacks, event handlers, fetch progress. Call on the main thread."""
        end = time.monotonic() + budget_s
        n = 0
        while n < max_items and time.monotonic() < end:
            try:
                kind, item = self._inbox.get_nowait()
            except queue.Empty:
                break
            n += 1
            try:
                self._dispatch(kind, item)
            except Exception:  # a bad handler must not stop the pump (or Blender's timer)
                log.exception("bridge callback failed")
        now = time.monotonic()
        for rid, (_, on_error, deadline) in list(self._pending.items()):
            if now > deadline:
                del self._pending[rid]
                if on_error:
                    with _logged():
                        on_error(P.RemoteError(P.TIMEOUT, "no answer from the bridge in time"))
        return n

    def _dispatch(self, kind: str, item: Any) -> None:
        if kind == "reply":
            entry = self._pending.pop(item.get("id"), None)
            if entry is None:
                return  # late reply to a request that already timed out
            on_reply, on_error, _ = entry
            if item.get("ok"):
                if on_reply:
                    on_reply(item.get("result"))
            else:
                err = item.get("error") or {}
                if on_error:
                    on_error(P.RemoteError(str(err.get("code", P.INTERNAL)), str(err.get("message", ""))))
        elif kind == "event":
            for handler in self._handlers.get(item.get("event"), []):
                handler(item.get("data"), item)
            for handler in self._handlers.get("*", []):
                handler(item.get("data"), item)
        elif kind == "transfer":
            t, what = item
            if what == "progress" and t.on_progress:
                t.on_progress(t)
            elif what == "done" and t.on_done:
                t.on_done(t)
            elif what == "error" and t.on_error:
                t.on_error(t, t.error)  # type: ignore[arg-type]
        elif kind == "state":
            for handler in self._handlers.get("state", []):
                handler(item, {"event": "state"})

    def _send(self, kind: str, item: Any) -> None:
        self._outbox.put((kind, item))
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    # -- IO thread -------------------------------------------------------------------------------------
    def _io_main(self) -> None:
        ctx = zmq.Context.instance()
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.IMMEDIATE, 1)          # no queueing towards a bridge that is not there
        sock.setsockopt(zmq.RECONNECT_IVL, 200)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
        sock.setsockopt(zmq.SNDHWM, 1000)
        sock.setsockopt(zmq.RCVHWM, 1000)
        if self.server_public_key:
            pub, sec = self.client_keys or zmq.curve_keypair()
            sock.curve_serverkey = self.server_public_key
            sock.curve_publickey = pub
            sock.curve_secretkey = sec
        transfers, by_tid = self._transfers, self._by_tid
        last_rx = 0.0
        last_ping = 0.0
        last_check = 0.0
        monitor = None
        try:
            monitor = self._monitor(sock)
            sock.connect(self.address)
            poller = zmq.Poller()
            poller.register(sock, zmq.POLLIN)
            poller.register(self._wake_r, zmq.POLLIN)
            if monitor is not None:
                poller.register(monitor, zmq.POLLIN)
            while not self._stop.is_set():
                now = time.monotonic()
                if now - last_ping >= self.heartbeat_s:
                    last_ping = now
                    op = "ping" if self.state == "connected" else "hello"
                    self._raw_send(sock, P.request(op, self._hello_args(), rid=f"_{op}", deadline_ms=None))
                if self.state == "connected" and now - last_rx > self.dead_after_s:
                    self._set_state("disconnected", "no answer from the bridge")
                    self._expire_transfers(sock, transfers, by_tid, now, "the bridge stopped answering")
                if now - last_check >= 0.5:
                    last_check = now
                    self._expire_transfers(sock, transfers, by_tid, now)
                for sock_or_fd, _ in poller.poll(50):
                    if sock_or_fd == self._wake_r:
                        with contextlib.suppress(BlockingIOError, OSError):
                            os.read(self._wake_r, 4096)
                    elif monitor is not None and sock_or_fd == monitor:
                        self._on_monitor(monitor)
                    else:
                        while True:
                            try:
                                frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                            except zmq.Again:
                                break
                            last_rx = time.monotonic()
                            try:
                                self._on_frames(sock, frames, transfers, by_tid)
                            except Exception:  # a malformed message from the bridge must not end this thread
                                log.warning("dropped a malformed message from the bridge", exc_info=True)
                self._drain_outbox(sock, transfers)
        except Exception as exc:  # the IO thread must never die silently
            log.exception("bridge IO thread stopped")
            self._set_state("disconnected", f"{type(exc).__name__}: {exc}")
        finally:
            for t in list(transfers.values()) + list(by_tid.values()):
                if t._ctrl is not None:
                    self._stop_data(t)
                else:
                    self._close_transfer(t)
            if monitor is not None:
                with contextlib.suppress(zmq.ZMQError):
                    sock.disable_monitor()
                monitor.close(0)
            with contextlib.suppress(zmq.ZMQError):
                sock.close(0)

    _HANDSHAKE_ERRORS = {
        "EVENT_HANDSHAKE_FAILED_AUTH": "the bridge refused this client's key (it is not in the bridge's authorized "
                                       "keys: `mediaidx keys --client NAME` there)",
        "EVENT_HANDSHAKE_FAILED_NO_DETAIL": "the secure handshake with the bridge failed: check its server key",
        "EVENT_HANDSHAKE_FAILED_PROTOCOL": "the secure handshake with the bridge failed: it does not use CURVE keys "
                                           "(a local bridge needs no server key)",
    }
    _NEEDS_KEYS = ("the bridge requires CURVE keys: give this client its server key (and a client key that the "
                   "bridge authorized)")

    def _monitor(self, sock: Any) -> Any:
        """A monitor of the CURVE handshake, so a refused or wrong key shows in ``last_error`` instead of an
        endless "connecting"; None where this libzmq cannot tell."""
        events = {getattr(zmq, name, 0): text for name, text in self._HANDSHAKE_ERRORS.items()}
        events.pop(0, None)
        if not events:
            return None
        self._monitor_events = events
        try:
            return sock.get_monitor_socket(sum(events))
        except zmq.ZMQError:
            return None

    def _on_monitor(self, monitor: Any) -> None:
        from zmq.utils.monitor import recv_monitor_message

        while True:
            try:
                event = recv_monitor_message(monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            text = self._monitor_events.get(event.get("event"))
            if event.get("event") == getattr(zmq, "EVENT_HANDSHAKE_FAILED_PROTOCOL", None) and not self.server_public_key:
                text = self._NEEDS_KEYS
            if text and self.state != "connected" and text != self.last_error:
                log.warning("%s: %s", self.address, text)
                self.last_error = text

    def _hello_args(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "pid": os.getpid(), **self.info}

    def _set_state(self, state: str, reason: str | None = None) -> None:
        if state != self.state:
            self.state = state
            self.last_error = reason
            self._inbox.put(("state", state))

    def _raw_send(self, sock: Any, msg: dict[str, Any], data: bytes | None = None) -> bool:
        try:
            frames = [P.encode(msg)] if data is None else [P.encode(msg), data]
        except ValueError as exc:  # e.g. unsendable values in ``info``: say so, keep the IO thread alive
            log.error("cannot send %r to the bridge: %s", msg.get("op"), exc)
            return False
        try:
            sock.send_multipart(frames, zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False

    def _drain_outbox(self, sock: Any, transfers: dict[Any, Transfer]) -> None:
        while True:
            try:
                kind, item = self._outbox.get_nowait()
            except queue.Empty:
                # at most MAX_FETCHES_AT_ONCE open (replies pending, transfers), in the order asked
                while self._fetches_waiting and len(transfers) + len(self._by_tid) < MAX_FETCHES_AT_ONCE:
                    self._start_fetch(sock, self._fetches_waiting.popleft(), transfers)
                return
            if kind == "fetch":
                self._fetches_waiting.append(item)
            elif kind == "refetch":  # the data channel was unreachable: the same fetch again, as frames
                t = item
                self._by_tid.pop(t.transfer_id, None)
                if t.transfer_id is not None:
                    self._raw_send(sock, P.request("abort", {"transfer": t.transfer_id}, deadline_ms=None))
                t._ctrl, t._data_sock, t.transfer_id, t.channel = None, None, None, "frames"
                self._start_fetch(sock, t, transfers)
            elif not self._raw_send(sock, item) and "id" in item:
                # pump() drops it if nobody waits for an answer (credit, abort)
                self._inbox.put(("reply", P.error(item["id"], P.UNAVAILABLE, "the bridge is not connected")))

    def _on_frames(self, sock: Any, frames: list[Any], transfers: dict[Any, Transfer],
                   by_tid: dict[int, Transfer]) -> None:
        try:
            msg = P.decode(frames[0].bytes, max_bytes=None)  # large replies are legitimate (1000 results)
        except P.ProtocolError as exc:
            log.warning("dropped a bad message from the bridge: %s", exc)
            return
        rid = msg.get("id")
        if not isinstance(rid, int | str):
            rid = None
        if rid in ("_hello", "_ping"):
            if msg.get("ok"):
                if rid == "_hello":
                    self.session = msg.get("result")
                self._set_state("connected")
            elif rid == "_ping":  # the bridge restarted and forgot us: register again
                # ... and its transfers are gone with it: those fetches fail now (and resume) rather than wait
                self._expire_transfers(sock, transfers, by_tid, time.monotonic(), "the bridge restarted")
                self._raw_send(sock, P.request("hello", self._hello_args(), rid="_hello", deadline_ms=None))
            else:  # hello refused (a name over 64 characters...): say why, rather than "connecting" forever
                err = msg.get("error")
                self.last_error = f"the bridge refused this session: {err.get('message') if isinstance(err, dict) else err}"
            return
        if rid is not None and rid in self._abandoned:  # the answer to a fetch given up on: it is not wanted
            del self._abandoned[rid]
            result = msg.get("result") if msg.get("ok") else None
            tid = result.get("transfer") if isinstance(result, dict) else None
            if isinstance(tid, int) and not isinstance(tid, bool):
                self._raw_send(sock, P.request("abort", {"transfer": tid}, deadline_ms=None))
            return
        if rid is not None and rid in transfers:
            t = transfers.pop(rid)
            try:
                self._fetch_reply(sock, t, msg, by_tid)
            except Exception as exc:  # a malformed reply, or the destination cannot be written
                self._fetch_broke(sock, t, exc, by_tid)
            return
        name = msg.get("event")
        if name in ("fetch.chunk", "fetch.done", "fetch.error"):
            data = msg.get("data")
            data = data if isinstance(data, dict) else {}
            tid = data.get("transfer")
            t = by_tid.get(tid) if isinstance(tid, int) else None
            if t is not None:
                try:
                    self._fetch_event(sock, t, name, data, frames[1] if len(frames) > 1 else None, by_tid)
                except Exception as exc:  # a full disk, a malformed event: this fetch fails, the others go on
                    self._fetch_broke(sock, t, exc, by_tid)
            return
        if name is not None:
            self._inbox.put(("event", msg))
        elif rid is not None:
            self._inbox.put(("reply", msg))

    # -- fetch (IO thread) -----------------------------------------------------------------------------------
    def _fetch_broke(self, sock: Any, t: Transfer, exc: Exception, by_tid: dict[int, Transfer]) -> None:
        """A fetch that cannot go on (the part cannot be written, the bridge sent nonsense): it fails with a
        clear error, the bridge stops sending, the part stays for a resume."""
        if isinstance(exc, OSError):
            err = P.RemoteError(P.INTERNAL, f"cannot write {exc.filename or t.part}: {exc.strerror or exc}")
        else:
            log.warning("malformed fetch message from the bridge", exc_info=exc)
            err = P.RemoteError(P.INTERNAL, f"malformed fetch message from the bridge ({type(exc).__name__})")
        if isinstance(t.transfer_id, int):
            self._raw_send(sock, P.request("abort", {"transfer": t.transfer_id}, deadline_ms=None))
        if t._ctrl is not None:  # its thread ends it, with this error
            by_tid.pop(t.transfer_id, None)
            t._ctrl.put(("fetch.error", {"code": err.code, "message": err.message}))
            if t._data_sock is not None:
                with contextlib.suppress(OSError):
                    t._data_sock.shutdown(socket.SHUT_RDWR)
            return
        if not isinstance(t.transfer_id, int):
            t.transfer_id = None
        self._fail(t, err, by_tid)

    def _expire_transfers(self, sock: Any, transfers: dict[Any, Transfer], by_tid: dict[int, Transfer], now: float,
                          reason: str | None = None) -> None:
        """Fetches over frames that the bridge stopped feeding fail (keeping the part for a resume) instead of
        waiting forever: all of them when ``reason`` says the bridge is gone or restarted, else those silent too
        long (`_silence_allowed`; data-channel fetches time out on their own thread)."""
        for rid, t in list(transfers.items()):
            limit = self._silence_allowed(t)
            if reason or (limit is not None and now - t._last_rx > limit):
                del transfers[rid]
                self._abandon(rid)
                # unavailable: the bridge is gone; timeout: it is there (it answers pings) but did not answer this
                self._fail(t, P.RemoteError(P.UNAVAILABLE if reason else P.TIMEOUT,
                                            f"{reason or 'no answer to the fetch'}; fetch again to resume"))
        for t in list(by_tid.values()):
            if t._ctrl is not None:  # the data channel: its thread ends it (a hung bridge holds its socket open)
                if reason:
                    by_tid.pop(t.transfer_id, None)
                    t._ctrl.put(("fetch.error", {"code": P.UNAVAILABLE, "message": f"{reason}; fetch again to resume"}))
                    if t._data_sock is not None:
                        with contextlib.suppress(OSError):
                            t._data_sock.shutdown(socket.SHUT_RDWR)
                continue
            limit = self._silence_allowed(t)
            if reason or (limit is not None and now - t._last_rx > limit):
                # Aborted on the bridge even when it seems gone: one whose loop was only stalled comes back, and
                # would otherwise hold the transfer until its idle sweep. (A restarted one ignores it.)
                self._raw_send(sock, P.request("abort", {"transfer": t.transfer_id}, deadline_ms=None))
                self._fail(t, P.RemoteError(
                    P.UNAVAILABLE, f"{reason or f'no data from the bridge for {limit:.0f} s'}; "
                                   "fetch again to resume"), by_tid)

    def _abandon(self, rid: Any) -> None:
        """Remember a fetch request this client no longer waits for, so that a late reply gets its transfer
        aborted (`_on_frames`); the oldest are forgotten past ABANDONED_MAX."""
        self._abandoned[rid] = None
        while len(self._abandoned) > ABANDONED_MAX:
            del self._abandoned[next(iter(self._abandoned))]

    def _silence_allowed(self, t: Transfer) -> float | None:
        """How long a frames fetch may hear nothing. Once chunks flow, DATA_TIMEOUT_S. Before the first one,
        FETCH_REPLY_TIMEOUT_S (the bridge opens the file, maybe on a remote root, on a busy worker); no limit
        for a resume, whose first chunk comes only after the bridge hashed the part the client has (minutes for
        a big plate on a slow share): the heartbeat still ends it if the bridge dies or restarts. While the
        bridge is not answering pings, ``dead_after_s``."""
        if self.state != "connected":
            return self.dead_after_s
        if t.received > t.resumed_from:
            return DATA_TIMEOUT_S
        return None if t.resumed_from else FETCH_REPLY_TIMEOUT_S

    def _start_fetch(self, sock: Any, t: Transfer, transfers: dict[Any, Transfer]) -> None:
        args: dict[str, Any] = {**t.source, "chunk": t.chunk_size, "window": t.window, "offset": 0}
        if channels := self._channels():
            args["channels"] = channels
        h = _hasher()
        if t.part.exists() and t.meta.exists():
            try:
                meta = json.loads(t.meta.read_text())
                if meta.get("source") == t.source:
                    with open(t.part, "rb") as fh:
                        while chunk := fh.read(4 << 20):
                            h.update(chunk)
                    args["offset"] = t.part.stat().st_size
                    args["expect"] = {"size": meta["size"], "mtime_ns": meta["mtime_ns"]}
            except (OSError, ValueError, KeyError):
                h = _hasher()
                args["offset"] = 0
        if args["offset"] == 0:
            h = _hasher()
        t._hash = h
        t.resumed_from = t.received = args["offset"]
        msg = P.request("fetch", args, deadline_ms=int(FETCH_REPLY_TIMEOUT_S * 1000))
        t._request_id = msg["id"]
        t._last_rx = time.monotonic()
        transfers[msg["id"]] = t
        if not self._raw_send(sock, msg):
            transfers.pop(msg["id"], None)
            self._fail(t, P.RemoteError(P.UNAVAILABLE, "the bridge is not connected"))

    def _fetch_reply(self, sock: Any, t: Transfer, msg: dict[str, Any], by_tid: dict[int, Transfer]) -> None:
        if not msg.get("ok"):
            err = msg.get("error") or {}
            if err.get("code") == P.CONFLICT and t.resumed_from:
                # The file changed since the partial download: start again from zero.
                for p in (t.part, t.meta):
                    with contextlib.suppress(FileNotFoundError):
                        p.unlink()
                self._start_fetch(sock, t, self._transfers)  # answered under a fresh request id
                return
            self._fail(t, P.RemoteError(str(err.get("code")), str(err.get("message"))))
            return
        r = msg.get("result")
        if not (isinstance(r, dict) and all(isinstance(r.get(k), int) and not isinstance(r.get(k), bool)
                                            for k in ("transfer", "size", "mtime_ns"))):
            raise ValueError("a fetch reply without transfer, size and mtime_ns")
        t.transfer_id, t.size = r["transfer"], r["size"]
        t.meta.write_text(json.dumps({"source": t.source, "size": r["size"], "mtime_ns": r["mtime_ns"]}))
        t._fh = open(t.part, "r+b" if t.resumed_from else "wb")  # noqa: SIM115 - closed by _close_transfer
        t._fh.seek(t.resumed_from)
        t._fh.truncate()
        by_tid[t.transfer_id] = t
        t._last_rx = time.monotonic()
        offer = r.get("channel")
        if isinstance(offer, dict):
            t.channel = str(offer.get("kind"))
            t._ctrl = queue.Queue()
            th = threading.Thread(target=self._receive, args=(t, offer), name="mediaidx-data", daemon=True)
            self._data_threads = [x for x in self._data_threads if x.is_alive()] + [th]
            th.start()
        self._inbox.put(("transfer", (t, "progress")))

    def _fetch_event(self, sock: Any, t: Transfer, name: str, data: dict[str, Any], frame: Any,
                     by_tid: dict[int, Transfer]) -> None:
        if t._ctrl is not None:  # the data channel: its thread finishes the transfer
            if name in ("fetch.done", "fetch.error"):
                by_tid.pop(t.transfer_id, None)
                t._ctrl.put((name, data))
            return
        t._last_rx = time.monotonic()
        if name == "fetch.chunk" and frame is not None:
            buf = frame.buffer
            if data.get("offset") != t.received:
                self._fail(t, P.RemoteError(P.INTERNAL, "chunks arrived out of order"), by_tid)
                return
            t._fh.write(buf)
            t._hash.update(buf)
            t.received += len(buf)
            t._unacked += 1
            if t._unacked >= max(1, t.window // 2):
                self._raw_send(sock, P.request("credit", {"transfer": t.transfer_id, "n": t._unacked},
                                               deadline_ms=None))
                t._unacked = 0
            self._inbox.put(("transfer", (t, "progress")))
        elif name == "fetch.done":
            by_tid.pop(t.transfer_id, None)
            self._complete(t, data)
        elif name == "fetch.error":
            self._fail(t, P.RemoteError(str(data.get("code", P.INTERNAL)), str(data.get("message", ""))), by_tid)

    def _complete(self, t: Transfer, data: dict[str, Any]) -> None:
        """All bytes are in: rename into place if the hash matches the bridge's, else drop the part."""
        t._fh.flush()
        os.fsync(t._fh.fileno())
        t._fh.close()
        t._fh = None
        digest = t._hash.hexdigest()
        if t.received != t.size or digest != data.get("hash"):
            for p in (t.part, t.meta):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
            self._fail(t, P.RemoteError(P.CONFLICT, "verification failed: the received file does not match"))
            return
        os.replace(t.part, t.dest)
        with contextlib.suppress(FileNotFoundError):
            t.meta.unlink()
        t.done = True
        self._inbox.put(("transfer", (t, "done")))

    # -- the same-host data channel (one thread per transfer) -----------------------------------------------
    def _channels(self) -> list[str]:
        """The data channels to ask for: none unless the bridge is on this host (a local endpoint)."""
        if self.data_channel == "frames" or self._channel_unreachable or not _is_local(self.address):
            return []
        if self.data_channel in ("unix", "tcp"):
            return [self.data_channel]
        return (["unix"] if hasattr(socket, "AF_UNIX") else []) + ["tcp"]

    def _receive(self, t: Transfer, offer: dict[str, Any]) -> None:
        """Data-channel thread: connect, hand over the ticket, write and hash what comes, then finish when
        the bridge's fetch.done (or error) arrives over ZeroMQ; the IO thread forwards it through ``_ctrl``."""
        assert t._ctrl is not None and t.size is not None
        problem = ""
        connected = False
        try:
            unix = offer.get("kind") == "unix"
            sock = socket.socket(socket.AF_UNIX if unix else socket.AF_INET, socket.SOCK_STREAM)
            t._data_sock = sock
            with sock:
                # A resume's first byte comes only after the bridge hashed the part this client already has
                # (minutes for a big plate on a slow remote root); from then on, DATA_TIMEOUT_S. A bridge that
                # dies closes this socket, and stop() shuts it down, so the wait still ends.
                sock.settimeout(DATA_TIMEOUT_S)
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, DATA_SOCKET_BUFFER)
                address = offer["address"]
                sock.connect(address if unix else (str(address[0]), int(address[1])))
                connected = True
                sock.sendall(offer["ticket"])
                if t.resumed_from and t.received < t.size:
                    sock.settimeout(None)
                buf = memoryview(bytearray(DATA_BUFFER))
                last = time.monotonic()
                while t.received < t.size:
                    n = sock.recv_into(buf, min(len(buf), t.size - t.received))
                    if not n:
                        break
                    if t.received == t.resumed_from:
                        sock.settimeout(DATA_TIMEOUT_S)
                    t._hash.update(buf[:n])
                    t._fh.write(buf[:n])
                    t.received += n
                    if time.monotonic() - last > 0.05:  # progress for the UI, not per read
                        last = time.monotonic()
                        self._inbox.put(("transfer", (t, "progress")))
        except (OSError, KeyError, TypeError, ValueError) as exc:
            problem = f"data channel: {getattr(exc, 'strerror', None) or exc}"
        if not connected and self.data_channel == "auto" and not self._stop.is_set():
            log.info("same-host data channel unreachable (%s); fetching over ZeroMQ frames", problem)
            self._channel_unreachable = True
            self._close_transfer(t)
            self._send("refetch", t)
            return
        try:  # a short or broken stream: the bridge's error (or its silence) says why
            name, data = t._ctrl.get(timeout=DATA_TIMEOUT_S if t.received == t.size else 5.0)
        except queue.Empty:
            name, data = "fetch.error", {"code": P.UNAVAILABLE, "message": problem or "the data connection broke"}
        if name == "closed":  # the client is stopping: keep the part for a resume
            self._close_transfer(t)
        elif name == "fetch.done" and t.received == t.size:
            try:
                self._complete(t, data)
            except OSError as exc:
                self._fail(t, P.RemoteError(P.INTERNAL, f"cannot write {t.dest}: {exc}"))
        elif name == "fetch.done":
            self._fail(t, P.RemoteError(P.UNAVAILABLE, problem or "the data connection closed early"))
        else:
            self._fail(t, P.RemoteError(str(data.get("code", P.INTERNAL)), str(data.get("message", ""))))

    @staticmethod
    def _stop_data(t: Transfer) -> None:
        """From the IO thread: end a data-channel thread (it closes the part file itself)."""
        if t._ctrl is not None:
            t._ctrl.put(("closed", {}))
        if t._data_sock is not None:
            with contextlib.suppress(OSError):
                t._data_sock.shutdown(socket.SHUT_RDWR)

    def _fail(self, t: Transfer, err: P.RemoteError, by_tid: dict[int, Transfer] | None = None) -> None:
        if by_tid is not None and t.transfer_id is not None:
            by_tid.pop(t.transfer_id, None)
        self._close_transfer(t)
        t.error = err
        self._inbox.put(("transfer", (t, "error")))

    @staticmethod
    def _close_transfer(t: Transfer) -> None:
        if t._fh is not None:
            with contextlib.suppress(OSError):
                t._fh.close()
            t._fh = None


@contextlib.contextmanager
def _logged() -> Any:
    try:
        yield
    except Exception:
        log.exception("bridge callback failed")


def _is_local(address: str) -> bool:
    """ipc, inproc, or tcp to a loopback address: the bridge runs on this host."""
    m = re.fullmatch(r"(\w+)://(.+)", address)
    if not m:
        return False
    scheme, host = m.group(1).lower(), m.group(2).rsplit(":", 1)[0].strip("[]")
    return scheme in ("ipc", "inproc") or (scheme == "tcp" and (host in ("localhost", "::1")
                                                                  or host.startswith("127.")))


def _key(k: bytes | str | None) -> bytes | None:
    if k is None:
        return None
    return k.encode("ascii") if isinstance(k, str) else k
