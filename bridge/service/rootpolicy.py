"""Which roots and paths a client of the services (ZeroMQ, HTTP) may name: one rule for both.

The services need no login on loopback because they serve only files inside the catalog's roots
(`security.contained`). A client that could register a root of its choosing (a scan) would undo that: scan
"/" and fetch ~/.ssh/id_rsa, or make the bridge copy files anywhere, or log in to a server of its choosing with
the owner's stored credentials. So over the services:

- a scan root must be a root the catalog already has (the owner registered it with `mediaidx scan` or the
  Python API), compared as written (no symlink resolution: a link cannot stand in for a root), or lie inside
  a folder or URL prefix the owner allowed when starting the service (`mediaidx serve --allow-root`,
  ``MEDIAIDX_ALLOW_ROOTS``): a local path by its real path (symlinks followed), a URL by its canonical text
  at a '/' boundary;
- every path a workflow step names (scan roots as above; backup destinations, sync_album sources and
  destinations) must lie inside a root of the catalog or an allowed folder, and a workflow scan may not
  follow symlinks.

Anything else is refused (`Forbidden`) before any work starts, dry runs included (a dry run would list any
folder). The CLI and the Python API are not limited: the owner runs them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from ..errors import UsageError
from ..storage.credentials import is_remote, parse_url, redact
from .security import Forbidden

if TYPE_CHECKING:
    from ..workflow.spec import Step

ENV_VAR = "MEDIAIDX_ALLOW_ROOTS"
HOW = (f"register it with `mediaidx scan {{shown}}`, or start the service with --allow-root (or {ENV_VAR}) "
       "naming it or a folder above it")


def parse_allow_env(value: str | None) -> list[str]:
    """The entries of ``MEDIAIDX_ALLOW_ROOTS``: one or more lines; a line that contains '://' is one URL
    (URLs contain ':', so they go on lines of their own), any other line is local folders separated by
    ``os.pathsep`` (':' on Linux and macOS, ';' on Windows). Blank entries are ignored."""
    out: list[str] = []
    for line in (value or "").splitlines():
        line = line.strip()
        if not line:
            continue
        if "://" in line:
            out.append(line)
        else:
            out += [p.strip() for p in line.split(os.pathsep) if p.strip()]
    return out


def _local(path: str) -> bytes | None:
    """``path`` as an absolute, normalised local path (bytes), or None when it is a URL of another kind."""
    if path.startswith("file://"):
        path = path[len("file://"):]
    elif "://" in path:
        return None
    if "\0" in path:
        raise Forbidden("NUL characters are not allowed in paths")
    p = os.fsencode(path)
    if not os.path.isabs(p):
        raise Forbidden(f"{path}: only absolute paths can be used over the service")
    if b".." in p.split(b"/"):
        raise Forbidden(f"{path}: '..' is not allowed in paths")
    return os.path.abspath(p).rstrip(b"/") or b"/"


def _within(real: bytes, base: bytes) -> bool:
    return real == base or real.startswith(base.rstrip(b"/") + b"/")


def _url_within(url: str, base: str) -> bool:
    return url == base or url.startswith(base.rstrip("/") + "/")


def _canonical(url: str) -> str:
    """The catalog's form of a remote URL (scheme, user, host, port, path); parse_url refuses '.', '..',
    empty components, queries, fragments and passwords."""
    try:
        return parse_url(url).url
    except UsageError as exc:
        raise Forbidden(str(exc)) from None


class RootPolicy:
    """The roots a service client may scan and the paths its workflows may name; ``allowed`` are the folders
    and URL prefixes the owner allowed (``--allow-root``), on top of the catalog's own roots."""

    def __init__(self, allowed: Iterable[str | os.PathLike[str]] = ()) -> None:
        self.local: list[bytes] = []
        self.remote: list[str] = []
        for entry in allowed:
            text = os.fspath(entry)
            if not text.strip():
                continue
            if "://" in text and not text.startswith("file://"):
                if not is_remote(text):
                    raise UsageError(f"--allow-root {redact(text)}: not a local folder or an s3://, smb:// or "
                                     "sftp:// URL")
                self.remote.append(parse_url(text).url)  # a bad URL stops the service from starting
            else:
                path = text[len("file://"):] if text.startswith("file://") else text
                self.local.append(os.path.abspath(os.fsencode(os.path.expanduser(path))).rstrip(b"/") or b"/")

    @classmethod
    def from_options(cls, allow_roots: Iterable[str] = (), environ: Mapping[str, str] | None = None) -> RootPolicy:
        """What `mediaidx serve` allows: its ``--allow-root`` values plus ``MEDIAIDX_ALLOW_ROOTS``."""
        env = os.environ if environ is None else environ
        return cls([*allow_roots, *parse_allow_env(env.get(ENV_VAR))])

    @property
    def allowed(self) -> list[str]:
        """The allowed folders and URL prefixes, for display."""
        return [os.fsdecode(p) for p in self.local] + self.remote

    # -- the checks ------------------------------------------------------------------------------------
    def check_scan(self, roots: Iterable[str], registered: Iterable[str]) -> None:
        """Refuse (Forbidden) unless every root is a root of the catalog or inside an allowed folder."""
        registered = list(registered)
        for root in roots:
            self._check_root(root, registered)

    def _check_root(self, root: str, registered: list[str]) -> None:
        local = _local(root)
        if local is not None:
            if local in {_local_or_none(r) for r in registered}:
                return  # exactly a root of the catalog, as written
            real = os.path.realpath(local)
            if any(_within(real, os.path.realpath(a)) for a in self.local):
                return
            shown = os.fsdecode(local)
            raise Forbidden(f"{shown}: not a root of this catalog (symlinks are followed before checking); "
                            f"{HOW.format(shown=shown)}")
        shown = redact(root)
        if not is_remote(root):
            raise Forbidden(f"{shown}: not a root of this catalog; {HOW.format(shown=shown)}")
        url = _canonical(root)
        if url in {r for r in registered if is_remote(r)} or any(_url_within(url, a) for a in self.remote):
            return
        raise Forbidden(f"{url}: not a root of this catalog; {HOW.format(shown=url)}")  # canonical: no password

    def check_path(self, path: str, registered: Iterable[str]) -> None:
        """Refuse (Forbidden) a path that is not inside a root of the catalog or an allowed folder (a
        workflow's source or destination: it is read or written with the service's rights)."""
        registered = list(registered)
        local = _local(path)
        if local is not None:
            real = os.path.realpath(local)
            bases = [b for b in (_local_or_none(r) for r in registered) if b is not None] + self.local
            if any(_within(real, os.path.realpath(b)) for b in bases):
                return
            raise Forbidden(f"{os.fsdecode(local)}: outside the catalog's roots and the folders the service allows "
                            "(symlinks are followed before checking)")
        if not is_remote(path):
            raise Forbidden(f"{redact(path)}: outside the catalog's roots and the folders the service allows")
        url = _canonical(path)
        if any(_url_within(url, b) for b in [r for r in registered if is_remote(r)] + self.remote):
            return
        raise Forbidden(f"{url}: outside the catalog's roots and the URL prefixes the service allows")

    def check_workflow(self, steps: list[Step], registered: Iterable[str]) -> None:
        """Refuse (Forbidden) a workflow unless every path of every step is allowed: checked for all steps
        before any runs, so a refused workflow changes nothing."""
        registered = list(registered)
        for step in steps:
            if step.action == "scan" and step.params.get("follow_symlinks"):
                raise Forbidden(f"{step.label}: follow_symlinks is not allowed in workflows started over the "
                                "service (a link could lead out of the allowed folders); run it with `mediaidx run`")
            for fname, path, use in step.paths():
                try:
                    if use == "root":
                        self._check_root(path, registered)
                    else:
                        self.check_path(path, registered)
                except Forbidden as exc:
                    raise Forbidden(f"{step.label}: field '{fname}': {exc}"
                                    + ("" if use == "root" else
                                       f"; start the service with --allow-root FOLDER (or {ENV_VAR}), or run "
                                       "the workflow with `mediaidx run`")) from None

    def workflow_check(self, registered: Callable[[], Iterable[str]]) -> Callable[[list[Step]], None]:
        """A ``check`` for `bridge.workflow.parse` / `MediaIndexer.run_workflow`; ``registered`` is asked for
        the catalog's roots when the check runs."""
        return lambda steps: self.check_workflow(steps, registered())


def _local_or_none(root: str) -> bytes | None:
    try:
        return _local(root)
    except Forbidden:
        return None
