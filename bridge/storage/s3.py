"""S3 and S3-compatible buckets (MinIO, Ceph, Wasabi, moto...) through s3fs.

The walk is one ListObjectsV2 request per 1000 keys for the whole prefix (no request per folder, no
HEAD per object). Keys come back in order, so a folder is complete as soon as a page ends past it: it
is handed to the scanner then, and a connection lost in the middle of a big listing still leaves the
folders listed so far indexed.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from typing import Any

import xxhash

from ..mediatypes import is_ignored_dir
from .base import Accept, FileStat, FolderError, Known, Listing, StorageUnreachable
from .remote import RemoteStorage, mtime_ns


def etag_id(etag: str | None) -> int | None:
    """The ETag as a 63-bit integer, kept in the catalog's inode column: a changed ETag changes the folder
    signature and, with equal size and mtime, makes the scanner compare content before trusting the row."""
    if not etag:
        return None
    return int.from_bytes(xxhash.xxh3_64(etag.strip('"').encode()).digest(), "big") >> 1


class S3Storage(RemoteStorage):
    PAGE: int | None = None  # keys per listing request; None = the service's maximum (1000 on AWS)

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
            config_kwargs={"retries": {"max_attempts": 1, "mode": "standard"}, "connect_timeout": 5,
                           "read_timeout": 30})
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
        except Exception as exc:
            raise self.unavailable(exc) from None

    def walk(self, accept: Accept, known: Known | None = None) -> Iterator[Listing | FolderError]:
        plen = len(self._prefix)
        open_folders: dict[str, list[FileStat]] = {}
        ignored: dict[str, bool] = {}
        token = None
        while True:
            try:
                page = self.call(lambda token=token: self._list_page(token, self.PAGE), "listing")
            except (StorageUnreachable, OSError) as exc:
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
        for folder in sorted(open_folders):
            yield self._listing(folder, open_folders[folder], known)

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
        except OSError as exc:
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

    def _fetch(self, relpath: bytes, start: int, end: int) -> bytes:
        from fsspec.asyn import sync

        fs = self.fs
        return sync(fs.loop, _get_range, fs, self.u.host, self.key(relpath), start, end)


async def _get_range(fs: Any, bucket: str, key: str, start: int, end: int) -> bytes:
    """One ranged GET (s3fs's cat_file may HEAD the object first to check the range)."""
    resp = await fs._call_s3("get_object", Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}")
    try:
        return await resp["Body"].read()
    finally:
        resp["Body"].close()
