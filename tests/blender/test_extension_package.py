"""The Blender extension as it is shipped: wheels fetched from PyPI, validated and built with Blender's own
``blender_ext.py`` (from the bpy wheel), one zip per platform, installed into a clean Blender user folder.

The wheel files are downloaded once into build/wheels/ (a cache shared with ``make extension``); the tests
that need them are skipped, with the reason, only when pip cannot reach a package index. Everything else is
written under pytest's temporary folders.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest

from bridge.packaging import extension as ext

MANIFEST = ext.manifest()
PLATFORMS: list[str] = MANIFEST.get("platforms", [])
DISTRIBUTIONS = ("pyzmq", "msgpack", "xxhash")
PYTHONS = ((3, 11), (3, 13))  # Blender 5.0, Blender 5.1+


def _zip_name(platform: str) -> str:
    return f"{MANIFEST['id']}-{MANIFEST['version']}-{platform.replace('-', '_')}.zip"


def _serves(wheel: ext.WheelName, py: tuple[int, int]) -> bool:
    """Would Blender with Python ``py`` install this wheel (same rule as its install-time filter)?"""
    tag = f"cp{py[0]}{py[1]}"
    if "abi3" in wheel.abi_tags:
        return any(t.startswith("cp3") and int(t[3:]) <= py[1] for t in wheel.python_tags)
    return tag in wheel.python_tags or f"py{py[0]}" in wheel.python_tags


def _zip_wheels(zf: zipfile.ZipFile) -> list[str]:
    return sorted(Path(n).name for n in zf.namelist() if n.endswith(".whl"))


# ---------------------------------------------------------------------------------------- no network needed


def test_manifest_wheels_parse_and_cover_every_platform_and_python() -> None:
    wheels = ext.manifest_wheels()
    assert len(wheels) == len(MANIFEST["wheels"]) == len({w.filename for w in wheels})
    for rel in MANIFEST["wheels"]:
        assert rel.startswith("./wheels/") and rel.endswith(".whl"), rel
    versions = {(w.project, w.version) for w in wheels}
    assert {p for p, _ in versions} == set(DISTRIBUTIONS)
    assert len(versions) == len(DISTRIBUTIONS), f"one version per distribution, found {sorted(versions)}"
    missing = [
        (dist, platform, ".".join(map(str, py)))
        for dist in DISTRIBUTIONS
        for platform in PLATFORMS
        for py in PYTHONS
        if not any(w.project == dist and platform in w.blender_platforms() and _serves(w, py) for w in wheels)
    ]
    assert not missing, f"no wheel for (distribution, platform, python): {missing}"


def test_wheel_filename_parsing_and_pip_command() -> None:
    w = ext.parse_wheel_filename("./wheels/pyzmq-27.3.0-cp312-abi3-manylinux_2_26_x86_64.manylinux_2_28_x86_64.whl")
    assert (w.name, w.version, w.build) == ("pyzmq", "27.3.0", None)
    assert (w.python_tags, w.abi_tags) == (("cp312",), ("abi3",))
    assert w.platform_tags == ("manylinux_2_26_x86_64", "manylinux_2_28_x86_64")
    assert w.blender_platforms() == {"linux-x64"}
    cmd = ext.pip_download_command(w, Path("/tmp/x"), python="python")
    assert cmd[:4] == ["python", "-m", "pip", "download"]
    for flag in ("--no-deps", "--only-binary=:all:"):
        assert flag in cmd
    pairs = list(itertools.pairwise(cmd))
    for pair in [("--python-version", "3.12"), ("--abi", "abi3"), ("--implementation", "cp"),
                 ("--platform", "manylinux_2_26_x86_64"), ("--platform", "manylinux_2_28_x86_64"),
                 ("--dest", "/tmp/x")]:
        assert pair in pairs, pair
    assert cmd[-1] == "pyzmq==27.3.0"

    mac = ext.parse_wheel_filename("pyzmq-27.3.0-cp311-cp311-macosx_10_15_universal2.whl")
    assert mac.blender_platforms() == {"macos-x64", "macos-arm64"} and mac.python_version == "3.11"
    assert ext.parse_wheel_filename("msgpack-1.2.4-cp313-cp313-win_amd64.whl").blender_platforms() == {"windows-x64"}
    assert ext.parse_wheel_filename("a_b-1.0-1-py3-none-any.whl").build == "1"
    with pytest.raises(ext.ExtensionError):
        ext.parse_wheel_filename("pyzmq-27.3.0.tar.gz")


def test_makefile_extension_target() -> None:
    text = (ext.REPO / "Makefile").read_text(encoding="utf-8")
    phony = next(line for line in text.splitlines() if line.startswith(".PHONY:"))
    assert "extension" in phony.split()
    body = text.split("\nextension:", 1)[1].split("\n\n", 1)[0]
    for sub in ("wheels", "validate", "build --split-platforms"):
        assert f"-m bridge.packaging.extension {sub}" in body


def test_cli_help() -> None:
    proc = subprocess.run([sys.executable, "-m", "bridge.packaging.extension", "--help"], cwd=ext.REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for sub in ("wheels", "stage", "validate", "build", "repo"):
        assert sub in proc.stdout


# ------------------------------------------------------------------------------------------ with wheels


@pytest.fixture(scope="session")
def wheel_cache() -> Path:
    try:
        ext.download_wheels(ext.WHEEL_CACHE, log=lambda _line: None)
    except ext.WheelDownloadError as exc:
        if exc.network:
            pytest.skip(f"the manifest's wheels cannot be downloaded (no package index reachable): {exc}")
        raise
    return ext.WHEEL_CACHE


@pytest.fixture(scope="module")
def staged(wheel_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ext.stage(tmp_path_factory.mktemp("stage"), wheels=True)


@pytest.fixture(scope="module")
def split_zips(staged: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    zips = ext.build(staged, tmp_path_factory.mktemp("dist"), split_platforms=True)
    return {z.name: z for z in zips}


@pytest.mark.slow
def test_download_rejects_a_different_file_name(tmp_path: Path, wheel_cache: Path) -> None:
    # pip finds xxhash's real wheel, whose name lists three platform tags, not the one written here.
    short = ext.parse_wheel_filename("xxhash-3.6.0-cp311-cp311-manylinux_2_17_x86_64.whl")
    with pytest.raises(ext.WheelNameMismatch) as info:
        ext.download_wheels(tmp_path, wheels=[short], log=lambda _line: None)
    assert "xxhash-3.6.0-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl" \
        in str(info.value)
    assert not list(tmp_path.rglob("*.whl"))


@pytest.mark.slow
def test_unreachable_index_is_reported_as_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What the session fixture relies on to skip (rather than fail) when offline.
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # ignore pip.conf (local indexes, find-links)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    for var in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ext.WheelDownloadError) as info:
        ext.download_wheels(tmp_path, wheels=ext.manifest_wheels()[:1], log=lambda _line: None)
    assert info.value.network, str(info.value)
    assert not list(tmp_path.rglob("*.whl"))


@pytest.mark.slow
def test_wheel_cache_holds_exactly_the_manifest_files(wheel_cache: Path) -> None:
    for w in ext.manifest_wheels():
        path = wheel_cache / w.filename
        assert path.is_file() and zipfile.is_zipfile(path), path
        with zipfile.ZipFile(path) as zf:
            assert any(n.endswith(".dist-info/WHEEL") for n in zf.namelist())


@pytest.mark.slow
def test_staged_extension_validates(staged: Path) -> None:
    assert (staged / "blender_manifest.toml").is_file() and (staged / "__init__.py").is_file()
    assert sorted(p.name for p in (staged / "wheels").iterdir()) == sorted(w.filename for w in ext.manifest_wheels())
    out = ext.validate(staged)
    assert "Success" in out


@pytest.mark.slow
def test_cli_stage_and_validate(wheel_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ext.main(["--stage-dir", str(tmp_path), "validate"]) == 0, capsys.readouterr().err
    assert (tmp_path / MANIFEST["id"] / "blender_manifest.toml").is_file()


BROKEN = {
    "tagline ends with punctuation": (
        lambda t: t.replace(f'tagline = "{MANIFEST["tagline"]}"', 'tagline = "Browse a media index."'),
        "tagline",
    ),
    "tagline too long": (
        lambda t: t.replace(f'tagline = "{MANIFEST["tagline"]}"', f'tagline = "{"x" * 65}"'),
        "tagline",
    ),
    "unknown permission": (
        lambda t: t.replace("[permissions]\n", '[permissions]\ntelepathy = "Read the artist\'s mind"\n'),
        "telepathy",
    ),
    "permission reason ends with punctuation": (
        lambda t: t.replace("[permissions]\n", '[permissions]\ncamera = "Look at the plate."\n'),
        "camera",
    ),
    "missing id": (lambda t: t.replace('id = "blender_mediaidx"\n', ""), "id"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_manifest_is_rejected(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    edit, needle = BROKEN[case]
    source = ext.MANIFEST.read_text(encoding="utf-8")
    broken = edit(source)
    assert broken != source, f"{case}: the edit did not apply to blender_manifest.toml"
    copy = tmp_path / "blender_manifest.toml"
    copy.write_text(broken, encoding="utf-8")
    # The staged folder is a temporary copy with the broken manifest; the real one is not touched.
    target = ext.stage(tmp_path / "stage", wheels=False)
    base = ext.run_blender_ext(["validate", str(target)], check=False)
    (target / "blender_manifest.toml").write_text(broken, encoding="utf-8")
    with pytest.raises(ext.ExtensionError) as info:
        ext.validate(target)
    # the edit itself is what the validator rejects (not some problem the manifest already had)
    new_lines = set(str(info.value).splitlines()) - set((base.stdout + base.stderr).splitlines())
    assert any(needle in line for line in new_lines), str(info.value)
    # ... and through the command line: non-zero exit, the validator's message on stderr.
    monkeypatch.setattr(ext, "MANIFEST", copy)
    assert ext.main(["--stage-dir", str(tmp_path / "cli"), "validate", "--no-wheels"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and needle in err, err


@pytest.mark.slow
def test_split_build_writes_one_zip_per_platform(split_zips: dict[str, Path]) -> None:
    assert sorted(split_zips) == sorted(_zip_name(p) for p in PLATFORMS)


@pytest.mark.slow
@pytest.mark.parametrize("platform", PLATFORMS)
def test_split_zip_contents(platform: str, split_zips: dict[str, Path]) -> None:
    path = split_zips[_zip_name(platform)]
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        built = tomllib.loads(zf.read("blender_manifest.toml").decode())
        wheels = _zip_wheels(zf)
    code = {p.relative_to(ext.PACKAGE).as_posix() for p in ext.PACKAGE.rglob("*.py")
            if "__pycache__" not in p.parts and "tests" not in p.relative_to(ext.PACKAGE).parts}
    assert "__init__.py" in code and code <= set(names), sorted(code - set(names))
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith("tests/")]
    assert built["id"] == MANIFEST["id"] and built["build"]["generated"]["platforms"] == [platform]
    assert sorted(Path(w).name for w in built["build"]["generated"]["wheels"]) == wheels
    assert wheels == sorted(ext.wheels_for_platform(platform))
    for name in wheels:
        assert platform in ext.parse_wheel_filename(name).blender_platforms(), name
    for dist in DISTRIBUTIONS:
        for py in PYTHONS:
            assert any(w.project == dist and _serves(w, py) for w in map(ext.parse_wheel_filename, wheels)), \
                f"{path.name}: no {dist} wheel for Python {py}"
    assert "Success" in ext.validate(path)


@pytest.mark.slow
def test_linux_zip_has_only_linux_wheels(split_zips: dict[str, Path]) -> None:
    with zipfile.ZipFile(split_zips[_zip_name("linux-x64")]) as zf:
        wheels = _zip_wheels(zf)
    assert wheels == sorted([
        "pyzmq-27.3.0-cp311-cp311-manylinux_2_26_x86_64.manylinux_2_28_x86_64.whl",
        "pyzmq-27.3.0-cp312-abi3-manylinux_2_26_x86_64.manylinux_2_28_x86_64.whl",
        "msgpack-1.2.4-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl",
        "msgpack-1.2.4-cp313-cp313-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl",
        "xxhash-3.6.0-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl",
        "xxhash-3.6.0-cp313-cp313-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl",
    ])
    assert not [w for w in wheels if "win" in w or "macosx" in w]


@pytest.mark.slow
def test_self_hosted_repository(split_zips: dict[str, Path], tmp_path: Path) -> None:
    index_path = ext.generate_repo(list(split_zips.values()), tmp_path / "repo")
    assert (tmp_path / "repo" / "index.html").is_file()
    index = json.loads(index_path.read_text(encoding="utf-8"))
    entries = index["data"]
    assert sorted(p for e in entries for p in e["platforms"]) == sorted(PLATFORMS)
    for e in entries:
        assert e["id"] == MANIFEST["id"] and e["version"] == MANIFEST["version"]
        assert e["python_versions"] == ["3.11", "3.13"], e["python_versions"]
        archive = tmp_path / "repo" / e["archive_url"]
        assert archive.is_file() and archive.stat().st_size == e["archive_size"]
        assert e["archive_hash"] == "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest()
    # the CLI picks the split zips up from a dist folder
    assert ext.main(["repo", "--dist", str(next(iter(split_zips.values())).parent),
                     "--repo-dir", str(tmp_path / "repo2"), "--no-html"]) == 0
    assert len(json.loads((tmp_path / "repo2" / "index.json").read_text())["data"]) == len(PLATFORMS)


# ---------------------------------------------------------------------------- installing the linux zip

_INSTALL = textwrap.dedent('''
    import json, os, sys
    import bpy

    zip_path, repo_dir, repo_module = sys.argv[1:4]
    repos = bpy.context.preferences.extensions.repos
    for r in list(repos):
        r.enabled = False
    repos.new(name=repo_module, module=repo_module, custom_directory=repo_dir)
    result = bpy.ops.extensions.package_install_files(
        filepath=zip_path, repo=repo_module, enable_on_install=True)
    pkg = "bl_ext." + repo_module + ".blender_mediaidx"
    print("RESULT " + json.dumps({
        "result": sorted(result),
        "package": getattr(sys.modules.get(pkg), "__package__", None),
        "site_packages": os.path.join(bpy.utils.user_resource("EXTENSIONS"), ".local", "lib",
                                      "python%d.%d" % sys.version_info[:2], "site-packages"),
    }))
''')

# A second start with the same user folder, as Blender's next launch: the extension site-packages now
# exists, so Blender puts it ahead of the system site-packages (which here hold other zmq/xxhash builds).
_RESTART = textwrap.dedent('''
    import importlib.util, json, os, site, sys, types
    import bpy

    repo_dir, repo_module = sys.argv[1:3]
    ext_site = os.path.join(bpy.utils.user_resource("EXTENSIONS"), ".local", "lib",
                            "python%d.%d" % sys.version_info[:2], "site-packages")
    system = [sys.path.index(p) for p in site.getsitepackages() if p in sys.path]
    repos = bpy.context.preferences.extensions.repos
    for r in list(repos):
        r.enabled = False
    repos.new(name=repo_module, module=repo_module, custom_directory=repo_dir)
    pkg = "bl_ext." + repo_module + ".blender_mediaidx"
    enabled = bpy.ops.preferences.addon_enable(module=pkg)
    mod = sys.modules[pkg]
    import msgpack, xxhash, zmq

    ctx = zmq.Context.instance()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    a.bind("inproc://t"); b.connect("inproc://t")
    a.send(msgpack.packb({"h": xxhash.xxh3_64_hexdigest(b"plate")}))
    echoed = msgpack.unpackb(b.recv())
    a.close(0); b.close(0)
    addon_imports = sorted({
        (v.__name__, getattr(v, "__file__", None) or "")
        for m in list(sys.modules.values()) if getattr(m, "__name__", "").startswith(pkg)
        for v in vars(m).values()
        if isinstance(v, types.ModuleType) and v.__name__.partition(".")[0] in ("zmq", "msgpack", "xxhash")
    })
    print("RESULT " + json.dumps({
        "enabled": sorted(enabled),
        "package": mod.__package__,
        "ext_site": ext_site,
        "ext_site_index": sys.path.index(ext_site) if ext_site in sys.path else None,
        "system_site_index": min(system) if system else None,
        "origins": {n: importlib.util.find_spec(n).origin for n in ("zmq", "msgpack", "xxhash")},
        "files": {n: sys.modules[n].__file__ for n in ("zmq", "msgpack", "xxhash")},
        "versions": {"pyzmq": zmq.pyzmq_version(), "msgpack": ".".join(map(str, msgpack.version)),
                     "xxhash": xxhash.VERSION},
        "echo": echoed,
        "addon_imports": addon_imports,
        "cache": bpy.utils.extension_path_user(pkg, path="cache", create=True),
        "home": os.path.expanduser("~"),
    }))
    bpy.ops.preferences.addon_disable(module=pkg)
''')


def _run_blender_python(script: str, args: list[str], home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CONFIG_HOME", "PYTHONPATH", "PYTHONHOME")}
    env["HOME"] = str(home)
    path = home / "script.py"
    path.write_text(script, encoding="utf-8")
    proc = subprocess.run([sys.executable, str(path), *args], cwd=home, env=env, capture_output=True,
                          text=True, timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, (
        f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-6000:]}"
    )
    return json.loads(lines[-1].removeprefix("RESULT "))


@pytest.mark.slow
def test_install_linux_zip_into_clean_blender(split_zips: dict[str, Path], tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    repo_dir = home / "mediaidx-repo"
    repo_module = "mediaidx_pkg"
    zip_path = split_zips[_zip_name("linux-x64")]

    first = _run_blender_python(_INSTALL, [str(zip_path), str(repo_dir), repo_module], home)
    assert first["result"] == ["FINISHED"]
    assert first["package"] == f"bl_ext.{repo_module}.blender_mediaidx"
    site = Path(first["site_packages"])
    assert site == home / ".config/blender/5.0/extensions/.local/lib/python3.11/site-packages"
    assert (repo_dir / "blender_mediaidx" / "__init__.py").is_file()

    # Only the linux cp311 wheels were extracted (the cp313/abi3 and other platforms' ones were filtered).
    dist_infos = sorted(p.name for p in site.glob("*.dist-info"))
    assert dist_infos == ["msgpack-1.2.4.dist-info", "pyzmq-27.3.0.dist-info", "xxhash-3.6.0.dist-info"]
    for d in dist_infos:
        tags = [line.split(":", 1)[1].strip() for line in (site / d / "WHEEL").read_text().splitlines()
                if line.startswith("Tag:")]
        assert tags and all(t.startswith("cp311-cp311-") and "x86_64" in t and "linux" in t for t in tags), tags
    assert not [p for p in site.rglob("*") if p.suffix in (".pyd", ".dylib", ".dll")]
    assert list(site.glob("zmq/backend/cython/_zmq.cpython-311-x86_64-linux-gnu.so"))

    second = _run_blender_python(_RESTART, [str(repo_dir), repo_module], home)
    assert second["enabled"] == ["FINISHED"]
    assert second["package"] == f"bl_ext.{repo_module}.blender_mediaidx"
    assert Path(second["ext_site"]) == site
    assert second["ext_site_index"] is not None and second["system_site_index"] is not None
    assert second["ext_site_index"] < second["system_site_index"], "extension wheels must win over the system"
    for name in ("zmq", "msgpack", "xxhash"):
        assert Path(second["origins"][name]).is_relative_to(site), (name, second["origins"][name])
        assert Path(second["files"][name]).is_relative_to(site), (name, second["files"][name])
    # the environment running the tests has xxhash 4.x; 3.6.0 comes only from the bundled wheel
    assert second["versions"] == {"pyzmq": "27.3.0", "msgpack": "1.2.4", "xxhash": "3.6.0"}
    assert set(second["echo"]) == {"h"} and len(second["echo"]["h"]) == 16  # zmq + msgpack + xxhash work
    for name, file in second["addon_imports"]:
        assert Path(file).is_relative_to(site), (name, file)
    cache = Path(second["cache"])
    assert cache.is_dir() and cache.is_relative_to(home), cache
    assert cache == home / ".config/blender/5.0/extensions/.user" / repo_module / "blender_mediaidx" / "cache"
    assert Path(second["home"]) == home
