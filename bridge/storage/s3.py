"""S3 and S3-compatible buckets (MinIO, Ceph, Wasabi, moto...) through s3fs.

The walk is one ListObjectsV2 request per 1000 keys for the whole prefix (no request per folder, no
HEAD per object). Keys come back in order, so a folder is complete as soon as a page ends past it: it
is handed to the scanner then, and a connection lost in the middle of a big listing still leaves the
folders listed so far indexed.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from typing import Any, BinaryIO

import xxhash

from ..mediatypes import is_ignored_dir
from .base import Accept, FileStat, FolderError, Known, Listing, StorageUnreachable
from .remote import RemoteFile, RemoteStorage, mtime_ns


def etag_id(etag: str | None) -> int | None:
    """The ETag as a 63-bit integer, kept in the catalog's inode column: a changed ETag changes the folder
    signature and, with equal size and mtime, makes the scanner compare content before trusting the row."""
    if not etag:
        return None
    return int.from_bytes(xxhash.xxh3_64(etag.strip('"').encode()).digest(), "big") >> 1


class S3Storage(RemoteStorage):
    PAGE: int | None = None  # keys per listing request; None = the service's maximum (1000 on AWS)
    CONNECT_TIMEOUT = 5
    READ_TIMEOUT = 30

    def io_errors(self) -> tuple[type[BaseException], ...]:
        """s3fs turns the service's error replies (botocore ClientError) into OSError; what it passes through
        is botocore's own (BotoCoreError: endpoint unreachable, no credentials, a reply it cannot parse, a
        stream cut short) and, under aiobotocore, aiohttp's (ClientError, InvalidURL among them). Not
        ValueError: the endpoint botocore would refuse with one ("Invalid endpoint") is refused when the root's
        URL is parsed (credentials._endpoint, stored roots and storage.toml's endpoint_url included), and any
        other ValueError is a bug that must fail loudly."""
        from aiohttp import ClientError as HTTPClientError
        from botocore.exceptions import BotoCoreError, ClientError

        return (*super().io_errors(), BotoCoreError, ClientError, HTTPClientError)

    def _connect(self) -> Any:
        import s3fs

        o = self.creds.options
        client_kwargs: dict[str, Any] = {}
        endpoint = self.u.endpoint or o.get("endpoint_url")
        if endpoint:
            client_kwargs["endpoint_url"] = endpoint
        client_kwargs["region_name"] = o.get("region") or ("us-east-1" if endpoint else None)
        if client_kwargs["region_name"] is None:
            del client_kwargs["region_name"]
        fs = s3fs.S3FileSystem(
            key=o.get("access_key_id"), secret=o.get("secret_access_key"), token=o.get("session_token"),
            client_kwargs=client_kwargs, skip_instance_cache=True, use_listings_cache=False,
            # total_max_attempts: botocore's "max_attempts" counts retries, so 1 would send every request
            # twice per try of ours (a server that never answers then takes twice the documented time)
            config_kwargs={"retries": {"total_max_attempts": 1, "mode": "standard"},
                           "connect_timeout": self.CONNECT_TIMEOUT, "read_timeout": self.READ_TIMEOUT})
        fs.retries = 1  # our retry loop (with backoff and a clear end) instead of s3fs's
        return fs

    @property
    def _prefix(self) -> str:
        return self.u.path + "/" if self.u.path else ""

    def _not_found_reason(self) -> str:
        return f"no such bucket '{self.u.host}'"

    def _list_page(self, token: str | None, max_keys: int | None = None) -> dict[str, Any]:
        kw: dict[str, Any] = {"Bucket": self.u.host, "Prefix": self._prefix}
        if token:
            kw["ContinuationToken"] = token
        if max_keys:
            kw["MaxKeys"] = max_keys
        return self.fs.call_s3("list_objects_v2", **kw)

    def check(self) -> None:
        try:
            self.call(lambda: self._list_page(None, 1), "listing")
        except self.io_errors() as exc:  # a bucket that cannot be used: one line naming the root (a bug is raised)
            raise self.unavailable(exc) from None

    def walk(self, accept: Accept, known: Known | None = None) -> Iterator[Listing | FolderError]:
        plen = len(self._prefix)
        open_folders: dict[str, list[FileStat]] = {}
        ignored: dict[str, bool] = {}
        odd: list[tuple[bytes, str]] = []  # keys no relative path can name: reported with the root folder
        token = None
        while True:
            try:
                page = self.call(lambda token=token: self._list_page(token, self.PAGE), "listing")
            except self.io_errors() as exc:  # StorageUnreachable is an OSError; a bug in our code is not caught
                reason = (f"connection lost ({exc.strerror})" if isinstance(exc, StorageUnreachable)
                          else self._say(exc))
                # Folders still open (and the root, which holds everything not listed yet) are incomplete.
                for folder in sorted(set(open_folders) | {""}):
                    yield FolderError(folder.encode("utf-8", "surrogateescape"), reason)
                return
            last = ""
            for obj in page.get("Contents", ()):
                key = obj["Key"][plen:]
                last = key
                folder, _, name = key.rpartition("/")
                if not name:
                    continue  # a "folder/" marker object
                if any(c in ("", ".", "..") for c in key.split("/")):
                    # "a//b.mp4", "/x.mp4", "../x.mp4": keys S3 allows but no path can name (an empty
                    # component would collide with "a/b.mp4", '..' would point outside the root).
                    if accept(name.encode("utf-8", "surrogateescape")):
                        odd.append((key.encode("utf-8", "surrogateescape"),
                                    "key skipped: empty, '.' or '..' path component"))
                    continue
                skip = ignored.get(folder)
                if skip is None:
                    skip = ignored[folder] = any(is_ignored_dir(c.encode("utf-8", "surrogateescape"))
                                                 for c in folder.split("/") if c)
                files = open_folders.setdefault(folder, []) if not skip else None
                name_b = name.encode("utf-8", "surrogateescape")
                if files is None or not accept(name_b):
                    continue
                etag = obj.get("ETag")
                files.append(FileStat(name_b, int(obj["Size"]), mtime_ns(obj.get("LastModified")), etag_id(etag),
                                      None, etag.strip('"') if etag else None))
            truncated = page.get("IsTruncated")
            if truncated and last:
                # Keys are sorted: a folder whose keys all sort before the last one is complete.
                done = [f for f in open_folders if f and not last.startswith(f + "/") and last > f + "/"]
                for folder in sorted(done):
                    yield self._listing(folder, open_folders.pop(folder), known)
            if not truncated:
                break
            token = page.get("NextContinuationToken")
        if odd:
            open_folders.setdefault("", [])
        for folder in sorted(open_folders):
            listing = self._listing(folder, open_folders[folder], known)
            if not folder:
                listing.issues = odd
            yield listing

    @staticmethod
    def _listing(folder: str, files: list[FileStat], known: Known | None) -> Listing:
        rel = folder.encode("utf-8", "surrogateescape")
        files.sort(key=lambda f: f.name)
        listing = Listing(rel, files)
        if known is not None and known.get(rel) == listing.signature:
            listing.files = None
        return listing

    def list_folder(self, relpath: bytes, accept: Accept) -> Listing | FolderError:
        for item in self._walk_one(relpath, accept):
            return item
        return Listing(relpath, [])

    def _walk_one(self, relpath: bytes, accept: Accept) -> Iterator[Listing | FolderError]:
        """One folder's listing: the keys directly under it (delimiter '/')."""
        prefix = self.key(relpath)
        prefix = prefix + "/" if prefix else ""
        files: list[FileStat] = []
        token = None
        try:
            while True:
                kw: dict[str, Any] = {"Bucket": self.u.host, "Prefix": prefix, "Delimiter": "/"}
                if token:
                    kw["ContinuationToken"] = token
                page = self.call(lambda kw=kw: self.fs.call_s3("list_objects_v2", **kw), "listing")
                for obj in page.get("Contents", ()):
                    name = obj["Key"][len(prefix):]
                    name_b = name.encode("utf-8", "surrogateescape")
                    if name and accept(name_b):
                        etag = obj.get("ETag")
                        files.append(FileStat(name_b, int(obj["Size"]), mtime_ns(obj.get("LastModified")),
                                              etag_id(etag), None, etag.strip('"') if etag else None))
                if not page.get("IsTruncated"):
                    break
                token = page.get("NextContinuationToken")
        except StorageUnreachable as exc:
            yield FolderError(relpath, f"connection lost ({exc.strerror})")
            return
        except self.io_errors() as exc:  # the service's failure or a reply botocore cannot parse; not a bug
            yield FolderError(relpath, self._say(exc))
            return
        files.sort(key=lambda f: f.name)
        yield Listing(relpath, files)

    def _stat(self, relpath: bytes) -> FileStat:
        try:
            head = self.fs.call_s3("head_object", Bucket=self.u.host, Key=self.key(relpath))
        except FileNotFoundError:
            raise
        except OSError as exc:
            if "Not Found" in str(exc) or "404" in str(exc) or "NoSuchKey" in str(exc):
                raise FileNotFoundError(errno.ENOENT, "no such object") from None
            raise
        etag = head.get("ETag")
        return FileStat(relpath.rpartition(b"/")[2], int(head["ContentLength"]), mtime_ns(head.get("LastModified")),
                        etag_id(etag), None, etag.strip('"') if etag else None)

    def open(self, relpath: bytes, size: int | None = None) -> BinaryIO:
        """Reads of one version of the object: the one listed (``size``) or stat'ed, never a mix (below)."""
        etag = None
        if size is None:
            st = self.stat(relpath)
            size, etag = st.size, st.etag
        fetch = _PinnedFetch(self, self.key(relpath), size, etag)
        name = relpath.rpartition(b"/")[2].decode("utf-8", "replace")
        return RemoteFile(lambda s, e: self.call(lambda: fetch(s, e), "reading"), size, name)  # type: ignore[return-value]


class ObjectChanged(OSError):
    """The object was replaced while it was being read: its blocks would mix two versions."""

    def __init__(self) -> None:
        super().__init__(errno.EIO, "the object changed while it was read (it is read again on the next scan)")


class _PinnedFetch:
    """Ranged GETs of one object version: the first response's ETag (or the stat's) goes as If-Match on
    every later request, and a size other than the listed one fails at once. An object overwritten between
    the listing and the probe, or between two reads, then fails cleanly instead of feeding the demuxer the
    head of one version and the index of another."""

    def __init__(self, storage: S3Storage, key: str, size: int | None, etag: str | None) -> None:
        self.storage, self.key, self.size = storage, key, size
        self.etag = f'"{etag.strip(chr(34))}"' if etag else None

    def __call__(self, start: int, end: int) -> bytes:
        from fsspec.asyn import sync

        fs = self.storage.fs
        try:
            data, etag, total = sync(fs.loop, _get_range, fs, self.storage.u.host, self.key, start, end, self.etag)
        except OSError as exc:
            if _precondition_failed(exc):
                raise ObjectChanged() from None
            raise
        if self.size is not None and total is not None and total != self.size:
            raise ObjectChanged()
        if self.etag is None and etag:
            self.etag = etag
        return data


def _precondition_failed(exc: BaseException) -> bool:
    cause = exc.__cause__ or exc.__context__
    response = getattr(cause, "response", None)
    code = (response.get("Error") or {}).get("Code") if isinstance(response, dict) else None
    return code in ("PreconditionFailed", "412")


async def _get_range(fs: Any, bucket: str, key: str, start: int, end: int,
                     etag: str | None = None) -> tuple[bytes, str | None, int | None]:
    """One ranged GET (s3fs's cat_file may HEAD the object first to check the range): the bytes, the
    object's ETag and its total size (from Content-Range)."""
    kw: dict[str, Any] = {"IfMatch": etag} if etag else {}
    resp = await fs._call_s3("get_object", Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}", **kw)
    try:
        data = await resp["Body"].read()
    finally:
        resp["Body"].close()
    total = None
    rng = resp.get("ContentRange") or ""
    if "/" in rng and rng.rsplit("/", 1)[1].isdigit():
        total = int(rng.rsplit("/", 1)[1])
    return data, resp.get("ETag"), total
