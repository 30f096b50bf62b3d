"""`mediaidx credentials`: put a remote root's secret in the system keyring (prompted, never an argument) and
show where each of a root's options comes from, without showing secrets (docs/storage.md)."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from ..errors import UsageError
from ..storage.credentials import (
    KEYRING_SERVICE,
    SECRET_KEYS,
    parse_url,
    resolve_credentials,
    store_in_keyring,
)
from . import render
from .options import DryOpt

creds_app = typer.Typer(help="Credentials for s3://, smb:// and sftp:// roots (secrets are prompted for).",
                        no_args_is_help=True)

UrlArg = Annotated[str, typer.Argument(help="A root URL: s3://bucket/prefix, smb://\\[user@]host/share, sftp://host/path")]
EndpointOpt = Annotated[str | None, typer.Option("--endpoint-url", help="S3-compatible service for s3:// URLs.")]


@creds_app.command("set")
def set_secret(url: UrlArg, endpoint_url: EndpointOpt = None, dry_run: DryOpt = False) -> None:
    """Store the root's password (SMB, SFTP) or secret access key (S3) in the system keyring."""
    u = parse_url(url, endpoint_url)
    what = "secret access key" if u.scheme == "s3" else "password"
    if dry_run:  # nothing prompted, nothing stored
        render.out.print(f"dry run: would prompt for the {what} and store it in the keyring: service "
                         f"'{KEYRING_SERVICE}', entry '{u.credential_key}'")
        return
    secret = getpass.getpass(f"{what} for {u.credential_key}: ")
    if not secret:
        raise UsageError("nothing entered; nothing stored")
    try:
        key = store_in_keyring(u, secret)
    except Exception as exc:  # no keyring backend on this machine, locked keychain...
        raise UsageError(f"the system keyring refused it ({type(exc).__name__}); use the environment or "
                         "storage.toml instead (docs/storage.md)") from None
    render.out.print(f"stored in the keyring: service '{KEYRING_SERVICE}', entry '{key}'")


@creds_app.command("show")
def show(url: UrlArg, endpoint_url: EndpointOpt = None) -> None:
    """Which options a root gets and from where (env, config, keyring); secrets are shown as ***."""
    u = parse_url(url, endpoint_url)
    creds = resolve_credentials(u)
    render.out.print(f"{u.url}  (keyring entry '{u.credential_key}')")
    if not creds.options:
        render.out.print("  nothing configured: the backend's defaults apply (AWS chain, ssh-agent, ~/.ssh)")
    for k, v in sorted(creds.options.items()):
        shown = "***" if k in SECRET_KEYS else v
        render.out.print(f"  {k}: {shown}  ({creds.sources.get(k, 'url')})")


@creds_app.command("delete")
def delete(url: UrlArg, endpoint_url: EndpointOpt = None, dry_run: DryOpt = False) -> None:
    """Remove the root's secret from the system keyring."""
    import keyring

    u = parse_url(url, endpoint_url)
    if dry_run:
        try:
            present = keyring.get_password(KEYRING_SERVICE, u.credential_key) is not None
        except Exception as exc:
            raise UsageError(f"the system keyring cannot be read ({type(exc).__name__})") from None
        render.out.print(f"dry run: would remove '{u.credential_key}' from the keyring" if present
                         else f"dry run: nothing to remove ('{u.credential_key}' is not in the keyring)")
        return
    try:
        keyring.delete_password(KEYRING_SERVICE, u.credential_key)
    except Exception as exc:
        raise UsageError(f"nothing removed from the keyring ({type(exc).__name__})") from None
    render.out.print(f"removed '{u.credential_key}' from the keyring")


def register(app: typer.Typer) -> None:
    app.add_typer(creds_app, name="credentials")
