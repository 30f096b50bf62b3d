"""Root URLs and credentials: canonical forms, secrets refused in URLs, env > config > keyring."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import pytest

from bridge.errors import UsageError
from bridge.storage import open_storage
from bridge.storage.credentials import Credentials, parse_url, resolve_credentials
from bridge.storage.remote import with_endpoint


@pytest.mark.parametrize(("given", "endpoint", "canonical"), [
    ("s3://footage/proj/", None, "s3://footage/proj"),
    ("s3://footage", "http://MinIO.local:9000", "s3+http://minio.local:9000/footage"),
    ("s3://footage/a b", "https://s3.example.com", "s3+https://s3.example.com/footage/a%20b"),
    ("s3+http://127.0.0.1:9000/footage/proj", None, "s3+http://127.0.0.1:9000/footage/proj"),
    ("smb://nas.local/projects/2024/", None, "smb://nas.local/projects/2024"),
    ("smb://alice@nas.local:4445/projects", None, "smb://alice@nas.local:4445/projects"),
    ("sftp://render01:2222/srv/media", None, "sftp://render01:2222/srv/media"),
    # an IPv6 server keeps its brackets (the stored form was sftp://::1:2222/..., which did not parse again)
    ("sftp://[::1]:2222/srv/media", None, "sftp://[::1]:2222/srv/media"),
    ("smb://alice@[fd00::5]/projects", None, "smb://alice@[fd00::5]/projects"),
])
def test_canonical_root_urls(given: str, endpoint: str | None, canonical: str) -> None:
    assert parse_url(given, endpoint).url == canonical
    assert parse_url(canonical).url == canonical  # stable: the stored form parses to itself


@pytest.mark.parametrize("bad", [
    "smb://alice:hunter2@nas/share", "sftp://bob:hunter2@host/x", "s3://key:hunter2@bucket/x",
    "smb://nas", "s3://bucket/a/../b", "sftp://host/x?y=1", "s3://", "s3+http://h:1/",
])
def test_bad_root_urls_are_refused_without_echoing_secrets(bad: str) -> None:
    with pytest.raises(UsageError) as e:
        open_storage(bad)
    assert "hunter2" not in str(e.value) and "\n" not in str(e.value)


def test_endpoint_url_folds_into_s3_roots_only() -> None:
    assert with_endpoint(["s3://b/p", "/local"], "http://127.0.0.1:9000") == ["s3+http://127.0.0.1:9000/b/p", "/local"]
    with pytest.raises(UsageError):
        with_endpoint(["/local"], "http://127.0.0.1:9000")
    with pytest.raises(UsageError):
        parse_url("s3://b", "http://user:pw@host:9000")
    with pytest.raises(UsageError):
        open_storage("/local/path", endpoint_url="http://x:1")


class MemoryKeyring:
    """A keyring backend in memory (the real one is the OS's: Secret Service, Keychain, Credential Locker)."""

    def __init__(self) -> None:
        import keyring.backend

        class Backend(keyring.backend.KeyringBackend):
            priority = 1  # type: ignore[assignment]
            store: ClassVar[dict[tuple[str, str], str]] = {}

            def get_password(self, service: str, username: str) -> str | None:
                return self.store.get((service, username))

            def set_password(self, service: str, username: str, password: str) -> None:
                self.store[(service, username)] = password

            def delete_password(self, service: str, username: str) -> None:
                self.store.pop((service, username), None)

        self.backend = Backend()


@pytest.fixture
def memory_keyring():
    import keyring

    old = keyring.get_keyring()
    mk = MemoryKeyring()
    keyring.set_keyring(mk.backend)
    yield mk.backend
    keyring.set_keyring(old)


def test_env_beats_config_beats_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memory_keyring) -> None:
    from bridge.storage.credentials import store_in_keyring

    for var in ("MEDIAIDX_SMB_USER", "MEDIAIDX_SMB_PASSWORD", "MEDIAIDX_S3_SECRET_ACCESS_KEY",
                "MEDIAIDX_S3_ACCESS_KEY_ID"):
        monkeypatch.delenv(var, raising=False)
    conf = tmp_path / "storage.toml"
    conf.write_text('["smb://nas.local"]\nusername = "alice"\n\n'
                    '["smb://nas.local/projects/secret"]\nusername = "bob"\npassword = "from-config"\n'
                    '["s3+http://minio:9000/footage"]\naccess_key_id = "AKID"\n')
    os.chmod(conf, 0o600)
    monkeypatch.setenv("MEDIAIDX_STORAGE_CONFIG", str(conf))
    u = parse_url("smb://nas.local/projects/2024")
    assert store_in_keyring(parse_url("smb://alice@nas.local/x"), "from-keyring") == "smb://alice@nas.local"
    c = resolve_credentials(u)
    assert c.options == {"username": "alice", "password": "from-keyring"} and c.sources["password"] == "keyring"
    assert "from-keyring" not in repr(c) and c.scrub("bad password from-keyring") == "bad password ***"
    # the most specific table wins, and a password there means the keyring is not asked
    c = resolve_credentials(parse_url("smb://nas.local/projects/secret/plates"))
    assert c.options == {"username": "bob", "password": "from-config"} and c.sources["password"] == "config"
    monkeypatch.setenv("MEDIAIDX_SMB_PASSWORD", "from-env")
    assert resolve_credentials(u).options["password"] == "from-env"
    # S3: the key id from the config, the secret from the keyring under the bucket's key
    memory_keyring.set_password("mediaidx", "s3+http://minio:9000/footage", "s3-secret")
    c = resolve_credentials(parse_url("s3+http://minio:9000/footage/proj"))
    assert c.options == {"access_key_id": "AKID", "secret_access_key": "s3-secret"}


def test_a_config_with_secrets_must_be_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "storage.toml"
    conf.write_text('["sftp://host"]\npassword = "pw"\n')
    os.chmod(conf, 0o644)
    monkeypatch.setenv("MEDIAIDX_STORAGE_CONFIG", str(conf))
    with pytest.raises(UsageError, match="chmod 600"):
        resolve_credentials(parse_url("sftp://host/x"), use_keyring=False)
    conf.write_text('["sftp://host"]\npasword = "typo"\n')
    os.chmod(conf, 0o600)
    with pytest.raises(UsageError, match="unknown option 'pasword'"):
        resolve_credentials(parse_url("sftp://host/x"), use_keyring=False)


def test_a_user_in_the_root_url_keeps_its_server_table_and_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 memory_keyring) -> None:
    """smb://alice@nas/...: the server's table (domain) still applies, and alice, not the environment's user,
    is who logs in, with alice's keyring entry (a password filed for alice was sent as bob's)."""
    for var in ("MEDIAIDX_SMB_USER", "MEDIAIDX_SMB_PASSWORD", "MEDIAIDX_SMB_DOMAIN"):
        monkeypatch.delenv(var, raising=False)
    conf = tmp_path / "storage.toml"
    conf.write_text('["smb://nas.local"]\ndomain = "STUDIO"\n\n["smb://bob@nas.local"]\ndomain = "BOBS"\n')
    monkeypatch.setenv("MEDIAIDX_STORAGE_CONFIG", str(conf))
    memory_keyring.set_password("mediaidx", "smb://alice@nas.local", "alice-pw")
    monkeypatch.setenv("MEDIAIDX_SMB_USER", "bob")
    c = resolve_credentials(parse_url("smb://alice@nas.local/projects"))
    assert c.options == {"domain": "STUDIO", "username": "alice", "password": "alice-pw"}
    assert c.sources["username"] == "url" and c.sources["domain"] == "config"
    # a table naming a user covers that user only
    assert resolve_credentials(parse_url("smb://bob@nas.local/p"), use_keyring=False).options["domain"] == "BOBS"


def test_a_config_table_that_is_not_a_storage_url_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "storage.toml"
    conf.write_text('["smb:/nas.local"]\ndomain = "STUDIO"\n')
    monkeypatch.setenv("MEDIAIDX_STORAGE_CONFIG", str(conf))
    with pytest.raises(UsageError, match=r"\[smb:/nas.local\] is not a storage URL"):
        resolve_credentials(parse_url("smb://nas.local/projects"), use_keyring=False)


def test_another_accounts_password_is_not_sent_as_the_url_users(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 memory_keyring) -> None:
    """The URL's user logs in with the URL user's password: a password that came with another user name (the
    environment's MEDIAIDX_SMB_USER, a table's username) would fail and count towards locking the account."""
    for var in ("MEDIAIDX_SMB_USER", "MEDIAIDX_SMB_PASSWORD", "MEDIAIDX_SMB_DOMAIN"):
        monkeypatch.delenv(var, raising=False)
    conf = tmp_path / "storage.toml"
    conf.write_text('["smb://nas.local/finals"]\nusername = "finals-ro"\npassword = "ro-pw"\n')
    os.chmod(conf, 0o600)
    monkeypatch.setenv("MEDIAIDX_STORAGE_CONFIG", str(conf))
    memory_keyring.set_password("mediaidx", "smb://render@nas.local", "render-pw")
    memory_keyring.set_password("mediaidx", "smb://alice@nas.local", "alice-pw")
    c = resolve_credentials(parse_url("smb://render@nas.local/finals/x"))
    assert (c.options["username"], c.options["password"], c.sources["password"]) == ("render", "render-pw", "keyring")
    assert resolve_credentials(parse_url("smb://nas.local/finals/x")).options == {"username": "finals-ro",
                                                                                 "password": "ro-pw"}
    monkeypatch.setenv("MEDIAIDX_SMB_USER", "bob")
    monkeypatch.setenv("MEDIAIDX_SMB_PASSWORD", "bob-pw")
    c = resolve_credentials(parse_url("smb://alice@nas.local/p"))
    assert (c.options["username"], c.options["password"]) == ("alice", "alice-pw")
    # a password given alone (no user name beside it) is still used for the URL's user, as always
    monkeypatch.delenv("MEDIAIDX_SMB_USER")
    assert resolve_credentials(parse_url("smb://alice@nas.local/p")).options["password"] == "bob-pw"


@pytest.mark.parametrize("env_user", ["Render", "RENDER", "STUDIO\\render", "studio\\Render", "render@studio.local"])
def test_an_smb_password_for_the_same_user_written_otherwise_is_kept(monkeypatch: pytest.MonkeyPatch,
                                                                     memory_keyring, env_user: str) -> None:
    """SMB user names ignore case and are often written DOMAIN\\user or user@realm: MEDIAIDX_SMB_USER=STUDIO\\render
    with its password names the same account as smb://render@nas, so the password is still sent (a setup that
    worked must keep logging in). SFTP (Unix) user names are case-sensitive: there another case is another user."""
    for var in ("MEDIAIDX_SMB_DOMAIN", "MEDIAIDX_SFTP_KEY_FILE", "MEDIAIDX_SFTP_PASSPHRASE"):
        monkeypatch.delenv(var, raising=False)
    env = {"MEDIAIDX_SMB_USER": env_user, "MEDIAIDX_SMB_PASSWORD": "render-pw"}
    c = resolve_credentials(parse_url("smb://render@nas.local/projects"), config={}, environ=env, use_keyring=False)
    assert (c.options["username"], c.options.get("password")) == ("render", "render-pw")
    # another account written the same ways is still another account
    for other_user in ("Renderer", "STUDIO\\bob", "render\\bob", "bob@render"):
        other = {"MEDIAIDX_SMB_USER": other_user, "MEDIAIDX_SMB_PASSWORD": "x-pw"}
        c = resolve_credentials(parse_url("smb://render@nas.local/projects"), config={}, environ=other,
                                use_keyring=False)
        assert "password" not in c.options, other_user
    sftp = {"MEDIAIDX_SFTP_USER": "Render", "MEDIAIDX_SFTP_PASSWORD": "pw"}
    c = resolve_credentials(parse_url("sftp://render@host/srv"), config={}, environ=sftp, use_keyring=False)
    assert "password" not in c.options


def test_an_smb_password_of_another_domain_is_not_sent() -> None:
    """The domain was dropped from both names: NAS\\admin's password was sent as CORP\\admin's (a failed login
    that counts towards locking CORP\\admin). A domain is ignored only when one of the two names has none."""
    url = parse_url("smb://CORP%5Cadmin@srv/share")
    for env_user, kept in (("NAS\\admin", False), ("admin@other.example", False), ("corp\\ADMIN", True),
                           ("admin", True), ("admin@corp.example", True)):
        env = {"MEDIAIDX_SMB_USER": env_user, "MEDIAIDX_SMB_PASSWORD": "pw"}
        c = resolve_credentials(url, config={}, environ=env, use_keyring=False)
        assert ("password" in c.options) is kept, env_user


def test_an_s3_endpoint_the_client_refuses_is_told_what_is_wrong() -> None:
    """An IDN endpoint host is refused for its non-ASCII letters (with the form to write instead), not for a '_'
    it does not have."""
    with pytest.raises(UsageError) as e:
        parse_url("s3+http://mínio.local:9000/footage")
    assert "'_'" not in str(e.value) and "ASCII" in str(e.value) and "xn--mnio-vpa.local" in str(e.value)
    with pytest.raises(UsageError) as e:
        parse_url("s3+http://my_minio:9000/footage")
    assert "'_'" in str(e.value)


def test_a_broken_table_name_never_shows_a_password_and_stops_only_its_kind(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "storage.toml"
    conf.write_text('["smb://alice:Hunter2-secret@nas.local"]\ndomain = "X"\n\n'
                    '["s3+https://minio.studio:9000"]\nregion = "eu"\n')
    os.chmod(conf, 0o600)
    monkeypatch.setenv("MEDIAIDX_STORAGE_CONFIG", str(conf))
    with pytest.raises(UsageError) as err:
        resolve_credentials(parse_url("smb://nas.local/projects"), use_keyring=False)
    assert "Hunter2" not in str(err.value) and "smb://***@nas.local" in str(err.value)
    with pytest.raises(UsageError, match=r"s3\+https://minio.studio:9000\] is not a storage URL"):
        resolve_credentials(parse_url("s3+https://minio.studio:9000/footage"), use_keyring=False)
    # an SFTP root is not stopped by broken S3 and SMB tables
    assert resolve_credentials(parse_url("sftp://host/x"), use_keyring=False).options == {}


def test_storages_pickle_for_workers_without_reconnecting() -> None:
    import pickle

    st = open_storage("sftp://render01:2222/srv/media")
    st.creds = Credentials({"username": "u", "password": "p"})  # type: ignore[attr-defined]
    a, b = pickle.loads(pickle.dumps(st)), pickle.loads(pickle.dumps(st))
    assert a is b and a.url == st.url and a.creds.options == {"username": "u", "password": "p"}


def test_credentials_command_prompts_stores_and_shows_without_secrets(monkeypatch: pytest.MonkeyPatch,
                                                                     memory_keyring, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bridge.cli.app import app

    monkeypatch.setenv("MEDIAIDX_STORAGE_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.delenv("MEDIAIDX_SFTP_PASSWORD", raising=False)
    monkeypatch.setattr("getpass.getpass", lambda prompt: "typed-secret-42")
    runner = CliRunner()
    r = runner.invoke(app, ["credentials", "set", "sftp://media@render01:2222/srv", "--dry-run"])
    assert r.exit_code == 0 and "entry 'sftp://media@render01:2222'" in r.output  # no prompt, nothing stored
    assert memory_keyring.get_password("mediaidx", "sftp://media@render01:2222") is None
    r = runner.invoke(app, ["credentials", "set", "sftp://media@render01:2222/srv"])
    assert r.exit_code == 0 and "sftp://media@render01:2222" in r.output and "typed-secret-42" not in r.output
    assert memory_keyring.get_password("mediaidx", "sftp://media@render01:2222") == "typed-secret-42"
    r = runner.invoke(app, ["credentials", "show", "sftp://media@render01:2222/srv/plates"])
    assert r.exit_code == 0 and "password: ***  (keyring)" in r.output and "typed-secret-42" not in r.output
    r = runner.invoke(app, ["credentials", "delete", "sftp://media@render01:2222/srv", "--dry-run"])
    assert r.exit_code == 0 and "would remove" in r.output
    assert memory_keyring.get_password("mediaidx", "sftp://media@render01:2222") == "typed-secret-42"
    r = runner.invoke(app, ["credentials", "delete", "sftp://media@render01:2222/srv"])
    assert r.exit_code == 0 and memory_keyring.get_password("mediaidx", "sftp://media@render01:2222") is None
