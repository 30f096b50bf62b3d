"""Running the HTTP service: uvicorn on its own thread beside the ZeroMQ loop, in the `mediaidx serve` process.

The web app and the bridge share one process so that "sessions" and "push" in the dashboard are the
bridge's own sessions; each side keeps its own catalog connections (one per thread).
"""

from __future__ import annotations

import logging
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import MediaIdxError, UsageError
from .auth import check_exposure, host_is_loopback
from .context import WebContext

if TYPE_CHECKING:
    from ..service.server import BridgeServer

log = logging.getLogger(__name__)
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8765


@dataclass
class HttpOptions:
    """Where to serve HTTP and with which token; ``explicit`` is False for the default address, which is
    skipped with a warning (not an error) when another process already has it."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None
    explicit: bool = False
    url: str | None = None
    tls_cert: str | None = None     # PEM certificate (chain) and its key: HTTPS instead of HTTP
    tls_key: str | None = None

    @classmethod
    def parse(cls, value: str | None, token: str | None = None, tls_cert: str | None = None,
              tls_key: str | None = None) -> HttpOptions:
        """``HOST:PORT``, ``[IPv6]:PORT`` or ``PORT``; refuses an exposed address without a token, and a
        certificate without its key (or one that does not load), before anything binds."""
        if value is None:
            opts = cls(token=token or None)
        else:
            v = value.strip()
            m = re.fullmatch(r"(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]]*)):(\d{1,5})", v) or re.fullmatch(r"()()(\d{1,5})", v)
            if not m or int(m.group(3)) > 65535:
                raise UsageError(f"bad --http address {value!r} (use HOST:PORT, e.g. 127.0.0.1:8765; port 0 picks one)")
            opts = cls(m.group(1) or m.group(2) or DEFAULT_HOST, int(m.group(3)), token or None, explicit=True)
        check_exposure(opts.host, opts.token)
        if bool(tls_cert) != bool(tls_key):
            raise UsageError("HTTPS needs both --tls-cert and --tls-key")
        if tls_cert and tls_key:
            _check_tls(tls_cert, tls_key)
            opts.tls_cert, opts.tls_key = str(tls_cert), str(tls_key)
        return opts

    @property
    def cleartext_warning(self) -> str | None:
        """Exposed without TLS: the token crosses the network in clear; say so (a TLS proxy in front is fine)."""
        if self.exposed and not self.tls_cert:
            return (f"warning: HTTP on {self.host} without TLS: the token travels in clear; use --tls-cert/--tls-key "
                    "or put a TLS proxy in front")
        return None

    @property
    def exposed(self) -> bool:
        return not host_is_loopback(self.host)

    def attach(self, bridge: BridgeServer) -> Callable[[], None] | None:
        """Start the HTTP service beside ``bridge`` (the ``with_server`` hook of ``bridge.service.serve``)."""
        settings = bridge.ix.settings
        ctx = WebContext(settings.catalog_path, settings.cache_dir, token=self.token, bridge=bridge,
                         policy=bridge.policy)  # one root policy for ZeroMQ and HTTP
        service = HttpService(ctx, self.host, self.port, tls_cert=self.tls_cert, tls_key=self.tls_key)
        try:
            self.url = service.start()
        except OSError as exc:
            if self.explicit:
                raise UsageError(f"cannot serve HTTP on {self.host}:{self.port}: {exc.strerror or exc}") from None
            sys.stderr.write(f"mediaidx: warning: HTTP port {self.port} is busy ({exc.strerror or exc}); dashboard "
                             "off (use --http 127.0.0.1:PORT, or --no-http)\n")
            return None
        return service.stop


class HttpService:
    """uvicorn on a daemon thread; ``start()`` binds (so a busy port fails here) and returns the base URL."""

    def __init__(self, ctx: WebContext, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
                 tls_cert: str | None = None, tls_key: str | None = None) -> None:
        self.ctx = ctx
        self.host = host
        self.port = port
        self.tls_cert = tls_cert
        self.tls_key = tls_key
        self._server: object = None
        self._thread: threading.Thread | None = None
        self.url: str | None = None

    def start(self, timeout: float = 15) -> str:
        import uvicorn

        from .app import create_app

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.create_server((self.host, self.port), family=family, backlog=512)
        sock.set_inheritable(False)
        port = sock.getsockname()[1]
        config = uvicorn.Config(create_app(self.ctx), lifespan="off", log_config=None, log_level="warning",
                                access_log=False, server_header=False, proxy_headers=False, ws="none",
                                timeout_graceful_shutdown=2, timeout_keep_alive=30,
                                ssl_certfile=self.tls_cert, ssl_keyfile=self.tls_key)
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="mediaidx-http",
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise MediaIdxError("the HTTP service did not start")
            time.sleep(0.02)
        shown = f"[{self.host}]" if family == socket.AF_INET6 else self.host
        self.url = f"{'https' if self.tls_cert else 'http'}://{shown}:{port}/"
        return self.url

    def stop(self) -> None:
        self.ctx.jobs.close()
        if self._server is not None:
            self._server.should_exit = True  # type: ignore[attr-defined]
        if self._thread is not None:
            self._thread.join(10)


def _check_tls(cert: str, key: str) -> None:
    """Load the pair once here, so a wrong path, a key that does not match or a passphrase-protected key is a
    one-line error at start-up rather than a dead HTTP thread."""
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(cert, key, password=lambda: b"")
    except FileNotFoundError as exc:
        raise UsageError(f"cannot read {exc.filename}: no such file") from None
    except (ssl.SSLError, OSError) as exc:
        raise UsageError(f"--tls-cert {cert} / --tls-key {key}: not a certificate and its unencrypted key "
                         f"({getattr(exc, 'reason', None) or exc})") from None
