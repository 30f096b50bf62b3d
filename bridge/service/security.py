"""What the service lets through: loopback unless authenticated, files only inside the roots."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
from pathlib import Path

import platformdirs

from ..errors import MediaIdxError, UsageError
from ..models import PlanItem


class Forbidden(MediaIdxError):
    """A request for something outside what the bridge serves."""


def default_keys_dir() -> Path:
    env = os.environ.get("MEDIAIDX_KEYS")
    return Path(env) if env else platformdirs.user_config_path("mediaidx") / "keys"


def endpoint_is_local(endpoint: str) -> bool:
    """tcp on a loopback address, ipc (file permissions) and inproc are local; anything else is exposed."""
    m = re.fullmatch(r"(\w+)://(.+)", endpoint)
    if not m:
        raise UsageError(f"bad bind address {endpoint!r} (use tcp://HOST:PORT)")
    scheme, rest = m.group(1).lower(), m.group(2)
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp":
        raise UsageError(f"bad bind address {endpoint!r}: transport {scheme!r} is not supported")
    host = rest.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name or interface name: treat as exposed


class Keys:
    """CURVE keys in one folder: server.key / server.key_secret, and authorized/ with one public key per
    client allowed in (``mediaidx keys`` writes them)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    @property
    def server_public(self) -> Path:
        return self.folder / "server.key"

    @property
    def server_secret(self) -> Path:
        return self.folder / "server.key_secret"

    @property
    def authorized(self) -> Path:
        return self.folder / "authorized"

    def exist(self) -> bool:
        return self.server_secret.is_file() and self.authorized.is_dir()

    def create_server(self) -> tuple[Path, bool]:
        """Make the server key pair unless it exists; returns (public key file, created)."""
        import zmq.auth

        self.folder.mkdir(parents=True, exist_ok=True)
        self.authorized.mkdir(exist_ok=True)
        os.chmod(self.folder, 0o700)
        if self.server_secret.exists():
            return self.server_public, False
        pub, sec = zmq.auth.create_certificates(self.folder, "server")
        os.chmod(sec, 0o600)
        return Path(pub), True

    def plan(self, client: str | None = None, authorize: Path | None = None) -> list[PlanItem]:
        """What ``mediaidx keys`` with these options would write (its dry run); checks what it would check."""
        items = []
        if self.server_secret.exists():
            items.append(PlanItem("skip", str(self.server_secret), reason="server keys exist: kept"))
        else:
            items += [PlanItem("write", str(self.server_public), reason="server public key"),
                      PlanItem("write", str(self.server_secret), reason="server secret key (mode 600)")]
        if client:
            self._check_client_name(client)
            out = self.folder / "clients"
            items += [PlanItem("write", str(out / f"{client}.key"), reason="client public key"),
                      PlanItem("write", str(out / f"{client}.key_secret"),
                               reason="client secret key: give it to that machine"),
                      PlanItem("write", str(self.authorized / f"{client}.key"), reason="authorize the client")]
        if authorize:
            if not Path(authorize).is_file():
                raise UsageError(f"{authorize}: no such public key file")
            items.append(PlanItem("copy", str(self.authorized / Path(authorize).name), source=str(authorize),
                                  reason="authorize the client"))
        return items

    @staticmethod
    def _check_client_name(name: str) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
            raise UsageError(f"client name {name!r}: letters, digits, '.', '-' and '_' only")

    def create_client(self, name: str, out_dir: Path | None = None) -> tuple[Path, Path]:
        """A client key pair, authorized here; the secret key file goes to the client's machine."""
        import zmq.auth

        self._check_client_name(name)
        out = Path(out_dir) if out_dir else self.folder / "clients"
        out.mkdir(parents=True, exist_ok=True)
        pub, sec = zmq.auth.create_certificates(out, name)
        os.chmod(sec, 0o600)
        self.authorize(Path(pub))
        return Path(pub), Path(sec)

    def authorize(self, public_key_file: Path) -> Path:
        self.authorized.mkdir(parents=True, exist_ok=True)
        dest = self.authorized / Path(public_key_file).name
        shutil.copyfile(public_key_file, dest)
        return dest

    def load_server(self) -> tuple[bytes, bytes]:
        import zmq.auth

        pub, sec = zmq.auth.load_certificate(self.server_secret)
        if not sec:
            raise UsageError(f"{self.server_secret}: no secret key in it")
        return pub, sec

    def public_text(self) -> str:
        import zmq.auth

        return zmq.auth.load_certificate(self.server_public)[0].decode("ascii")


def load_client_keys(secret_file: str | os.PathLike[str]) -> tuple[bytes, bytes]:
    import zmq.auth

    pub, sec = zmq.auth.load_certificate(secret_file)
    if not sec:
        raise UsageError(f"{secret_file}: not a secret key file")
    return pub, sec


def check_path_text(path: str | bytes) -> bytes:
    """``path`` as bytes once its text passes the checks that need no file system: absolute, no '..'
    (Forbidden otherwise). Cheap: the bridge runs it before queueing a file operation."""
    p = os.fsencode(path)
    if not os.path.isabs(p):
        raise Forbidden("only absolute paths inside the bridge's roots can be served")
    if b".." in p.split(b"/"):
        raise Forbidden("'..' is not allowed in paths")
    return p


def _under(path: bytes, root: bytes) -> bool:
    root = root.rstrip(b"/") or b"/"
    return path == root or path.startswith(root if root == b"/" else root + b"/")


def contained(path: str | bytes, roots: list[str]) -> bytes:
    """The real path of ``path`` if it lies inside one of ``roots`` after resolving symlinks; Forbidden
    otherwise. Relative paths and '..' components are refused outright.

    Only the roots that ``path`` (or its real path) names by its text are resolved, so a root on a mount that
    hangs is touched by paths under it only, never by a fetch from another root. A path under a root whose
    real path leaves every such root's real path (a symlink out) is refused. A path under no root by its text
    (a symlink into a root from outside) is compared with every root's real path."""
    p = check_path_text(path)
    local = [os.fsencode(r) for r in roots if "://" not in r]
    named = [r for r in local if _under(os.path.normpath(p), os.path.normpath(r))]
    real = os.path.realpath(p)
    if named:
        tried: set[bytes] = set()
        # its own roots first, then the roots its real path names by their text (a link into another root)
        for r in named + [r for r in local if r not in named and _under(real, os.path.normpath(r))]:
            if r in tried:
                continue
            tried.add(r)
            if _under(real, os.path.realpath(r)):
                return real
        # a link into a root that is itself reached through a link (root /data/B -> /mnt/b): only a path the
        # named roots refuse gets here, so a dead root still does not hold up the others' ordinary fetches
        for r in local:
            if r not in tried and _under(real, os.path.realpath(r)):
                return real
        raise Forbidden("not inside any of the bridge's roots (symlinks are followed before checking)")
    for r in local:
        if _under(real, os.path.realpath(r)):
            return real
    raise Forbidden("not inside any of the bridge's roots (symlinks are followed before checking)")


def remote_contained(url: str, roots: list[str]) -> tuple[str, bytes]:
    """(root, relpath) of a URL inside one of the remote roots (s3://, smb://, sftp://); Forbidden otherwise.
    Remote paths have no symlinks to resolve, so the rule is textual: below the root's URL, no '.', '..' or
    empty components, no query or fragment."""
    from ..storage import is_remote

    if any(part in (".", "..") for part in url.split("/")) or "?" in url or "#" in url or "\\" in url:
        raise Forbidden("'.', '..', queries and fragments are not allowed in paths")
    for root in roots:
        if not is_remote(root):
            continue
        base = root.rstrip("/") + "/"
        if url.startswith(base):
            rel = url[len(base):]
            if not rel or "" in rel.split("/"):
                raise Forbidden("empty path components are not allowed")
            return root, rel.encode("utf-8", "surrogateescape")
    raise Forbidden("not inside any of the bridge's roots")
