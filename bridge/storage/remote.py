"""Remote roots (S3-compatible buckets, SMB shares, SFTP servers) through fsspec, behind ``Storage``.

What is read, and why it stays cheap:

- Scans list; they never download. Size + mtime (+ the ETag on S3, folded into the ``inode`` slot) decide
  what changed, exactly as for local files, so an unchanged object costs one listing entry: a whole S3
  prefix is one ListObjectsV2 request per 1000 keys, an SMB or SFTP folder one directory query.
- Content (fingerprints, probes, thumbnails) is read by ranged reads through ``RemoteFile``: a seekable
  file object with a block cache and sequential read-ahead, which PyAV reads through ``av.open(fileobj)``.
  It counts the bytes it fetched (``bytes_fetched``), so benchmarks can show a probe reads a few percent.
- Transient errors (dropped connections, timeouts, 5xx) are retried with backoff; when the retries run out
  ``StorageUnreachable`` says so, and the scanner stops cleanly (what was indexed is kept, the next scan
  resumes). Error text never carries credentials: every message goes through ``Credentials.scrub``.
"""

from __future__ import annotations

import errno
import io
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, TypeVar
from urllib.parse import unquote

from ..errors import RootUnavailableError
from ..mediatypes import is_ignored_dir
from .base import Accept, FileStat, FolderError, Known, Listing, Storage, StorageUnreachable, join
from .credentials import Credentials, RemoteURL, is_remote, parse_url, redact, resolve_credentials

log = logging.getLogger(__name__)

T = TypeVar("T")

# Error classes (by name, across botocore/aiohttp/asyncssh/smbprotocol) that mean "try again".
_TRANSIENT_NAMES = {
    "EndpointConnectionError", "ConnectionClosedError", "ReadTimeoutError", "ConnectTimeoutError",
    "HTTPClientError", "ProxyConnectionError", "ResponseStreamingError", "ClientConnectorError",
    "ClientOSError", "ServerDisconnectedError", "ClientPayloadError", "ConnectionLost", "DisconnectError",
    "SMBConnectionClosed", "IncompleteRead", "FSTimeoutError", "ChannelOpenError", "SFTPNoConnection",
    "SFTPConnectionLost",
}
# EBADF: a read on a connection another thread tore down when the server went away (smbprotocol closes the
# shared socket): the connection's fault, not the file's.
_TRANSIENT_ERRNO = {errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED, errno.EPIPE, errno.ETIMEDOUT,
                    errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN, errno.EAGAIN, errno.EBADF}


def is_transient(exc: BaseException) -> bool:
    """A network failure worth retrying (as opposed to 'no such file' or 'access denied')."""
    if isinstance(exc, StorageUnreachable):
        return True
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
        return False
    if isinstance(exc, (ConnectionError, TimeoutError, EOFError)):
        return True
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNO:
        return True
    if any(c.__name__ in _TRANSIENT_NAMES for c in type(exc).__mro__):
        return True
    text = str(exc)
    if any(s in text for s in ("SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout",
                               "Connection reset", "Connection refused", "Connection lost",
                               "Failed to connect", "connection was closed",
                               "Connection timeout of")):  # smbprotocol: no answer to a request in time
        return True
    cause = exc.__cause__ or exc.__context__
    return cause is not None and cause is not exc and is_transient(cause)


def error_text(exc: BaseException) -> str:
    """One line, no traceback, no URL with secrets: the scrubbing happens in the caller."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    line = str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__
    return line[:300]


class RemoteFile(io.RawIOBase):
    """A seekable read-only file over ranged reads, with an LRU block cache and read-ahead.

    ``fetch(start, end)`` returns bytes [start, end). Small reads are served from BLOCK-sized cached
    blocks; reads that continue where the last fetch ended grow the fetch (read-ahead doubles up to
    MAX_AHEAD blocks), so PyAV's 32 KiB sequential reads become a few large requests, while its seeks
    to the index at the end of an MP4 cost one block. Big reads (streaming) bypass the cache.
    """

    BLOCK = 32 * 1024         # what a seek costs (PyAV reads 32 KiB at a time; an audio chunk is a few KB)
    MAX_BLOCKS = 512          # 16 MiB of cache per open file
    MAX_AHEAD = 128           # read-ahead up to 4 MiB
    DIRECT = 4 * BLOCK        # reads at least this big bypass the cache (one request each)

    def __init__(self, fetch: Callable[[int, int], bytes], size: int, name: str = "",
                 on_close: Callable[[], None] | None = None) -> None:
        super().__init__()
        self._fetch = fetch
        self.size = size
        self.name = name
        self._pos = 0
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._on_close = on_close
        self._next_seq = -1       # block index just after the last fetch
        self._run = 0             # fetches in a row that continued the previous one
        self._ahead = 1
        self.bytes_fetched = 0    # what went over the network
        self.requests = 0

    def sequential(self, ahead: int = 8 << 20) -> None:
        """Tune this file for reading all of it in order (video analysis decodes every frame): read-ahead
        grows to ``ahead`` bytes per request instead of 4 MiB, the cache holds four of those, and big reads
        (FFmpeg reads a packet larger than its buffer in one call: a frame of high-rate video) go through
        the read-ahead too instead of costing one request each."""
        self.MAX_AHEAD = max(self.MAX_AHEAD, ahead // self.BLOCK)
        self.MAX_BLOCKS = max(self.MAX_BLOCKS, 4 * self.MAX_AHEAD)
        self.DIRECT = max(self.DIRECT, self.MAX_AHEAD * self.BLOCK)

    # -- io protocol --------------------------------------------------------------------------------------
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self.size + offset
        else:
            raise ValueError(f"bad whence {whence}")
        if pos < 0:
            raise OSError(errno.EINVAL, "negative seek position")
        self._pos = pos
        return pos

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        n = len(data)
        memoryview(b).cast("B")[:n] = data
        return n

    def readall(self) -> bytes:
        return self.read(-1)

    def read(self, n: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        start = self._pos
        end = self.size if n is None or n < 0 else min(self.size, start + n)
        if start >= end:
            return b""
        data = self._get(start, end) if end - start >= self.DIRECT else self._cached(start, end)
        self._pos = start + len(data)
        return data

    def close(self) -> None:
        if not self.closed:
            self._blocks.clear()
            if self._on_close is not None:
                try:
                    self._on_close()
                except Exception as exc:  # closing a dead connection must not mask the real error
                    log.debug("closing remote file: %s", type(exc).__name__)
        super().close()

    # -- cache --------------------------------------------------------------------------------------------
    def _cached(self, start: int, end: int) -> bytes:
        bs = self.BLOCK
        first, last = start // bs, (end - 1) // bs
        missing = [i for i in range(first, last + 1) if i not in self._blocks]
        if missing:
            for i in range(first, last + 1):  # this read's cached blocks must outlive the evictions below
                if i in self._blocks:
                    self._blocks.move_to_end(i)
            lo, hi = missing[0], missing[-1]
            if lo == self._next_seq:
                # Read-ahead starts on the second fetch in a row that continues the last: PyAV reading a
                # short audio window continues once, a decoder walking through frames keeps going.
                self._run += 1
                if self._run >= 2:
                    self._ahead = min(self._ahead * 2, self.MAX_AHEAD)
            else:
                self._run, self._ahead = 0, 1
            hi = max(hi, lo + self._ahead - 1)
            hi = min(hi, (self.size - 1) // bs)
            while hi > lo and hi in self._blocks:
                hi -= 1
            data = self._get(lo * bs, min((hi + 1) * bs, self.size))
            for i in range(lo, hi + 1):
                self._blocks[i] = data[(i - lo) * bs:(i - lo + 1) * bs]
            self._next_seq = hi + 1
            while len(self._blocks) > self.MAX_BLOCKS:
                self._blocks.popitem(last=False)
        parts = []
        for i in range(first, last + 1):
            blk = self._blocks[i]
            self._blocks.move_to_end(i)
            lo = start - i * bs if i == first else 0
            hi = end - i * bs if i == last else bs
            parts.append(blk[lo:hi])
        return b"".join(parts)

    def _get(self, start: int, end: int) -> bytes:
        data = self._fetch(start, end)
        self.requests += 1
        self.bytes_fetched += len(data)
        if len(data) < end - start and start + len(data) < self.size:
            raise OSError(errno.EIO, "short read (the file changed while it was read)")
        return data


class RemoteStorage(Storage):
    """The shared part of the remote backends: retries, error wording, folder-by-folder walking, reading.

    Subclasses implement ``_connect`` (the fsspec filesystem), ``_list_dir`` (one folder: files and
    subfolders) and ``_stat``/``_fetch`` (ranged reads); S3 replaces ``walk`` with a whole-prefix listing.
    """

    RETRIES = 3
    BACKOFF = (0.25, 1.0, 2.5)

    def __init__(self, u: RemoteURL, creds: Credentials | None = None) -> None:
        self.u = u
        self.url = u.url
        self.creds = creds if creds is not None else resolve_credentials(u)
        self._fs: Any = None
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[Any, ...]:
        # Workers (forkserver/spawn) get the resolved options, not a live connection: they connect once.
        return (_restore, (type(self), self.u, self.creds.options))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # -- plumbing -----------------------------------------------------------------------------------------
    @property
    def fs(self) -> Any:
        with self._lock:
            if self._fs is None:
                self._fs = self._connect()
            return self._fs

    def _connect(self) -> Any:
        raise NotImplementedError

    def _reset(self) -> None:
        """Forget the connection after a network error; the next call reconnects."""
        with self._lock:
            self._fs = None

    def _say(self, exc: BaseException) -> str:
        return self.creds.scrub(error_text(exc))

    def io_errors(self) -> tuple[type[BaseException], ...]:
        """What this storage's libraries raise for a server that fails, refuses or sends a reply they cannot
        parse, and for a setup they cannot use. Those are reported (an unreadable folder, an unusable root)
        and the scan goes on; anything else (TypeError, AttributeError, KeyError...) is a bug in this code and
        must fail loudly instead of reading as an unreadable folder. Backends add their libraries' own
        classes; OSError covers fsspec's timeouts (FSTimeoutError is a TimeoutError) and errno-carrying
        library errors, EOFError a stream cut short (asyncio.IncompleteReadError). While a file's content is
        read, an OSError is that file's failure and the others are the root's (analyze: 'unreachable'), which
        is why ``call`` turns a backend's per-file errors into OSError (``_file_error``)."""
        return (OSError, EOFError)

    def _file_error(self, exc: Exception) -> Exception:
        """A library error that is about one file or folder, not the server (an SFTP status reply such as a
        read that failed on the server's disk), as the OSError it means: the scan then fails that file and
        goes on, where the library's own class would read as 'the storage stopped answering' and stop the
        root. Backends say which of their errors these are; anything else is returned unchanged."""
        return exc

    def call(self, fn: Callable[[], T], what: str) -> T:
        """Run ``fn`` with retries on transient errors; StorageUnreachable once they run out."""
        for attempt in range(self.RETRIES):
            try:
                return fn()
            except Exception as exc:  # only sorted here: whatever is not transient is raised again unchanged
                if not is_transient(exc):
                    raise _plain(self._file_error(exc)) from None
                if attempt + 1 >= self.RETRIES:
                    raise StorageUnreachable(errno.EIO, f"{what}: {self._say(exc)} (gave up after "
                                             f"{self.RETRIES} tries)") from None
                log.info("%s: %s; retrying", self.url, self._say(exc))
                time.sleep(self.BACKOFF[min(attempt, len(self.BACKOFF) - 1)])
                self._reset()
        raise AssertionError("unreachable")  # pragma: no cover

    def unavailable(self, exc: BaseException) -> RootUnavailableError:
        """A one-line 'cannot use this root' error naming the root, without secrets."""
        if isinstance(exc, StorageUnreachable):
            reason = f"cannot connect ({exc.strerror})"
        elif isinstance(exc, PermissionError) or _looks_like_auth(exc):
            reason = "access denied: check the credentials (docs/storage.md says where they come from)"
        elif isinstance(exc, (FileNotFoundError, NotADirectoryError)):
            reason = self._not_found_reason()
        else:
            reason = self._say(exc)
        return RootUnavailableError(f"{self.url}: {reason}")

    def _not_found_reason(self) -> str:
        return "no such folder"

    # -- walking, folder by folder (SMB, SFTP) -------------------------------------------------------------
    def _list_dir(self, rel: bytes, accept: Accept) -> tuple[list[FileStat], list[bytes]]:
        raise NotImplementedError

    def list_folder(self, relpath: bytes, accept: Accept) -> Listing | FolderError:
        try:
            files, _ = self.call(lambda: self._list_dir(relpath, accept), "listing")
        except StorageUnreachable as exc:
            return FolderError(relpath, f"connection lost ({exc.strerror})")
        except self.io_errors() as exc:  # the server's failure, not a bug in our code: see walk
            return FolderError(relpath, self._say(exc))
        files.sort(key=lambda f: f.name)
        return Listing(relpath, files)

    def walk(self, accept: Accept, known: Known | None = None) -> Iterator[Listing | FolderError]:
        stack = [b""]
        while stack:
            rel = stack.pop()
            try:
                files, subdirs = self.call(lambda rel=rel: self._list_dir(rel, accept), "listing")
            except StorageUnreachable as exc:
                # The server is gone: report this folder and everything not listed yet, then stop.
                reason = f"connection lost ({exc.strerror})"
                yield FolderError(rel, reason)
                for other in stack:
                    yield FolderError(other, reason)
                return
            except self.io_errors() as exc:
                # The server's failure, or a reply the library cannot parse, costs this folder, not the whole
                # scan. A bug in our code (TypeError, KeyError...) is not caught: it fails the scan loudly.
                yield FolderError(rel, self._say(exc))
                continue
            files.sort(key=lambda f: f.name)
            listing = Listing(rel, files)
            if known is not None and known.get(rel) == listing.signature:
                listing.files = None
            yield listing
            stack.extend(sorted((s for s in subdirs if not is_ignored_dir(s.rpartition(b"/")[2])), reverse=True))

    # -- files ----------------------------------------------------------------------------------------------
    def _stat(self, relpath: bytes) -> FileStat:
        raise NotImplementedError

    def _fetch(self, relpath: bytes, start: int, end: int) -> bytes:
        raise NotImplementedError

    def stat(self, relpath: bytes) -> FileStat:
        return self.call(lambda: self._stat(relpath), "stat")

    def open(self, relpath: bytes, size: int | None = None) -> BinaryIO:
        if size is None:
            size = self.stat(relpath).size
        name = relpath.rpartition(b"/")[2].decode("utf-8", "replace")
        fetch = self._fetcher(relpath)
        return RemoteFile(lambda s, e: self.call(lambda: fetch(s, e), "reading"), size, name,  # type: ignore[return-value]
                          on_close=getattr(fetch, "close", None))

    def one_file(self, relpath: bytes, size: int) -> OneFile:
        """For the scan's content work: fingerprint, probe and thumbnail share one open file and its cache."""
        return OneFile(self, relpath, size)

    def _fetcher(self, relpath: bytes) -> Callable[[int, int], bytes]:
        return lambda s, e: self._fetch(relpath, s, e)

    def key(self, relpath: bytes) -> str:
        """The path inside the bucket/share/server for ``relpath`` (names are UTF-8 on all three)."""
        rel = relpath.decode("utf-8", "surrogateescape")
        return f"{self.u.path}/{rel}".strip("/") if self.u.path else rel


class OneFile:
    """Looks like the storage to ``analyze``: every ``open`` of the one file returns the same RemoteFile,
    rewound, so its head and index blocks are fetched once, not once per step."""

    def __init__(self, storage: RemoteStorage, relpath: bytes, size: int) -> None:
        self.storage = storage
        self.relpath = relpath
        self.size = size
        self.url = storage.url
        self.file: RemoteFile | None = None

    def local_path(self, relpath: bytes) -> None:
        return None

    def open(self, relpath: bytes) -> _Borrowed:
        if relpath != self.relpath:
            raise ValueError("OneFile serves one file")
        if self.file is None:
            self.file = self.storage.open(relpath, self.size)  # type: ignore[assignment]
        self.file.seek(0)  # as a fresh open would be: PyAV starts reading where the file stands
        return _Borrowed(self.file)  # type: ignore[arg-type]

    def display(self, relpath: bytes) -> str:
        return self.storage.display(relpath)

    def release(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


class _Borrowed:
    """A RemoteFile that a ``with`` block does not close (the OneFile closes it)."""

    def __init__(self, f: RemoteFile) -> None:
        self._f = f
        self.name = f.name
        self.read = f.read
        self.readinto = f.readinto
        self.seek = f.seek
        self.tell = f.tell
        self.seekable = f.seekable
        self.readable = f.readable

    def __enter__(self) -> _Borrowed:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


def _plain(exc: Exception) -> Exception:
    """Library errors with an errno (smbprotocol's SMBOSError...) as the OSError subclass the scanner knows:
    a vanished file must read as FileNotFoundError, not as an unreadable one."""
    if isinstance(exc, OSError) and type(exc) not in (FileNotFoundError, PermissionError):
        if exc.errno == errno.ENOENT:
            return FileNotFoundError(errno.ENOENT, "no such file")
        if exc.errno in (errno.EACCES, errno.EPERM):
            return PermissionError(exc.errno, "permission denied")
    return exc


def _looks_like_auth(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}"
    return any(s in text for s in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden",
                                   "PermissionDenied", "Permission denied", "STATUS_LOGON_FAILURE",
                                   "STATUS_ACCESS_DENIED", "LogonFailure", "Authentication failed",
                                   "(403)"))


_restored: dict[tuple[Any, ...], RemoteStorage] = {}


def _restore(cls: type[RemoteStorage], u: RemoteURL, options: dict[str, str]) -> RemoteStorage:
    """One storage (one connection) per root per worker process, whatever the number of tasks."""
    key = (cls, u, tuple(sorted(options.items())))
    st = _restored.get(key)
    if st is None:
        st = _restored[key] = cls(u, Credentials(dict(options)))
    return st


def storage_for(root: str, *, endpoint_url: str | None = None) -> RemoteStorage:
    """The backend for a remote root URL (``s3://``, ``s3+http(s)://``, ``smb://``, ``sftp://``)."""
    u = parse_url(root, endpoint_url)
    if u.scheme == "s3":
        from .s3 import S3Storage

        return S3Storage(u)
    if u.scheme == "smb":
        from .smb import SMBStorage

        return SMBStorage(u)
    from .sftp import SFTPStorage

    return SFTPStorage(u)


def canonical_root(root: str, endpoint_url: str | None = None) -> str:
    """The URL a root is stored under (``--endpoint-url`` folded in), without connecting."""
    return parse_url(root, endpoint_url).url


def probe_url(url: str) -> dict[str, Any]:
    """Probe one remote file given by its full URL, as typed or as the catalog prints it.

    An asset's URL is its root's canonical URL (%-quoted) followed by its path inside the root as it is
    ('#', '?', '%' and all: ``.../take #2/a.mov``), and where the root ends is not known here. So the URL is
    not parsed as a root URL (that would take '#' for a fragment and '%25' for '%'): the path after the bucket
    (S3), share (SMB) or server (SFTP) is tried as it is first, then with its leading folders %-decoded.
    """
    from ..errors import UsageError
    from ..probe import probe_file

    scheme, sep, rest = url.partition("://")
    if not sep or not is_remote(url):
        raise UsageError(f"{redact(url)}: not a file URL")
    netloc, _, path = rest.partition("/")
    comps = path.split("/")
    fixed = 1 if scheme.lower() in ("s3+http", "s3+https", "smb") else 0  # the bucket / the share
    base, comps = f"{scheme}://{netloc}" + "".join("/" + c for c in comps[:fixed]), comps[fixed:]
    if not comps or not comps[-1]:
        raise UsageError(f"{redact(url)}: not a file URL")
    if any(c in ("", ".", "..") for c in comps):
        raise UsageError(f"{redact(url)}: '.', '..' and empty components are not allowed")
    candidates: list[str] = []
    for i in range(len(comps)):
        decoded = [unquote(c) for c in comps[:i]]
        if any(p in ("", ".", "..") for c in decoded for p in c.split("/")):  # '%2E%2E' is '..' once decoded
            raise UsageError(f"{redact(url)}: '.', '..' and empty components are not allowed")
        rel = "/".join(decoded + comps[i:])
        if rel not in candidates:
            candidates.append(rel)
    storage = storage_for(base)
    fh: BinaryIO | None = None
    try:
        for n, rel in enumerate(candidates):
            try:
                fh = storage.open(rel.encode("utf-8", "surrogateescape"))
                break
            except FileNotFoundError:
                if n + 1 == len(candidates):
                    raise
    except StorageUnreachable as exc:
        raise RootUnavailableError(f"{storage.url}: cannot connect ({exc.strerror})") from None
    except (FileNotFoundError, PermissionError):
        raise
    except OSError as exc:
        raise storage.unavailable(exc) from None
    assert fh is not None
    with fh:
        return probe_file(fh, name=comps[-1])


def with_endpoint(roots: list[str], endpoint_url: str) -> list[str]:
    """``--endpoint-url``: every ``s3://`` root becomes its canonical URL on that endpoint."""
    out = [canonical_root(r, endpoint_url) if r.lower().startswith("s3://") else r for r in roots]
    if out == list(roots):
        from ..errors import UsageError

        raise UsageError("--endpoint-url needs at least one s3:// root")
    return out


def mtime_ns(value: Any) -> int:
    """fsspec backends give datetimes, floats or ints: nanoseconds since the epoch."""
    if value is None:
        return 0
    if hasattr(value, "timestamp"):
        return round(value.timestamp() * 1_000_000) * 1000
    if isinstance(value, float):
        return round(value * 1_000_000) * 1000
    return int(value) * 1_000_000_000


def join_rel(parent: bytes, name: str) -> bytes:
    return join(parent, name.encode("utf-8", "surrogateescape"))
