"""Remote root URLs and where their credentials come from.

A root is named by a URL without secrets: ``s3://bucket/prefix`` (AWS), ``s3+http://host:port/bucket/prefix``
(any S3-compatible endpoint: the endpoint is part of the root, so it is stored with it in the catalog),
``smb://host[:port]/share/path`` and ``sftp://host[:port]/path``, optionally with a user name
(``smb://alice@nas/share``). A password in the URL is refused: it would end up in shell history, the
catalog and every log line that names the root.

Secrets come from, in this order: environment variables, the config file (``storage.toml`` in the per-user
config folder, or ``MEDIAIDX_STORAGE_CONFIG``), the system keyring (service ``mediaidx``). Whatever is not
given falls back to the backend's own defaults (the AWS credential chain, ssh-agent and ~/.ssh keys).
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import platformdirs

from ..errors import UsageError

log = logging.getLogger(__name__)

SCHEMES = ("s3", "s3+http", "s3+https", "smb", "sftp")
KEYRING_SERVICE = "mediaidx"

# Which option names are secrets (never shown, scrubbed from error text).
SECRET_KEYS = ("secret_access_key", "session_token", "password", "passphrase")

ENV = {
    "s3": {"access_key_id": "MEDIAIDX_S3_ACCESS_KEY_ID", "secret_access_key": "MEDIAIDX_S3_SECRET_ACCESS_KEY",
           "session_token": "MEDIAIDX_S3_SESSION_TOKEN", "region": "MEDIAIDX_S3_REGION"},
    "smb": {"username": "MEDIAIDX_SMB_USER", "password": "MEDIAIDX_SMB_PASSWORD", "domain": "MEDIAIDX_SMB_DOMAIN"},
    "sftp": {"username": "MEDIAIDX_SFTP_USER", "password": "MEDIAIDX_SFTP_PASSWORD",
             "key_file": "MEDIAIDX_SFTP_KEY_FILE", "passphrase": "MEDIAIDX_SFTP_PASSPHRASE",
             "known_hosts": "MEDIAIDX_SFTP_KNOWN_HOSTS"},
}
ALLOWED = {k: set(v) | ({"endpoint_url"} if k == "s3" else set()) for k, v in ENV.items()}


def redact(url: str) -> str:
    """The URL with any user:password part shown as ``***@`` (for error messages about bad URLs).

    A password may itself hold '@', '/', '?' or '#' (``smb://alice:p/w@nas/share``, ``smb://alice:p@ss/w@nas``):
    then the authority seems to end early, so when it has an '@' or a ':' and an '@' comes anywhere later,
    everything up to the last '@' is hidden (a folder name with '@' is hidden too: safe side)."""
    m = re.match(r"[A-Za-z0-9+.-]+://", url)
    if not m:
        return url
    rest = url[m.end():]
    auth = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if ("@" in auth or ":" in auth) and "@" in rest:
        cut = rest.rfind("@")
    else:
        return url
    return m.group(0) + "***" + rest[cut:]


@dataclass(frozen=True)
class RemoteURL:
    """A parsed remote root. ``path`` has no leading or trailing '/' ('' = the whole bucket/share/home)."""

    scheme: str                   # s3 | smb | sftp
    host: str                     # bucket for s3; server for smb/sftp
    path: str = ""
    port: int | None = None
    user: str | None = None
    endpoint: str | None = None   # s3 only: http(s)://host[:port] of an S3-compatible service

    @property
    def url(self) -> str:
        """The canonical form, as stored in the catalog (no secrets)."""
        if self.scheme == "s3":
            if self.endpoint:
                scheme, rest = self.endpoint.split("://", 1)
                base = f"s3+{scheme}://{rest}/{self.host}"
            else:
                base = f"s3://{self.host}"
        else:
            user = f"{quote(self.user, safe='')}@" if self.user else ""
            port = f":{self.port}" if self.port else ""
            host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 address keeps its brackets
            base = f"{self.scheme}://{user}{host}{port}"
        return f"{base}/{quote(self.path, safe='/')}" if self.path else base

    @property
    def credential_key(self) -> str:
        """What credentials are filed under: the bucket (with its endpoint) or the server (with its user)."""
        if self.scheme == "s3":
            return RemoteURL("s3", self.host, endpoint=self.endpoint).url
        return RemoteURL(self.scheme, self.host, port=self.port, user=self.user).url


def is_remote(root: str) -> bool:
    return isinstance(root, str) and root.split("://", 1)[0].lower() in SCHEMES and "://" in root


def parse_url(root: str, endpoint_url: str | None = None) -> RemoteURL:
    """Parse a root URL; ``endpoint_url`` (``--endpoint-url``) makes ``s3://`` point at another service."""
    try:
        parts = urlsplit(root)
        port = parts.port
    except ValueError as exc:
        # urllib's text quotes what it took for a port, which may be the start of a password
        detail = "" if "@" in root else f" ({exc})"
        raise UsageError(f"{redact(root)}: not a valid URL{detail}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UsageError(f"{redact(root)}: unknown storage scheme (use s3://, smb://, sftp:// or a local path)")
    first = parts.path.lstrip("/").split("/", 1)[0]
    if parts.password is not None or (":" in parts.netloc and "@" not in parts.netloc and "@" in first):
        # the second case: user:pass/word@host, which urllib reads as host "user", port "pass", path "word@host"
        raise UsageError(f"{redact(root)}: a password in the URL is refused (it would be stored and logged); "
                         "put it in the environment, storage.toml or the keyring (see docs/storage.md); if '@' is "
                         "part of a folder name, write it as %40")
    if parts.query or parts.fragment:
        raise UsageError(f"{redact(root)}: query strings and fragments are not allowed in a root URL")
    path = unquote(parts.path).strip("/")
    if any(c in (".", "..") for c in path.split("/")) or "//" in path:
        raise UsageError(f"{redact(root)}: '.', '..' and empty components are not allowed in a root URL")
    host = parts.hostname or ""
    user = unquote(parts.username) if parts.username else None
    if scheme.startswith("s3"):
        if user:
            raise UsageError(f"{redact(root)}: no user name in s3 URLs (credentials go in the environment, "
                             "storage.toml or the keyring)")
        endpoint = None
        if scheme != "s3":
            endpoint = f"{scheme[3:]}://{parts.netloc}"
            bucket, _, path = path.partition("/")
            host = bucket
        elif endpoint_url:
            endpoint = endpoint_url
        if endpoint:
            endpoint = _endpoint(endpoint)
        if not host:
            raise UsageError(f"{redact(root)}: no bucket name")
        return RemoteURL("s3", host, path, endpoint=endpoint)
    if endpoint_url:
        raise UsageError("--endpoint-url only applies to s3:// roots")
    if not host:
        raise UsageError(f"{redact(root)}: no server name")
    _check_host(redact(root), host)
    if scheme == "smb" and not path:
        raise UsageError(f"{redact(root)}: no share name (smb://host/share/folder)")
    return RemoteURL(scheme, host, path, port=port, user=user)


def _endpoint(endpoint: str) -> str:
    e = urlsplit(endpoint)
    if e.scheme not in ("http", "https") or not e.hostname:
        raise UsageError(f"endpoint {redact(endpoint)}: use http(s)://host[:port]")
    if e.username or e.password:
        raise UsageError(f"endpoint {redact(endpoint)}: no credentials in the endpoint URL")
    _check_host(f"endpoint {endpoint}", e.hostname)
    if ":" not in e.hostname and not _S3_HOST.match(e.hostname.rstrip(".")):
        # botocore refuses it only when it connects ("Invalid endpoint"), after the scan began
        raise UsageError(f"endpoint {endpoint}: {e.hostname!r} is not a host name the S3 client takes "
                         f"({_s3_host_problem(e.hostname)})")
    if e.path.strip("/") or e.query:
        raise UsageError(f"endpoint {redact(endpoint)}: only http(s)://host[:port], without a path")
    return f"{e.scheme}://{e.netloc.lower()}"


_S3_HOST = re.compile(r"^((?!-)[a-z\d-]{1,63}(?<!-)\.)*((?!-)[a-z\d-]{1,63}(?<!-))$", re.IGNORECASE)  # botocore's


def _s3_host_problem(host: str) -> str:
    """What in ``host`` the S3 client refuses, for the message (the host already passed ``_check_host``)."""
    if not host.isascii():
        # botocore takes only ASCII names; the IDNA form reaches the same server
        return f"only ASCII letters; write it as {host.encode('idna').decode('ascii')}"
    if "_" in host:
        return "no '_'; only letters, digits, '-' and '.'"
    return "only letters, digits, '-' and '.', with no part starting or ending with '-'"


def _check_host(what: str, host: str) -> None:
    """A server name no lookup can take (``nas..local``: an empty or over-long part between dots) is a typo in
    the URL, said at once; the connection would fail with a UnicodeError from deep in the idna codec.
    ``what`` names the URL, already without secrets."""
    try:
        host.encode("idna")
    except UnicodeError:
        raise UsageError(f"{what}: {host!r} is not a valid server name (an empty or over-long part "
                         "between dots)") from None


# -- credentials ------------------------------------------------------------------------------------------

@dataclass
class Credentials:
    """Resolved options for one root. ``repr`` never shows secrets."""

    options: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # option -> env | config | keyring

    def get(self, key: str) -> str | None:
        return self.options.get(key)

    def secrets(self) -> list[str]:
        return [v for k, v in self.options.items() if k in SECRET_KEYS and v]

    def scrub(self, text: str) -> str:
        """``text`` with every secret value replaced by ***, for messages built from library errors."""
        for s in self.secrets():
            if len(s) >= 3:
                text = text.replace(s, "***")
        return text

    def __repr__(self) -> str:
        shown = {k: ("***" if k in SECRET_KEYS else v) for k, v in self.options.items()}
        return f"Credentials({shown})"


def config_path() -> Path:
    env = os.environ.get("MEDIAIDX_STORAGE_CONFIG")
    return Path(env).expanduser() if env else platformdirs.user_config_path("mediaidx") / "storage.toml"


def load_config(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """Tables named by URL prefixes: ``["s3+http://minio:9000/footage"]`` with the options for roots under it.
    A config file holding secrets must not be readable by others (like ~/.ssh)."""
    path = path or config_path()
    try:
        raw = path.read_bytes()
        mode = path.stat().st_mode
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the storage config ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: not valid TOML ({str(exc).splitlines()[0]})") from None
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO) and any(
            any(k in SECRET_KEYS for k in t) for t in tables.values()):
        raise UsageError(f"{path}: holds secrets but others can read it; run chmod 600 on it")
    return tables


def _prefix_matches(prefix: str, url: str) -> bool:
    prefix = prefix.rstrip("/")
    return url == prefix or url.startswith(prefix + "/")


def resolve_credentials(u: RemoteURL, *, config: dict[str, dict[str, Any]] | None = None,
                        environ: dict[str, str] | None = None, use_keyring: bool = True) -> Credentials:
    """Credentials for ``u``: environment first, then the most specific config table, then the keyring."""
    kind = u.scheme
    environ = os.environ if environ is None else environ  # type: ignore[assignment]
    creds = Credentials()
    # Whose account each option came with: a password from a source that names another user is that user's.
    owner: dict[str, str | None] = {}
    env_user = environ.get(ENV[kind].get("username", "")) or None
    for key, var in ENV[kind].items():
        if environ.get(var):
            creds.options[key] = environ[var]
            creds.sources[key] = "env"
            owner[key] = env_user
    tables = load_config() if config is None else config
    for prefix in tables:
        # A typo must not silently drop the settings it holds; a table meant for another kind of storage (or
        # no scheme at all) is refused only by that kind's roots, so an S3 typo does not stop an SFTP root.
        if _canon_prefix(prefix) is None and _table_kind(prefix) in (kind, None):
            raise UsageError(f"{config_path()}: [{_shown_table(prefix)}] is not a storage URL (s3://bucket, "
                             "s3+https://host/bucket, smb://server[/share], sftp://host); fix or remove it")
    # A table that names no user covers the server for every user: ["smb://nas"] applies to smb://alice@nas/x
    urls = {u.url, replace(u, user=None).url}
    matches = sorted((p for p in tables if any(_prefix_matches(_canon_prefix(p) or "", c) for c in urls)),
                     key=lambda p: len(_canon_prefix(p) or ""))
    for prefix in matches:  # least specific first, so the most specific table wins
        table_user = tables[prefix].get("username")
        for key, value in tables[prefix].items():
            if key not in ALLOWED[kind]:
                raise UsageError(f"{config_path()}: [{_shown_table(prefix)}] has an unknown option '{key}' "
                                 f"(allowed: {', '.join(sorted(ALLOWED[kind]))})")
            if key not in creds.sources or creds.sources[key] == "config":
                creds.options[key] = str(value)
                creds.sources[key] = "config"
                owner[key] = str(table_user) if table_user else None
    if u.user and "username" in ALLOWED[kind]:
        # the user written in the root's URL is part of that root (and of its keyring key): it wins
        creds.options["username"] = u.user
        creds.sources["username"] = "url"
        pw_owner = owner.get("password")
        if "password" in creds.options and pw_owner is not None and not _same_user(kind, pw_owner, u.user):
            # another account's password (MEDIAIDX_SMB_USER=bob with his password, or a table's username=...):
            # sent as alice's it fails and counts towards locking her account; her own comes from the keyring
            del creds.options["password"], creds.sources["password"]
    secret = "secret_access_key" if kind == "s3" else "password"
    if use_keyring and secret not in creds.options and not creds.options.get("key_file"):
        _from_keyring(u, creds, secret)
    if creds.options.get("endpoint_url"):
        # as for --endpoint-url: a user:password in it would reach every error message that names the URL
        creds.options["endpoint_url"] = _endpoint(creds.options["endpoint_url"])
    return creds


def _same_user(kind: str, a: str, b: str) -> bool:
    """Whether user names ``a`` and ``b`` name one account. SMB (Windows) names ignore case and are often
    written ``DOMAIN\\user`` or ``user@realm``; SFTP (Unix) names are compared exactly."""
    if kind != "smb":
        return a == b

    def split(name: str) -> tuple[str, str]:  # (user, domain or realm, '' when not written)
        domain, _, rest = name.rpartition("\\")
        user, _, realm = rest.partition("@")
        return user.casefold(), (domain or realm).casefold()

    (ua, da), (ub, db) = split(a), split(b)
    # a domain is only ignored when one side does not say it: CORP\admin is not NAS\admin
    return ua == ub and (not da or not db or da == db or da.split(".")[0] == db.split(".")[0])


def _table_kind(prefix: str) -> str | None:
    """The kind of storage a config table's name is about, by its scheme (None without a known one)."""
    scheme = prefix.split(":", 1)[0].strip().lower() if ":" in prefix else ""
    return "s3" if scheme.startswith("s3") else scheme if scheme in ("smb", "sftp") else None


def _shown_table(prefix: str) -> str:
    """A config table's name for a message: whatever precedes an '@' may be a user:password, never shown."""
    if "@" not in prefix:
        return prefix
    scheme, sep, _ = prefix.partition("://")
    return (scheme + sep if sep else "") + "***" + prefix[prefix.rfind("@"):]


def _canon_prefix(prefix: str) -> str | None:
    """A config table name as the canonical URL it covers (None for tables that are not URLs)."""
    if not is_remote(prefix):
        return None
    try:
        return parse_url(prefix).url
    except UsageError:
        pass
    try:  # a whole SMB server ("smb://nas"), which is not a root by itself
        p = urlsplit(prefix)
        if p.scheme.lower() != "smb" or p.password or p.path.strip("/") or not p.hostname:
            return None
        return RemoteURL("smb", p.hostname, port=p.port, user=unquote(p.username) if p.username else None).url
    except ValueError:
        return None


def _from_keyring(u: RemoteURL, creds: Credentials, secret: str) -> None:
    """``keyring get mediaidx <credential key>``: the secret itself, or a JSON object of options."""
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:  # pragma: no cover - keyring is a dependency
        return
    keys = [u.credential_key]
    if creds.options.get("username") and u.scheme != "s3" and not u.user:
        keys.insert(0, RemoteURL(u.scheme, u.host, port=u.port, user=creds.options["username"]).credential_key)
    for key in keys:
        try:
            value = keyring.get_password(KEYRING_SERVICE, key)
        except (KeyringError, RuntimeError, OSError) as exc:  # no backend, locked keychain...
            log.debug("keyring not available: %s", type(exc).__name__)
            return
        if not value:
            continue
        parsed: Any = None
        if value.lstrip().startswith("{"):
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = None
        if isinstance(parsed, dict):
            for k, v in parsed.items():
                if k in ALLOWED[u.scheme] and k not in creds.options:
                    creds.options[k] = str(v)
                    creds.sources[k] = "keyring"
        else:
            creds.options[secret] = value
            creds.sources[secret] = "keyring"
        return


def store_in_keyring(u: RemoteURL, secret: str) -> str:
    """Save a secret for ``u``; returns the key it is filed under."""
    import keyring

    key = u.credential_key
    keyring.set_password(KEYRING_SERVICE, key, secret)
    return key
