"""`mediaidx serve`: the ZeroMQ bridge between the catalog and Blender sessions (docs/protocol.md).

One thread owns the ROUTER socket and does everything quick: decoding, validation, catalog queries,
session bookkeeping, pushing shots, streaming file chunks under credit. Slow work (probes, thumbnails,
scans) runs on worker threads with their own catalog connections and hands its replies and events back
through a queue that wakes the loop. The loop never touches the files it serves: a mount that hangs (an NFS
hard mount, a dead SMB share) would freeze every client. Path checks, opens and stats run on file-operation
threads capped per storage (fileops.py), and the bytes are read ahead by a thread per transfer, within the
client's credit (streaming.py); same-host fetches move their bytes over the data channel (datachannel.py), on
threads of their own. A malformed or oversized message gets an error
reply or is dropped; nothing a peer sends can stop the loop.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import queue
import stat
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xxhash
import zmq

from blender_mediaidx.core import protocol as P

from ..catalog import search as search_mod
from ..errors import MediaIdxError, NotFoundError, RootUnavailableError, UsageError
from ..indexer import MediaIndexer
from ..scan import ScanEvent
from ..storage import is_remote
from .datachannel import ChannelJob, DataChannel, kinds
from .fileops import FileOps
from .rootpolicy import RootPolicy
from .security import Forbidden, Keys, check_path_text, contained, endpoint_is_local, remote_contained
from .streaming import LocalSource

log = logging.getLogger(__name__)

SESSION_TTL_S = 30.0
TRANSFER_IDLE_S = 120.0
MAX_CHUNK = 4 << 20
MAX_WINDOW = 64
# Chunk buffers one client connection may hold (each transfer always gets one, so every transfer moves): chunks
# a client does not read stay in ZeroMQ's queue, in these buffers, and a peer that opens many fetches and never
# reads them would otherwise grow the bridge by up to MAX_WINDOW chunks per fetch, without bound.
PEER_BUFFER_BYTES = 256 << 20
# Fetches one client connection may have open at once (each holds a file, a reader thread and its buffers): a peer
# that opens fetches and never reads them is refused beyond this (`unavailable`) instead of growing the bridge.
MAX_FETCHES_PER_PEER = 32
# Fetches beyond MAX_FETCHES_PER_PEER wait on the bridge (a push of many shots sends them all at once) and start
# as earlier ones finish; a waiting fetch is a small dict, and a connection may have this many waiting.
MAX_WAITING_FETCHES_PER_PEER = 2000
MAX_WAITING_FETCHES = 8000  # over every connection: each holds only the few small fields a fetch takes
SEARCH_LIMIT_MAX = 1000
COUNT_CAP = 10_000  # interactive totals stop counting here ("10,000+")


@dataclass
class Session:
    identity: bytes
    name: str
    kind: str
    info: dict[str, Any]
    connected_at: float
    last_seen: float

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "connected_at": self.connected_at,
                "last_seen": self.last_seen, **{k: v for k, v in self.info.items() if k in ("pid", "blender", "host")}}


@dataclass
class OutTransfer:
    tid: int
    identity: bytes
    size: int
    offset: int
    chunk: int
    credit: int
    hasher: Any
    # Where the bytes come from, read ahead on a thread of its own (streaming.py): a LocalSource or a
    # RemoteSource; None when the client already has the whole file (only fetch.done with the hash is owed).
    source: Any = None
    last_activity: float = field(default_factory=time.monotonic)
    # Reused read buffers, each with the tracker of the send that still uses it: no allocation (and no
    # page faults) per chunk, and ZeroMQ sends straight from them without copying.
    buffers: list[tuple[bytearray, Any]] = field(default_factory=list)

    def free_buffer(self, may_grow: bool = True) -> bytearray | None:
        for i, (buf, tracker) in enumerate(self.buffers):
            if tracker is None or tracker.done:
                self.buffers[i] = (buf, None)
                return buf
        if may_grow and len(self.buffers) < self.credit + 2 and len(self.buffers) < MAX_WINDOW + 2:
            buf = bytearray(self.chunk)
            self.buffers.append((buf, None))
            return buf
        return None

    def can_take_buffer(self, may_grow: bool = True) -> bool:
        """Whether `free_buffer` would have one now."""
        return (any(tracker is None or tracker.done for _, tracker in self.buffers)
                or (may_grow and len(self.buffers) < min(self.credit + 2, MAX_WINDOW + 2)))

    def lend(self, buf: bytearray, tracker: Any) -> None:
        for i, (b, _) in enumerate(self.buffers):
            if b is buf:
                self.buffers[i] = (b, tracker)
                return


@dataclass
class Job:
    id: int
    kind: str
    identity: bytes
    cancel: threading.Event
    state: str = "running"
    progress: dict[str, Any] = field(default_factory=dict)
    result: Any = None
    last_event: float = 0.0
    roots: list[str] = field(default_factory=list)
    options: dict[str, bool] = field(default_factory=dict)
    session: str | None = None        # the hello name of the client that started it (None: no hello)
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    error: str | None = None
    version: int = 0                  # bumped on every change, so other threads can poll cheaply

    def public(self) -> dict[str, Any]:
        return {"job": self.id, "kind": self.kind, "state": self.state, "progress": self.progress}

    def snapshot(self) -> dict[str, Any]:
        """A copy for other threads (the web service): nothing in it is shared with the job thread."""
        return {"id": self.id, "kind": self.kind, "state": self.state, "roots": list(self.roots),
                "options": dict(self.options), "session": self.session,
                "progress": {k: v for k, v in self.progress.items() if k != "finished_at"},
                "started_at": self.started_at, "finished_at": self.finished_at, "error": self.error,
                "summary": self.result, "cancelling": self.state == "running" and self.cancel.is_set(),
                "version": self.version}


def error_reply(rid: Any, exc: BaseException, what: str, *, other: str = P.BAD_REQUEST) -> dict[str, Any]:
    """The error reply for an exception raised while serving a request: one mapping for the loop's handlers
    and the worker threads. ``other`` is the code for any other MediaIdxError; an unexpected exception is a
    bug, logged, and answered as internal."""
    if isinstance(exc, P.ProtocolError):
        return P.error(rid, exc.code, exc.message)
    if isinstance(exc, Forbidden):
        return P.error(rid, P.FORBIDDEN, str(exc))
    if isinstance(exc, NotFoundError | FileNotFoundError):
        return P.error(rid, P.NOT_FOUND, str(exc))
    if isinstance(exc, RootUnavailableError):  # a storage down or refusing us: worth trying again later
        return P.error(rid, P.UNAVAILABLE, str(exc))
    if isinstance(exc, MediaIdxError):
        return P.error(rid, other, str(exc))
    log.error("%s failed", what, exc_info=exc)
    return P.error(rid, P.INTERNAL, f"{type(exc).__name__}: {exc}")


class BridgeServer:
    """Serve one catalog. ``run()`` blocks until ``stop()``; ``bound`` holds the actual endpoint."""

    def __init__(self, catalog: str | os.PathLike[str] | None = None, *, bind: str = "tcp://127.0.0.1:5557",
                 cache_dir: str | os.PathLike[str] | None = None, keys_dir: str | os.PathLike[str] | None = None,
                 workers: int = 2, allow_roots: Iterable[str] = ()) -> None:
        self.catalog = catalog
        # What clients may scan beyond the catalog's roots (`mediaidx serve --allow-root`); shared with the web.
        self.policy = RootPolicy(allow_roots)
        self.cache_dir = cache_dir
        self.bind = bind
        self.keys = Keys(Path(keys_dir)) if keys_dir else None
        self.local = endpoint_is_local(bind)
        if not self.local and (self.keys is None or not self.keys.exist()):
            raise UsageError(
                f"refusing to listen on {bind} without authentication: create keys with `mediaidx keys` and pass "
                "--keys DIR (only clients whose public key is in DIR/authorized get in), or bind to 127.0.0.1")
        self.ix = MediaIndexer(catalog, cache_dir=cache_dir)
        self.bound: str | None = None
        self.sessions: dict[bytes, Session] = {}
        self.transfers: dict[int, OutTransfer] = {}
        self.jobs: dict[int, Job] = {}
        self._next_tid = 1
        self._next_job = 1
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._results: queue.Queue[tuple[bytes, dict[str, Any], bytes | None]] = queue.Queue()
        self._calls: queue.Queue[tuple[Callable[[], Any], Future[Any]]] = queue.Queue()  # run on the loop
        self._jobs_lock = threading.Lock()  # guards self.jobs and job fields for snapshots from other threads
        self._id_lock = threading.Lock()
        # Set by an in-process companion (the web service): the description of a scan it runs, or None.
        self.external_scan: Callable[[], str | None] | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="mediaidx-worker")
        # Checking and opening the files clients name (fetch, scan roots): daemon threads capped per storage
        # (fileops.py), so calls stuck on a mount that hangs hold up neither the loop, nor the workers that probe
        # and make thumbnails, nor the other storages, nor the process's exit.
        self.fileops = FileOps()
        self._opening: dict[bytes, int] = {}  # fetches being prepared per client connection
        self._waiting_fetches: dict[bytes, collections.deque[tuple[Any, dict[str, Any]]]] = {}  # loop thread only
        self._opening_lock = threading.Lock()
        self._local = threading.local()
        self.stats = {"requests": 0, "bad": 0}
        self.data = DataChannel(self._post)  # the same-host data channel (datachannel.py)
        self._broken_channels: set[str] = set()  # data channels whose listener cannot be opened here
        self._handlers: dict[str, Callable[[bytes, Any, dict[str, Any]], Any]] = {
            "hello": self._hello, "ping": self._ping, "search": self._search, "recent": self._recent,
            "stats": self._stats, "show": self._show, "sessions": self._sessions, "push": self._push,
            "jobs": self._jobs, "cancel": self._cancel, "fetch": self._fetch, "credit": self._credit,
            "abort": self._abort, "probe": self._probe, "thumbnail": self._thumbnail, "scan": self._scan,
        }

    # -- lifecycle -------------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def wait_ready(self, timeout: float = 10) -> str:
        if not self._ready.wait(timeout):
            raise MediaIdxError("bridge did not start")
        return self.bound or self.bind

    def run(self, on_ready: Callable[[str], None] | None = None) -> None:
        ctx = zmq.Context.instance()
        auth = None
        sock = ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)   # errors instead of silent drops to vanished peers
        sock.setsockopt(zmq.MAXMSGSIZE, P.MAX_MESSAGE_BYTES)  # larger frames: the peer is disconnected
        sock.setsockopt(zmq.SNDHWM, 10_000)
        sock.setsockopt(zmq.RCVHWM, 10_000)
        try:
            if self.keys is not None and self.keys.exist():
                from zmq.auth.thread import ThreadAuthenticator

                auth = ThreadAuthenticator(ctx)
                auth.start()
                auth.configure_curve(domain="*", location=str(self.keys.authorized))
                pub, sec = self.keys.load_server()
                sock.curve_server = True
                sock.curve_publickey = pub
                sock.curve_secretkey = sec
            try:
                sock.bind(self.bind)
            except zmq.ZMQError as exc:
                raise UsageError(f"cannot listen on {self.bind}: {exc}") from None
            self.bound = sock.getsockopt_string(zmq.LAST_ENDPOINT)
            self._ready.set()
            if on_ready:
                on_ready(self.bound)
            self._loop(sock)
        finally:
            self._ready.set()
            for job in self.jobs.values():
                job.cancel.set()
            while True:  # callers waiting on `call_in_loop` get an answer now, not at their timeout
                try:
                    _fn, fut = self._calls.get_nowait()
                except queue.Empty:
                    break
                if fut.set_running_or_notify_cancel():
                    fut.set_exception(MediaIdxError("the bridge stopped"))
            self._pool.shutdown(wait=True, cancel_futures=True)
            self.fileops.close()  # those waiting are refused; one stuck on a dead mount is a daemon thread
            for t in list(self.transfers.values()):
                self._close_transfer(t)
            self.data.close()
            with contextlib.suppress(zmq.ZMQError):
                sock.close(0)
            if auth is not None:
                auth.stop()
            self.ix.close()

    def _loop(self, sock: Any) -> None:
        self._loop_sock = sock  # for replies composed in `call_in_loop` work (loop thread only)
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        last_sweep = time.monotonic()
        while not self._stop.is_set():
            waiting = [t for t in self.transfers.values() if t.credit > 0 and (t.source is None or t.source.ready())]
            # Transfers whose buffers are all still queued in ZeroMQ (a client that does not read) cannot move;
            # ZeroMQ does not wake this poll when it frees them, so look again shortly rather than spin a core.
            held = self._held_buffers() if waiting else {}
            busy = any(t.can_take_buffer(_may_grow(t, held)) for t in waiting)
            for item, _ in poller.poll(0 if busy else 2 if waiting else 200):
                if item == self._wake_r:
                    with contextlib.suppress(BlockingIOError, OSError):
                        os.read(self._wake_r, 4096)
                    continue
                for _ in range(1000):  # bounded, so transfers and results still get their turn
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._on_message(sock, frames)
            self._send_results(sock)
            self._run_calls()
            self.fileops.expire()
            self._start_waiting_fetches(sock)
            self._stream(sock)
            if time.monotonic() - last_sweep > 5:
                last_sweep = time.monotonic()
                self._sweep()

    # -- messages --------------------------------------------------------------------------------------
    def _on_message(self, sock: Any, frames: list[bytes]) -> None:
        self.stats["requests"] += 1
        identity = frames[0]
        if len(frames) < 2:
            self.stats["bad"] += 1
            return
        try:
            msg = P.decode(frames[1])
        except P.ProtocolError as exc:
            self.stats["bad"] += 1
            self._send(sock, identity, P.error(None, exc.code, exc.message))
            return
        try:
            rid, op, args, deadline = P.check_request(msg)
        except P.ProtocolError as exc:
            self.stats["bad"] += 1
            rid = msg.get("id") if isinstance(msg.get("id"), int | str) else None
            self._send(sock, identity, P.error(rid, exc.code, exc.message))
            return
        session = self.sessions.get(identity)
        if session is not None:
            session.last_seen = time.time()
        started = time.monotonic()
        try:
            result = self._handlers[op](identity, rid, args)
        except Exception as exc:  # a handler bug answers with an error too; the loop goes on
            self._send(sock, identity, error_reply(rid, exc, f"op {op}"))
            return
        if result is _NO_REPLY or op in ("credit", "abort"):
            return
        if deadline is not None and (time.monotonic() - started) * 1000 > deadline:
            return  # the caller has given up; do not answer late
        self._send(sock, identity, P.ok(rid, result))

    def _send(self, sock: Any, identity: bytes, msg: dict[str, Any], data: bytes | memoryview | None = None) -> bool:
        try:
            body = P.encode(msg)
        except ValueError as exc:  # a result that cannot be sent is a bug: the caller hears so, the loop goes on
            log.error("cannot send a reply: %s", exc)
            body = P.encode(P.error(msg.get("id"), P.INTERNAL, str(exc)))
            data = None
        frames: list[Any] = [identity, body] if data is None else [identity, body, data]
        try:
            sock.send_multipart(frames, zmq.NOBLOCK, copy=data is None)
            return True
        except zmq.ZMQError as exc:  # EHOSTUNREACH (peer gone) or EAGAIN (peer not reading)
            log.info("could not send to %r: %s", identity, exc)
            return False

    def _send_results(self, sock: Any) -> None:
        while True:
            try:
                identity, msg, data = self._results.get_nowait()
            except queue.Empty:
                return
            self._send(sock, identity, msg, data)

    def _run_calls(self) -> None:
        """Work handed over by other threads (`call_in_loop`), run here so it sees the loop's state."""
        while True:
            try:
                fn, fut = self._calls.get_nowait()
            except queue.Empty:
                return
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except BaseException as exc:  # handed back to the caller's thread
                fut.set_exception(exc)

    def _post(self, identity: bytes, msg: dict[str, Any]) -> None:
        """From any thread: queue a message for the loop to send."""
        self._results.put((identity, msg, None))
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _sweep(self) -> None:
        now = time.time()
        for identity, s in list(self.sessions.items()):
            if now - s.last_seen > SESSION_TTL_S:
                del self.sessions[identity]
        self.data.sweep()
        mono = time.monotonic()
        for t in list(self.transfers.values()):
            # A source hashing a resumed client's part, or in a read of slow storage, is not idle.
            last = max(t.last_activity, t.source.active_at() if t.source is not None else 0.0)
            if mono - last > TRANSFER_IDLE_S:
                # Said to the client: one waiting for a resume's first chunk has no timeout of its own.
                self._send(self._loop_sock, t.identity, P.event("fetch.error", {
                    "transfer": t.tid, "code": P.UNAVAILABLE,
                    "message": f"the transfer was idle for {TRANSFER_IDLE_S:.0f} s; fetch again to resume"}))
                self._close_transfer(t)
        with self._jobs_lock:
            for job_id, job in list(self.jobs.items()):
                if job.state != "running" and time.time() - (job.finished_at or time.time()) > 3600:
                    del self.jobs[job_id]

    # -- per-thread catalog access ---------------------------------------------------------------------
    def _worker_ix(self) -> MediaIndexer:
        ix = getattr(self._local, "ix", None)
        if ix is None:
            ix = self._local.ix = MediaIndexer(self.catalog, cache_dir=self.cache_dir)
        return ix

    def _roots(self) -> list[str]:
        return [r["url"] for r in self.ix.roots()]

    # -- for in-process callers on other threads (the web service) ------------------------------------------
    def session_list(self) -> list[dict[str, Any]]:
        """The connected sessions; safe from any thread (a snapshot of the loop's dict)."""
        return [s.public() for s in sorted(list(self.sessions.values()), key=lambda s: s.name)]

    def deliver_shots(self, to: str, shots: list[dict[str, Any]], sender: str = "web") -> dict[str, Any]:
        """Send shots already resolved by the caller ({mode, asset with probe}) to a session, from any thread:
        the loop sends the event, as for the `push` op."""
        target = next((s for s in list(self.sessions.values()) if s.name == to), None)
        if target is None:
            known = ", ".join(sorted(s.name for s in list(self.sessions.values()))) or "none"
            raise NotFoundError(f"no Blender session named {to!r} (connected: {known})")
        msg = P.event("shots", {"shots": shots, "from": sender})
        if self.call_in_loop(lambda: self._deliver_now(target, msg)) == "busy":
            raise MediaIdxError(f"Blender session {to!r} is not reading its messages")
        return {"delivered": len(shots), "to": target.name}

    def _deliver_now(self, target: Session, msg: dict[str, Any]) -> str:
        """Loop thread: send ``msg`` to a session now rather than queue it, so that a session whose Blender
        has quit (listed until SESSION_TTL_S) is refused by ROUTER_MANDATORY and the pusher hears so instead
        of "delivered". "sent", or "busy" (connected, thousands of messages behind); NotFoundError if gone."""
        try:
            self._loop_sock.send_multipart([target.identity, P.encode(msg)], zmq.NOBLOCK)
            return "sent"
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EHOSTUNREACH:
                return "busy"
        if self.sessions.get(target.identity) is target:
            del self.sessions[target.identity]
        raise NotFoundError(f"Blender session {target.name!r} has disconnected")

    def new_job_id(self) -> int:
        """One id space for every job of the process (the web service's too), from any thread."""
        with self._id_lock:
            self._next_job += 1
            return self._next_job - 1

    def job_snapshots(self) -> list[dict[str, Any]]:
        """The bridge's jobs, newest first, as copies (`Job.snapshot`); safe from any thread."""
        with self._jobs_lock:
            return [j.snapshot() for j in sorted(self.jobs.values(), key=lambda j: -j.id)]

    def job_snapshot(self, job_id: int) -> dict[str, Any] | None:
        """One job's copy, or None; cheap enough to poll (its ``version`` says whether anything changed)."""
        with self._jobs_lock:
            job = self.jobs.get(job_id)
            return job.snapshot() if job is not None else None

    def running_scan(self) -> dict[str, Any] | None:
        """The bridge's running scan job, if any (a snapshot)."""
        with self._jobs_lock:
            job = next((j for j in self.jobs.values() if j.kind == "scan" and j.state == "running"), None)
            return job.snapshot() if job is not None else None

    def call_in_loop(self, fn: Callable[[], Any], timeout: float = 10) -> Any:
        """Run ``fn`` on the loop thread and return its result: state the loop owns is changed there only."""
        if self._stop.is_set() or not self._ready.is_set():
            raise MediaIdxError("the bridge is not running")
        fut: Future[Any] = Future()
        self._calls.put((fn, fut))
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        try:
            return fut.result(timeout)
        except TimeoutError:
            fut.cancel()
            raise MediaIdxError("the bridge did not answer in time") from None

    def cancel_job(self, job_id: int) -> dict[str, Any]:
        """Cancel a bridge job from another thread, through the loop and the `cancel` op's own code."""
        return self.call_in_loop(lambda: self._cancel_job(job_id))

    # -- ops: sessions -----------------------------------------------------------------------------------
    def _hello(self, identity: bytes, rid: Any, args: dict[str, Any]) -> dict[str, Any]:
        name = P.arg(args, "name", str, required=True)
        if not 0 < len(name) <= 64:
            raise P.ProtocolError(P.BAD_REQUEST, "session name must be 1 to 64 characters")
        kind = P.arg(args, "kind", str, "blender")[:32]
        info = {k: v for k, v in args.items() if k in ("pid", "blender", "host") and isinstance(v, int | str)}
        for other, s in list(self.sessions.items()):  # a restarted Blender takes over its name
            if s.name == name and other != identity:
                del self.sessions[other]
        now = time.time()
        old = self.sessions.get(identity)
        self.sessions[identity] = Session(identity, name, kind, info, old.connected_at if old else now, now)
        from .. import __version__

        return {"session": name, "bridge": __version__, "protocol": P.PROTOCOL_VERSION,
                "roots": self._roots(), "local": self.local}

    def _ping(self, identity: bytes, rid: Any, args: dict[str, Any]) -> dict[str, Any]:
        if identity not in self.sessions and "name" in args:
            raise P.ProtocolError(P.NOT_FOUND, "unknown session: say hello again")
        return {"time": time.time()}

    def _sessions(self, identity: bytes, rid: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
        return [s.public() for s in sorted(self.sessions.values(), key=lambda s: s.name)]

    def _push(self, identity: bytes, rid: Any, args: dict[str, Any]) -> dict[str, Any]:
        to = P.arg(args, "to", str, required=True)
        shots = P.arg(args, "shots", list, required=True)
        if not shots or len(shots) > 500:
            raise P.ProtocolError(P.BAD_REQUEST, "push 1 to 500 shots")
        target = next((s for s in self.sessions.values() if s.name == to), None)
        if target is None:
            known = ", ".join(sorted(s.name for s in self.sessions.values())) or "none"
            raise NotFoundError(f"no Blender session named {to!r} (connected: {known})")
        out = []
        for shot in shots:
            if not isinstance(shot, dict):
                raise P.ProtocolError(P.BAD_REQUEST, "each shot is a map with an 'asset'")
            asset_id = P.arg(shot, "asset", int, required=True)
            mode = P.arg(shot, "mode", str, "clip")
            if mode not in ("clip", "camera-bg", "strip", "plane"):
                raise P.ProtocolError(P.BAD_REQUEST, f"unknown import mode {mode!r}")
            out.append({"mode": mode, "asset": self._asset_dict(asset_id)})
        if P.arg(args, "dry_run", bool, False):  # everything checked as for a real push; nothing sent
            return {"dry_run": True, "would_deliver": len(out), "to": target.name,
                    "shots": [{"asset": s["asset"]["id"], "path": s["asset"].get("path"), "mode": s["mode"]}
                              for s in out]}
        sender = self.sessions.get(identity)
        sock_msg = P.event("shots", {"shots": out, "from": sender.name if sender else "mediaidx"})
        # Sent now, not queued: a session whose Blender has quit (it is listed until SESSION_TTL_S) is refused by
        # ROUTER_MANDATORY, and the pusher hears so instead of "delivered".
        if self._deliver_now(target, sock_msg) == "busy":
            raise P.ProtocolError(P.UNAVAILABLE, f"Blender session {to!r} is not reading its messages")
        return {"delivered": len(out), "to": target.name}

    # -- ops: catalog ------------------------------------------------------------------------------------
    def _search(self, identity: bytes, rid: Any, args: dict[str, Any]) -> dict[str, Any]:
        query = P.arg(args, "query", str, "")
        filters = _checked_filters(P.arg(args, "filters", dict, {}))
        limit = min(max(P.arg(args, "limit", int, 50), 1), SEARCH_LIMIT_MAX)
        offset = max(P.arg(args, "offset", int, 0), 0)
        try:
            flt = search_mod.SearchFilters.from_kwargs(**filters, limit=limit, offset=offset)
        except TypeError:
            raise P.ProtocolError(P.BAD_REQUEST, "bad filters") from None
        conn = self.ix._read_db().conn
        results = search_mod.search(conn, query or None, flt, self.ix.thumbs_dir)
        total = search_mod.count(conn, query or None, flt, cap=COUNT_CAP + 1) if args.get("count", True) else None
        return {"total": min(total, COUNT_CAP) if total is not None else None,
                "total_exact": total is not None and total <= COUNT_CAP, "offset": offset,
                "results": [_public_asset(a) for a in results]}

    def _recent(self, identity: bytes, rid: Any, args: dict[str, Any]) -> dict[str, Any]:
        n = min(max(P.arg(args, "n", int, 20), 1), SEARCH_LIMIT_MAX)
        return {"results": [_public_asset(a) for a in self.ix.get_recent(n, kind=P.arg(args, "kind", str, None))]}

    def _stats(self, identity: bytes, rid: Any, args: dict[str, Any]) -> dict[str, Any]:
        return self.ix.stats().to_dict()

    def _show(self, identity: bytes, rid: Any, args: dict[str, Any]) -> dict[str, Any]:
        return self._asset_dict(P.arg(args, "asset", int, required=True))

    def _asset_dict(self, asset_id: int) -> dict[str, Any]:
        a = search_mod.get_asset(self.ix._read_db().conn, asset_id, self.ix.thumbs_dir)
        d = _public_asset(a)
        d["probe"] = a.probe
        return d

    def _jobs(self, identity: bytes, rid: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
        return [j.public() for j in self.jobs.values()]

    def _cancel(self, identity: bytes, rid: Any, args: dict[str, Any]) -> dict[str, Any]:
        return self._cancel_job(P.arg(args, "job", int, required=True))

    def _cancel_job(self, job_id: int) -> dict[str, Any]:
        """Loop thread only: the `cancel` op, and `cancel_job` from the web service."""
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFoundError("no such job")
        with self._jobs_lock:
            job.cancel.set()
            job.version += 1
        return {"job": job.id, "state": "cancelling" if job.state == "running" else job.state}

    # -- ops on worker threads -----------------------------------------------------------------------------
    def _in_worker(self, identity: bytes, rid: Any, fn: Callable[[MediaIndexer], Any]) -> object:
        """``fn(ix)`` on a worker; its result is the reply (none when it returns _NO_REPLY: it handed on)."""
        def run() -> None:
            try:
                result = fn(self._worker_ix())
                if result is _NO_REPLY:
                    return
                msg = P.ok(rid, result)
            except Exception as exc:
                msg = error_reply(rid, exc, "worker op")
            self._post(identity, msg)

        self._pool.submit(run)
        return _NO_REPLY

    def _checked_in_worker(self, identity: bytes, rid: Any, key: str, check: Callable[[], Any],
                           fn: Callable[[MediaIndexer, Any], Any], what: str) -> object:
        """``check()`` (path checks that may hang on a storage) on a file-op thread keyed by ``key`` like a
        fetch, then ``fn(ix, checked)`` on a worker: a dead mount holds up its own root's calls, never the two
        workers every probe and thumbnail shares. One reply. From any thread."""
        def fail(exc: BaseException) -> None:
            self._post(identity, error_reply(rid, exc, what, other=P.UNAVAILABLE))

        def work(checked: Any) -> None:
            try:
                msg = P.ok(rid, fn(self._worker_ix(), checked))
            except Exception as exc:
                msg = error_reply(rid, exc, what)
            self._post(identity, msg)

        def run() -> None:
            try:
                checked = check()
            except Exception as exc:
                fail(exc)
                return
            try:
                self._pool.submit(work, checked)
            except Exception as exc:  # the bridge is stopping
                fail(exc)

        self.fileops.submit(key, run, fail)
        return _NO_REPLY

    def _probe(self, identity: bytes, rid: Any, args: dict[str, Any]) -> object:
        if "asset" in args:
            asset_id = P.arg(args, "asset", int, required=True)
            return self._in_worker(identity, rid, lambda ix: ix.get(asset_id).probe)
        wanted = P.arg(args, "path", str, required=True)
        if "://" in wanted:  # a file on a remote root: probed by ranged reads through its storage
            from .streaming import probe_remote

            root, rel = remote_contained(wanted, self._roots())
            return self._in_worker(identity, rid, lambda ix: probe_remote(root, rel))
        roots = self._roots()
        check_path_text(wanted)

        def check() -> bytes:  # on a file-op thread keyed by its root: realpath and stat may hang
            path = contained(wanted, roots)
            try:
                regular = stat.S_ISREG(os.stat(path).st_mode)
            except FileNotFoundError:
                raise NotFoundError("the file is not there") from None
            except OSError as exc:
                raise Forbidden(f"cannot read the file: {exc.strerror}") from None
            if not regular:  # a named pipe would hold a worker forever, a folder is no media
                raise Forbidden("not a regular file: only files can be probed")
            return path

        return self._checked_in_worker(identity, rid, _storage_key(wanted, roots), check,
                                       lambda ix, path: ix.probe(os.fsdecode(path)), "probe")

    def _thumbnail(self, identity: bytes, rid: Any, args: dict[str, Any]) -> object:
        asset_id = P.arg(args, "asset", int, required=True)

        roots = self._roots()
        from ..thumbs.ondemand import cached_poster, checked_local_file, make_poster

        def reply(path: Path) -> dict[str, Any]:
            return {"asset": asset_id, "format": path.suffix.lstrip("."), "data": path.read_bytes()}

        def make(ix: MediaIndexer) -> object:  # on a worker: the cache only
            hero = ix.hero_image(asset_id)  # a hero image (scan --analyze) is shown instead of the poster frame
            if hero is not None:
                return {"asset": asset_id, "format": "jpg", "data": hero.read_bytes()}
            cached = cached_poster(ix, asset_id)
            if cached is not None:
                return reply(cached)
            url, rel = search_mod.native_path(ix._read_db().conn, asset_id)
            if is_remote(url):
                return reply(make_poster(ix, asset_id))
            full = os.fsencode(url).rstrip(b"/") + b"/" + rel
            # the file's checks on a file-op thread keyed by its root (checked against the roots like a fetch),
            # then made on a worker from the real path checked
            return self._checked_in_worker(identity, rid, url, lambda: checked_local_file(full, roots),
                                           lambda ix2, real: reply(make_poster(ix2, asset_id, real)), "thumbnail")

        return self._in_worker(identity, rid, make)

    def _scan(self, identity: bytes, rid: Any, args: dict[str, Any]) -> object:
        roots = P.arg(args, "roots", list, None) or self._roots()
        if not roots or not all(isinstance(r, str) for r in roots):
            raise P.ProtocolError(P.BAD_REQUEST, "'roots' must be a list of folders")
        opts = {k: bool(args[k]) for k in ("probe", "thumbs", "dry_run", "retry_failed", "analyze") if k in args}
        registered = self._roots()
        # On a file-op thread: the check resolves symlinks of the roots and the allowed folders, which waits as
        # long as a mount that hangs. Forbidden before anything starts, dry runs included.
        key = _storage_key(roots[0], registered) if len(roots) == 1 else ", ".join(sorted(roots))
        return self._off_loop(identity, rid, key, lambda: self.policy.check_scan(roots, registered),
                              lambda _: self._start_scan(identity, roots, opts), None, "scan")

    def _off_loop(self, identity: bytes, rid: Any, key: Any, prepare: Callable[[], Any],
                  register: Callable[[Any], Any], release: Callable[[Any], None] | None, what: str,
                  done: Callable[[], None] | None = None) -> object:
        """Run ``prepare()`` (checks, open, stat: what may hang on a storage) on a file-op thread keyed by
        ``key`` (fileops.py), then ``register(prepared)`` on the loop, which returns the reply's result: so the
        reply always precedes a transfer's first chunk or a job's first event. Exactly one reply goes out: the
        loop claims the request before it registers (an error there is answered from the loop, and what was
        prepared released off it), and a prepare that failed, or a loop that did not take it in time, is
        answered from the thread. ``release(prepared)`` frees what ``register`` did not take (an fd);
        ``done()`` runs (on any thread) once the request is answered or abandoned."""
        lock = threading.Lock()
        state = {"claimed": False, "abandoned": False}

        def on_loop(prepared: Any) -> None:
            with lock:
                if state["abandoned"]:
                    return
                state["claimed"] = True
            if done is not None:
                done()
            try:
                result = register(prepared)
            except Exception as exc:
                if release is not None:
                    try:  # never on the loop: a close can hang on a dead mount too
                        threading.Thread(target=release, args=(prepared,), name="mediaidx-release",
                                         daemon=True).start()
                    except Exception:  # no thread to be had (the error above may be that): close it here
                        with contextlib.suppress(Exception):
                            release(prepared)
                self._send(self._loop_sock, identity, error_reply(rid, exc, what, other=P.UNAVAILABLE))
                return
            self._send(self._loop_sock, identity, P.ok(rid, result))

        def fail(exc: BaseException, prepared: Any = None) -> None:  # any thread
            with lock:
                if state["claimed"] or state["abandoned"]:
                    return
                state["abandoned"] = True
            if prepared is not None and release is not None:
                with contextlib.suppress(Exception):
                    release(prepared)
            if done is not None:
                done()
            self._post(identity, error_reply(rid, exc, what, other=P.UNAVAILABLE))

        def run() -> None:
            prepared = None
            try:
                prepared = prepare()
                self.call_in_loop(lambda: on_loop(prepared), timeout=30)
            except Exception as exc:
                fail(exc, prepared)

        self.fileops.submit(key, run, fail)
        return _NO_REPLY

    def _start_scan(self, identity: bytes, roots: list[str], opts: dict[str, bool]) -> dict[str, Any]:
        """Loop thread: start the scan job unless one runs; its id is the reply (sent before its first event:
        events go out through the results queue, after this call's reply)."""
        running = next((j for j in self.jobs.values() if j.kind == "scan" and j.state == "running"), None)
        if running is not None:
            raise P.ProtocolError(P.CONFLICT, f"a scan is already running (job {running.id})")
        other = self.external_scan() if self.external_scan is not None else None
        if other:
            raise P.ProtocolError(P.CONFLICT, f"a scan is already running ({other})")
        sender = self.sessions.get(identity)
        job = Job(self.new_job_id(), "scan", identity, threading.Event(), roots=list(roots), options=opts,
                  session=sender.name if sender else None)
        with self._jobs_lock:
            self.jobs[job.id] = job

        def progress(ev: ScanEvent) -> None:
            with self._jobs_lock:
                job.progress = {"phase": ev.phase, "root": ev.root, "folders": ev.folders, "files": ev.files,
                                "work_done": ev.work_done, "work_total": ev.work_total}
                job.version += 1
            now = time.monotonic()
            if now - job.last_event >= 0.2 or ev.phase == "done":
                job.last_event = now
                self._post(job.identity, P.event("job.progress", {"job": job.id, **job.progress}))

        def run() -> None:
            try:
                with MediaIndexer(self.catalog, cache_dir=self.cache_dir) as ix:
                    summary = ix.scan(*roots, progress=progress, cancel=job.cancel, **opts)
                d = summary.to_dict()
                d["issues"] = d["issues"][:100]
                state = "done" if summary.complete else "cancelled" if job.cancel.is_set() else "incomplete"
                done = {"job": job.id, "state": state, "summary": d}
            except MediaIdxError as exc:
                d, state = None, "failed"
                done = {"job": job.id, "state": "failed", "error": str(exc)}
            except Exception as exc:
                log.exception("scan job failed")
                d, state = None, "failed"
                done = {"job": job.id, "state": "failed", "error": f"{type(exc).__name__}: {exc}"}
            with self._jobs_lock:  # all at once: a snapshot never sees a finished state without its summary
                job.result = d
                job.error = done.get("error")
                job.finished_at = time.time()
                job.progress = {**job.progress, "finished_at": job.finished_at}
                job.state = state
                job.version += 1
            self._post(job.identity, P.event("job.done", done))

        threading.Thread(target=run, name=f"mediaidx-scan-{job.id}", daemon=True).start()
        return {"job": job.id}

    # -- fetch ------------------------------------------------------------------------------------------------
    def _fetch(self, identity: bytes, rid: Any, args: dict[str, Any], *, waited: bool = False) -> object:
        """Answered from a file-op thread: a local file may sit on a mount that hangs, so the loop only looks up
        the catalog; path checks, the open, the stat and every read happen on other threads (`_off_loop`)."""
        chunk = min(max(P.arg(args, "chunk", int, 1 << 20), 4096), MAX_CHUNK)
        window = min(max(P.arg(args, "window", int, 8), 1), MAX_WINDOW)
        offset = P.arg(args, "offset", int, 0)
        waiting = self._waiting_fetches.get(identity)
        if not waited and (waiting or self._fetches_open(identity) >= MAX_FETCHES_PER_PEER):
            if waiting is not None and len(waiting) >= MAX_WAITING_FETCHES_PER_PEER:
                raise P.ProtocolError(P.UNAVAILABLE, f"this connection has {MAX_FETCHES_PER_PEER} fetches open and "
                                                     f"{len(waiting)} waiting (the most the bridge allows): finish "
                                                     "some first")
            if sum(map(len, self._waiting_fetches.values())) >= MAX_WAITING_FETCHES:
                raise P.ProtocolError(P.UNAVAILABLE, "the bridge has too many fetches waiting: try again later")
            # started in order once earlier fetches finish (`_start_waiting_fetches`); its reply comes then. Only
            # the fields a fetch reads are kept, checked: a request may be up to 1 MiB of other keys
            self._waiting_fetches.setdefault(identity, collections.deque()).append((rid, _fetch_fields(args)))
            return _NO_REPLY
        roots = self._roots()
        resolve: Callable[[], bytes]
        if "asset" in args:
            url, rel = search_mod.native_path(self.ix._read_db().conn, P.arg(args, "asset", int, required=True))
            if is_remote(url):
                if url not in roots:
                    raise Forbidden("not inside any of the bridge's roots")
                return self._fetch_remote(identity, rid, url, rel, offset, chunk, window, args.get("expect"),
                                          self._channel_kind(args))
            full = os.fsencode(url).rstrip(b"/") + b"/" + rel
            resolve = lambda: contained(full, roots)  # noqa: E731
            key: Any = url
        elif "thumbnail" in args:
            a = self.ix.get(P.arg(args, "thumbnail", int, required=True))
            if not a.thumb:
                raise NotFoundError("this asset has no thumbnail yet")
            thumb = os.fsencode(a.thumb)
            resolve = lambda: thumb  # noqa: E731
            key = "the thumbnail cache"
        else:
            wanted = P.arg(args, "path", str, required=True)
            if "://" in wanted:
                url, rel = remote_contained(wanted, roots)
                return self._fetch_remote(identity, rid, url, rel, offset, chunk, window, args.get("expect"),
                                          self._channel_kind(args))
            check_path_text(wanted)  # refused here, before it takes a file-op slot
            resolve = lambda: contained(wanted, roots)  # noqa: E731
            key = _storage_key(wanted, roots)
        return self._fetch_local(identity, rid, key, resolve, offset, chunk, window, args.get("expect"),
                                 self._channel_kind(args))

    def _start_waiting_fetches(self, sock: Any) -> None:
        """Loop thread: start the fetches that wait for one of their connection's MAX_FETCHES_PER_PEER, in the
        order they came, as earlier ones finish."""
        for identity, waiting in list(self._waiting_fetches.items()):
            while waiting and self._fetches_open(identity) < MAX_FETCHES_PER_PEER:
                rid, args = waiting.popleft()
                if not waiting:
                    del self._waiting_fetches[identity]
                try:
                    result = self._fetch(identity, rid, args, waited=True)
                except Exception as exc:
                    self._send(sock, identity, error_reply(rid, exc, "op fetch"))
                    continue
                if result is not _NO_REPLY:
                    self._send(sock, identity, P.ok(rid, result))
            if not waiting:
                self._waiting_fetches.pop(identity, None)

    def _fetches_open(self, identity: bytes) -> int:
        """Loop thread: the fetches a client connection has open (transfers, data-channel jobs) or in the
        making."""
        with self._opening_lock:
            opening = self._opening.get(identity, 0)
        return (opening + sum(1 for t in self.transfers.values() if t.identity == identity)
                + self.data.count(identity))

    def _check_fetch_cap(self, identity: bytes) -> None:
        if self._fetches_open(identity) >= MAX_FETCHES_PER_PEER:
            raise P.ProtocolError(P.UNAVAILABLE, f"this connection has {MAX_FETCHES_PER_PEER} fetches open already "
                                                 "(the most the bridge allows): finish or abort some first")

    def _fetch_off_loop(self, identity: bytes, rid: Any, key: Any, prepare: Callable[[], Any],
                        register: Callable[[Any], Any], release: Callable[[Any], None] | None, what: str) -> object:
        """`_off_loop` for a fetch: counted against MAX_FETCHES_PER_PEER while it is being prepared."""
        with self._opening_lock:
            self._opening[identity] = self._opening.get(identity, 0) + 1

        def done() -> None:
            with self._opening_lock:
                left = self._opening.get(identity, 0) - 1
                if left > 0:
                    self._opening[identity] = left
                else:
                    self._opening.pop(identity, None)

        def checked(prepared: Any) -> Any:  # on the loop, after done(): fetches that raced past the first check
            self._check_fetch_cap(identity)
            return register(prepared)

        try:
            return self._off_loop(identity, rid, key, prepare, checked, release, what, done)
        except BaseException:  # not submitted (no thread to be had): answered by the caller, not counted
            done()
            raise

    def _fetch_local(self, identity: bytes, rid: Any, key: Any, resolve: Callable[[], bytes], offset: int,
                     chunk: int, window: int, expect: Any, kind: str | None) -> object:
        """A local file, the way `_fetch_remote` serves a remote one: containment (realpath), open and stat run
        on a file-op thread capped per storage (fileops.py), the bytes (and the hash of a resumed client's part,
        the whole file when it has it all) on a LocalSource or data-channel thread. A mount that hangs (an NFS
        hard mount, a dead SMB share) then holds up that fetch only, never the loop, the other clients and the
        other storages. Whoever holds the fd closes it: the file-op thread until the transfer is registered,
        then the source's thread or the data channel."""

        def prepare() -> tuple[int, os.stat_result]:
            path = resolve()  # Forbidden outside the roots
            try:
                # O_NONBLOCK: opening a named pipe must not wait for a writer
                fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
            except FileNotFoundError:
                raise NotFoundError("the file is not there any more") from None
            except OSError as exc:
                raise Forbidden(f"cannot read the file: {exc.strerror}") from None
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):  # a folder, pipe or device: nothing a fetch can verify
                    raise Forbidden("not a regular file: only files can be fetched")
                os.set_blocking(fd, True)
                _check_range(expect, offset, st.st_size, st.st_mtime_ns)
            except BaseException:
                os.close(fd)
                raise
            return fd, st

        def register(prepared: tuple[int, os.stat_result]) -> dict[str, Any]:  # on the loop thread
            fd, st = prepared
            reply: dict[str, Any] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "offset": offset,
                                     "hash": "xxh3_128", "chunk": chunk, "window": window}
            if kind:  # the same-host data channel: the bytes (and the hashing) leave the loop
                job = ChannelJob(self._new_tid(), identity, st.st_size, offset, st.st_mtime_ns, fd=fd)
                return {"transfer": job.tid, **reply, "channel": self.data.offer(kind, job)}  # owns fd once offered
            t = OutTransfer(self._new_tid(), identity, st.st_size, offset, chunk, window, xxhash.xxh3_128())
            # Last, as it takes the fd: hashes a resumed client's part (all of the file when it has it all), then
            # reads ahead up to the client's credit.
            t.source = LocalSource(fd, st.st_size, offset, chunk, window, t.hasher, self._wake)
            self.transfers[t.tid] = t
            return {"transfer": t.tid, **reply}

        return self._fetch_off_loop(identity, rid, key, prepare, register, _close_fd, "fetch")

    def _wake(self) -> None:
        """From any thread: wake the loop (a read-ahead source has a chunk ready)."""
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _new_tid(self) -> int:
        self._next_tid += 1
        return self._next_tid - 1

    def _channel_kind(self, args: dict[str, Any]) -> str | None:
        """The data channel to offer: the client's first choice that this platform has, and only when the
        bridge listens on a local endpoint (every client is on this host then)."""
        wanted = args.get("channels")
        if not self.local or not isinstance(wanted, list):
            return None
        for kind in wanted:
            if kind not in kinds() or kind in self._broken_channels:
                continue
            try:
                self.data.listen(kind)  # opened on first use
            except OSError as exc:
                # e.g. a TMPDIR too long for a Unix socket's path: every fetch failed `internal`; now the client's
                # next choice, or frames
                self._broken_channels.add(kind)
                log.warning("the %s data channel is unavailable (%s): fetches use the next choice or frames", kind, exc)
                continue
            return kind
        return None

    def _fetch_remote(self, identity: bytes, rid: Any, url: str, rel: bytes, offset: int, chunk: int, window: int,
                      expect: Any, kind: str | None = None) -> object:
        """A file on a remote root. Credentials, connecting and the stat (retries and timeouts included) run on
        a file-op thread keyed by the root, and the bytes (and the hash of a resumed client's part) on a
        RemoteSource or data-channel thread: the loop never waits on the network."""
        from ..storage import StorageUnreachable
        from .streaming import RemoteSource, storage_for_root

        def prepare() -> tuple[Any, Any]:
            try:
                storage = storage_for_root(url)
                st = storage.stat(rel)
            except FileNotFoundError:
                raise NotFoundError("the file is not there any more") from None
            except StorageUnreachable as exc:
                raise P.ProtocolError(P.UNAVAILABLE, f"the storage is not answering ({exc.strerror})") from None
            except PermissionError:
                raise Forbidden("cannot read the file: access denied") from None
            except OSError as exc:
                raise Forbidden(f"cannot read the file: {exc.strerror or exc}") from None
            _check_range(expect, offset, st.size, st.mtime_ns)
            return storage, st

        def register(prepared: tuple[Any, Any]) -> dict[str, Any]:  # on the loop thread
            storage, st = prepared
            reply: dict[str, Any] = {"size": st.size, "mtime_ns": st.mtime_ns, "offset": offset, "hash": "xxh3_128",
                                     "chunk": chunk, "window": window}
            if kind:
                job = ChannelJob(self._new_tid(), identity, st.size, offset, st.mtime_ns, storage=storage, rel=rel)
                return {"transfer": job.tid, **reply, "channel": self.data.offer(kind, job)}
            t = OutTransfer(self._new_tid(), identity, st.size, offset, chunk, window, xxhash.xxh3_128())
            # read-ahead of at most 8 chunks, and no more than the client's credit: memory per transfer stays
            # bounded whatever the window
            t.source = RemoteSource(storage, rel, st.size, offset, chunk, min(window, 8), t.hasher, self._wake,
                                    limit=window)
            self.transfers[t.tid] = t
            return {"transfer": t.tid, **reply}

        return self._fetch_off_loop(identity, rid, url, prepare, register, None, "remote fetch")

    def _credit(self, identity: bytes, rid: Any, args: dict[str, Any]) -> object:
        t = self.transfers.get(P.arg(args, "transfer", int, required=True))
        if t is not None and t.identity == identity:
            t.credit = min(t.credit + max(P.arg(args, "n", int, 1), 0), MAX_WINDOW)
            t.last_activity = time.monotonic()
        return _NO_REPLY

    def _abort(self, identity: bytes, rid: Any, args: dict[str, Any]) -> object:
        tid = P.arg(args, "transfer", int, required=True)
        t = self.transfers.get(tid)
        if t is not None and t.identity == identity:
            self._close_transfer(t)
        self.data.abort(tid, identity)
        return _NO_REPLY

    def _stream(self, sock: Any) -> None:
        """Send what the clients have credit for, a few chunks per transfer per turn (fair, responsive)."""
        held = self._held_buffers()
        for t in list(self.transfers.values()):
            for _ in range(4):
                if t.credit <= 0 or t.tid not in self.transfers:
                    break
                if t.offset >= t.size:
                    self._finish(sock, t)
                    break
                had = len(t.buffers)
                buf = t.free_buffer(may_grow=_may_grow(t, held))
                if buf is None:
                    break  # every buffer is still being sent: next turn
                held[t.identity] += (len(t.buffers) - had) * t.chunk
                try:  # never a read here: a source reads on its own thread (a hung mount stalls only it)
                    got = t.source.read_into(memoryview(buf)[:min(t.chunk, t.size - t.offset)], t.offset)
                    if got is None:
                        break  # still on its way from the file: the source wakes the loop
                    n = got
                except OSError as exc:
                    self._fail_transfer(sock, t, P.UNAVAILABLE, exc.strerror or str(exc))
                    break
                if not n:  # the file shrank under us
                    self._fail_transfer(sock, t, P.CONFLICT, "the file changed during the transfer")
                    break
                data = memoryview(buf)[:n]
                t.hasher.update(data)
                header = P.encode(P.event("fetch.chunk", {"transfer": t.tid, "offset": t.offset}))
                try:
                    tracker = sock.send_multipart([t.identity, header, data], zmq.NOBLOCK, copy=False, track=True)
                except zmq.ZMQError as exc:
                    log.info("transfer %s stopped: %s", t.tid, exc)
                    self._close_transfer(t)  # the client is gone; it resumes with a new fetch
                    break
                t.lend(buf, tracker)
                t.offset += n
                t.credit -= 1
                t.last_activity = time.monotonic()
            if t.tid in self.transfers and t.offset >= t.size and t.credit > 0:
                self._finish(sock, t)
            if t.tid in self.transfers and t.source is not None:
                # Read ahead no more than the client may be sent now (its credit), and once its connection holds
                # PEER_BUFFER_BYTES, one chunk at most: a client that does not read costs its credit, no more.
                over = held.get(t.identity, 0) >= PEER_BUFFER_BYTES
                t.source.set_limit(min(t.credit, 1) if over else t.credit)

    def _fail_transfer(self, sock: Any, t: OutTransfer, code: str, message: str) -> None:
        self._send(sock, t.identity, P.event("fetch.error", {"transfer": t.tid, "code": code, "message": message}))
        self._close_transfer(t)

    def _held_buffers(self) -> dict[bytes, int]:
        """Chunk-buffer bytes per client connection (PEER_BUFFER_BYTES): the loop's and its sources' read-ahead."""
        held: dict[bytes, int] = {}
        for t in self.transfers.values():
            extra = t.source.held_bytes() if t.source is not None else 0
            held[t.identity] = held.get(t.identity, 0) + len(t.buffers) * t.chunk + extra
        return held

    def _finish(self, sock: Any, t: OutTransfer) -> None:
        """Every byte sent: fetch.done with the hash, once the source has hashed the whole file (a resumed
        client's part too: all of it when the client had it all)."""
        if t.source is not None:
            try:
                done = t.source.done()
            except OSError as exc:
                self._fail_transfer(sock, t, P.UNAVAILABLE, exc.strerror or str(exc))
                return
            if done is None:
                self._fail_transfer(sock, t, P.CONFLICT, "the file changed during the transfer")
                return
            if not done:
                return  # still hashing: the source wakes the loop when it is through
        self._send(sock, t.identity, P.event("fetch.done", {"transfer": t.tid, "size": t.size,
                                                            "hash": t.hasher.hexdigest()}))
        self._close_transfer(t)

    def _close_transfer(self, t: OutTransfer) -> None:
        self.transfers.pop(t.tid, None)
        if t.source is not None:
            t.source.close()  # its thread closes the file: a close can hang on a dead mount too


_NO_REPLY = object()


def _fetch_fields(args: dict[str, Any]) -> dict[str, Any]:
    """What a waiting fetch keeps of its request: the fields `_fetch` reads, each checked now (a bad one is the
    same error it would be later) and bounded in size."""
    kept: dict[str, Any] = {}
    for name in ("asset", "thumbnail", "offset", "chunk", "window"):
        if name in args:
            kept[name] = P.arg(args, name, int)
    if "path" in args:
        path = P.arg(args, "path", str)
        if len(path) > 4096:
            raise P.ProtocolError(P.BAD_REQUEST, "path: longer than 4096 characters")
        kept["path"] = path
    expect = args.get("expect")
    if isinstance(expect, dict):
        kept["expect"] = {k: expect[k] for k in ("size", "mtime_ns") if isinstance(expect.get(k), int)}
    channels = args.get("channels")
    if isinstance(channels, list):
        kept["channels"] = [c for c in channels[:4] if isinstance(c, str) and len(c) <= 16]
    return kept


OUTSIDE_ROOTS = "paths outside the catalog roots"


def _storage_key(path: str, roots: list[str]) -> str:
    """The catalog root a path names (by its text: looking at the file system may hang), which fileops.py caps
    as one storage; OUTSIDE_ROOTS, one key for them all, when it is under none (only a symlink into a root
    passes the containment check then): paths under a dead mount outside the roots take 4 threads at most."""
    if "://" in path:
        return path
    norm = os.path.normpath(path)
    best = ""
    for r in roots:
        if is_remote(r):
            continue
        base = os.path.normpath(r)
        if (norm == base or norm.startswith(base.rstrip(os.sep) + os.sep)) and len(base) > len(best):
            best = base
    return best or OUTSIDE_ROOTS


def _check_range(expect: Any, offset: int, size: int, mtime_ns: int) -> None:
    """A resume names the file it has part of (``expect``) and an offset inside it."""
    if isinstance(expect, dict) and (expect.get("size") != size or expect.get("mtime_ns") != mtime_ns):
        raise P.ProtocolError(P.CONFLICT, "the file changed since the partial download; start again")
    if not 0 <= offset <= size:
        raise P.ProtocolError(P.BAD_REQUEST, f"offset {offset} outside the file ({size} bytes)")


def _close_fd(prepared: tuple[int, Any]) -> None:
    with contextlib.suppress(OSError):
        os.close(prepared[0])


def _may_grow(t: OutTransfer, held: dict[bytes, int]) -> bool:
    """Whether ``t`` may allocate another chunk buffer: its first always (every transfer moves), more while its
    client connection holds under PEER_BUFFER_BYTES."""
    return not t.buffers or held.get(t.identity, 0) + t.chunk <= PEER_BUFFER_BYTES

# The types of the `search` filters (SearchFilters): a value of another type is the caller's mistake, answered
# bad_request naming the filter, rather than an internal error or a silently wrong result ("yes" for a bool).
_FILTER_TYPES: dict[str, tuple[type, ...]] = {
    "kind": (str,), "codec": (str,), "resolution": (str,), "min_duration": (int, float),
    "max_duration": (int, float), "has_audio": (bool,), "date_from": (str,), "date_to": (str,), "camera": (str,),
    "tags": (list, str), "min_rating": (int,), "status": (str,), "root": (str,), "sort": (str,),
    "descending": (bool,)}


def _checked_filters(filters: dict[Any, Any]) -> dict[Any, Any]:
    """``filters`` if every known filter has its type (unknown names are refused by SearchFilters)."""
    for name, types in _FILTER_TYPES.items():
        try:
            value = P.arg(filters, name, types, None)
        except P.ProtocolError:
            raise P.ProtocolError(P.BAD_REQUEST, f"filter '{name}' has the wrong type or is out of range") from None
        if name == "tags" and isinstance(value, list) and not all(isinstance(t, str) for t in value):
            raise P.ProtocolError(P.BAD_REQUEST, "filter 'tags' must be a list of strings")
    return filters


def _public_asset(a: Any) -> dict[str, Any]:
    d = a.to_dict()
    d.pop("probe", None)
    return d


def serve(catalog: str | os.PathLike[str] | None = None, *, bind: str = "tcp://127.0.0.1:5557",
          cache_dir: str | os.PathLike[str] | None = None, keys_dir: str | os.PathLike[str] | None = None,
          on_ready: Callable[[str], None] | None = None,
          with_server: Callable[[BridgeServer], Callable[[], None] | None] | None = None,
          allow_roots: Iterable[str] = ()) -> None:
    """Run the bridge in this thread until SIGINT/SIGTERM. ``with_server`` starts companions that share
    the server's state (the HTTP service) and returns how to stop them. ``allow_roots``: folders and URL
    prefixes clients may scan beyond the catalog's roots (rootpolicy.py)."""
    import signal

    server = BridgeServer(catalog, bind=bind, cache_dir=cache_dir, keys_dir=keys_dir, allow_roots=allow_roots)
    stop_companion = with_server(server) if with_server else None
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):  # not the main thread
            previous[sig] = signal.signal(sig, lambda *_: server.stop())
    try:
        server.run(on_ready)
    finally:
        if stop_companion is not None:
            stop_companion()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
