"""Stage, validate and build the Blender extension; generate a self-hosted extension repository.

The repository keeps `blender_manifest.toml` at the top and the add-on code in `blender_mediaidx/`; Blender
wants them side by side with `./wheels/`. ``stage`` assembles that layout under build/extension/.

Command line (``python -m bridge.packaging.extension …``; ``make extension`` runs wheels + validate + build
--split-platforms)::

    wheels                      download the exact wheel files the manifest lists into build/wheels/ (a cache)
    stage                       build/extension/<id>/ = add-on code + manifest + wheels/
    validate                    stage, then `blender_ext.py validate` the staged folder
    build [--split-platforms]   stage, then `blender_ext.py build` into dist/ (one zip per platform when split)
    repo                        a static extension repository (`blender_ext.py server-generate`) from the
                                zips in dist/, written to dist/repo/

The add-on needs the external mediaidx bridge, which the extensions platform's moderation rules do not
accept ("should not have functionality which is extended by external software"), so it is distributed from
a self-hosted repository: serve dist/repo/ with any static file server and add its ``index.json`` URL as a
remote repository in Blender (Preferences → Get Extensions → Repositories).

The extension tool is ``blender_ext.py`` from the installed ``bpy`` wheel (standard library only), run with
this Python; no Blender binary is needed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "blender_mediaidx"
MANIFEST = REPO / "blender_manifest.toml"
BUILD = REPO / "build"
WHEEL_CACHE = BUILD / "wheels"
STAGE_ROOT = BUILD / "extension"
DIST = REPO / "dist"
REPO_DIR = DIST / "repo"
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".*", "tests")

BLENDER_SERIES = "5.0"  # the bpy wheel's scripts folder (bpy/<series>/scripts/...)
BLENDER_EXT_REL = f"{BLENDER_SERIES}/scripts/addons_core/bl_pkg/cli/blender_ext.py"


class ExtensionError(RuntimeError):
    """A packaging step failed; the message says what and, where there is one, the tool's output."""


class WheelDownloadError(ExtensionError):
    """pip could not download a wheel (offline, index unreachable, no such release or tags)."""

    def __init__(self, message: str, *, network: bool) -> None:
        super().__init__(message)
        self.network = network  # the output looks like a connection problem rather than a missing file


class WheelNameMismatch(ExtensionError):
    """pip downloaded a file whose name is not the one the manifest lists."""


_NETWORK_MARKERS = (
    "NewConnectionError", "Failed to establish a new connection", "Temporary failure in name resolution",
    "Name or service not known", "Network is unreachable", "Connection refused", "ConnectTimeout",
    "ReadTimeout", "timed out", "ProxyError", "Could not fetch URL", "SSLError", "ConnectionError",
)


def manifest(path: Path | None = None) -> dict:
    """The parsed manifest (the repository's blender_manifest.toml unless ``path`` is given)."""
    path = MANIFEST if path is None else Path(path)
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ExtensionError(f"{path}: not valid TOML: {exc}") from exc


def stage(dest_repo: Path, *, wheels: bool = True) -> Path:
    """Write ``dest_repo/<id>/`` = add-on code + manifest (+ wheels/ when ``wheels``). Returns that folder."""
    m = manifest()
    if not isinstance(m.get("id"), str) or not m["id"]:
        raise ExtensionError(f"{MANIFEST}: the manifest needs an `id` (the extension's module name)")
    target = Path(dest_repo) / m["id"]
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(PACKAGE, target, ignore=IGNORE)
    text = MANIFEST.read_text(encoding="utf-8")
    if not wheels and "wheels = [" in text:
        # A development install uses the wheels already in the Python environment.
        start = text.index("wheels = [")
        end = text.index("]", start) + 1
        text = text[:start] + text[end:]
    (target / "blender_manifest.toml").write_text(text, encoding="utf-8")
    if wheels:
        (target / "wheels").mkdir()
        for rel in m.get("wheels", []):
            name = Path(rel).name
            src = WHEEL_CACHE / name
            if not src.is_file():
                raise FileNotFoundError(f"{src}: run `python -m bridge.packaging.extension wheels` first")
            shutil.copy2(src, target / "wheels" / name)
    return target


# --------------------------------------------------------------------------------------------------------
# Wheel file names (https://packaging.python.org/en/latest/specifications/binary-distribution-format/)

_WHEEL_RE = re.compile(
    r"^(?P<name>[^\s-]+?)-(?P<version>[^\s-]+?)(?:-(?P<build>\d[^\s-]*))?"
    r"-(?P<python>[^\s-]+?)-(?P<abi>[^\s-]+?)-(?P<platform>[^\s-]+?)\.whl$"
)


@dataclass(frozen=True)
class WheelName:
    filename: str
    name: str  # distribution name as written in the file name (normalised: `_` for `-`)
    version: str
    build: str | None
    python_tags: tuple[str, ...]
    abi_tags: tuple[str, ...]
    platform_tags: tuple[str, ...]

    @property
    def project(self) -> str:
        """The PyPI project name to ask pip for."""
        return re.sub(r"[-_.]+", "-", self.name).lower()

    @property
    def python_version(self) -> str:
        """``X.Y`` for pip's --python-version, from the first CPython/generic tag (cp311 -> 3.11)."""
        for tag in self.python_tags:
            m = re.fullmatch(r"(?:cp|py)(\d)(\d+)?", tag)
            if m:
                return m.group(1) + (f".{m.group(2)}" if m.group(2) else "")
        raise ExtensionError(f"{self.filename}: no CPython version in python tag {'.'.join(self.python_tags)}")

    @property
    def implementation(self) -> str:
        return "cp" if any(t.startswith("cp") for t in self.python_tags) else "py"

    def blender_platforms(self) -> set[str]:
        """Blender platform names (linux-x64, windows-x64, macos-arm64, macos-x64, …) this wheel serves;
        ``{"any"}`` for pure wheels."""
        out: set[str] = set()
        for tag in self.platform_tags:
            if tag == "any":
                out.add("any")
                continue
            arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}
            if tag.startswith(("manylinux", "musllinux", "linux")):
                a = next((v for k, v in arch.items() if tag.endswith("_" + k)), tag.rpartition("_")[2])
                out.add(f"linux-{a}")
            elif tag.startswith("win"):
                out.add({"win_amd64": "windows-x64", "win_arm64": "windows-arm64"}.get(tag, tag))
            elif tag.startswith("macosx"):
                if tag.endswith("_universal2"):
                    out.update({"macos-x64", "macos-arm64"})
                else:
                    a = next((v for k, v in arch.items() if tag.endswith("_" + k)), tag.rpartition("_")[2])
                    out.add(f"macos-{a}")
            else:
                out.add(tag)
        return out


def parse_wheel_filename(filename: str) -> WheelName:
    base = Path(filename).name
    m = _WHEEL_RE.match(base)
    if not m:
        raise ExtensionError(f"not a wheel file name: {filename!r}")
    return WheelName(
        filename=base,
        name=m["name"],
        version=m["version"],
        build=m["build"],
        python_tags=tuple(m["python"].split(".")),
        abi_tags=tuple(m["abi"].split(".")),
        platform_tags=tuple(m["platform"].split(".")),
    )


def manifest_wheels(m: dict | None = None) -> list[WheelName]:
    m = manifest() if m is None else m
    return [parse_wheel_filename(rel) for rel in m.get("wheels", [])]


def wheels_for_platform(platform: str, m: dict | None = None) -> list[str]:
    """File names of the manifest's wheels that a ``--split-platforms`` zip for ``platform`` should hold."""
    return [w.filename for w in manifest_wheels(m) if {platform, "any"} & w.blender_platforms()]


def pip_download_command(wheel: WheelName, dest: Path, *, python: str = sys.executable) -> list[str]:
    """``pip download`` for exactly this wheel: no dependencies, binary only, the wheel's own tags."""
    cmd = [
        python, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
        "--implementation", wheel.implementation, "--python-version", wheel.python_version,
    ]
    for abi in wheel.abi_tags:
        cmd += ["--abi", abi]
    for plat in wheel.platform_tags:
        cmd += ["--platform", plat]
    cmd += ["--dest", str(dest), f"{wheel.project}=={wheel.version}"]
    return cmd


def _index_answers(wheel: WheelName, *, python: str = sys.executable) -> bool:
    """Does any configured package index list ``wheel``'s project? pip reports an unreachable index and a
    wheel with no matching tags the same way ("from versions: none"); this tells them apart."""
    proc = subprocess.run([python, "-m", "pip", "index", "versions", "--disable-pip-version-check",
                           wheel.project], capture_output=True, text=True)
    return proc.returncode == 0 and wheel.project in proc.stdout.lower()


def download_wheels(
    dest: Path = WHEEL_CACHE,
    *,
    force: bool = False,
    log: Callable[[str], None] = print,
    wheels: Iterable[WheelName] | None = None,
) -> list[Path]:
    """Download every wheel file the manifest lists into ``dest`` (skipping those already there unless
    ``force``). Fails with ExtensionError when pip fails or saves a file under a different name."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    for wheel in manifest_wheels() if wheels is None else wheels:
        target = dest / wheel.filename
        out.append(target)
        if target.is_file() and not force:
            log(f"cached    {wheel.filename}")
            continue
        with tempfile.TemporaryDirectory(prefix=".dl-", dir=dest) as tmp:
            cmd = pip_download_command(wheel, Path(tmp))
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                output = proc.stdout + proc.stderr
                network = any(marker in output for marker in _NETWORK_MARKERS) or not _index_answers(wheel)
                raise WheelDownloadError(
                    f"pip download failed for {wheel.filename} (exit {proc.returncode})"
                    f"{' (no package index answered)' if network else ''}:\n"
                    f"$ {' '.join(cmd)}\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}",
                    network=network,
                )
            got = sorted(p.name for p in Path(tmp).glob("*.whl"))
            if got != [wheel.filename]:
                raise WheelNameMismatch(
                    f"pip download of {wheel.project}=={wheel.version} for the manifest's {wheel.filename} "
                    f"saved {got or 'nothing'}; fix the manifest's wheel list (or the tags) so the names agree"
                )
            os.replace(Path(tmp) / wheel.filename, target)
        log(f"download  {wheel.filename}")
    return out


# --------------------------------------------------------------------------------------------------------
# blender_ext.py (Blender's extension command line, shipped inside the bpy wheel)


def blender_ext_script() -> Path:
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise ExtensionError("bpy (Blender as a Python module) is not installed: `pip install bpy==5.0.1`")
    script = Path(next(iter(spec.submodule_search_locations))) / BLENDER_EXT_REL
    if not script.is_file():
        raise ExtensionError(f"{script}: blender_ext.py not found in the installed bpy")
    return script


def run_blender_ext(args: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``blender_ext.py <args>`` with this Python; ExtensionError with its output when it fails."""
    cmd = [sys.executable, str(blender_ext_script()), *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        msg = (proc.stdout + proc.stderr).strip()
        raise ExtensionError(f"blender_ext.py {args[0]} failed (exit {proc.returncode}):\n{msg}")
    return proc


def validate(path: Path) -> str:
    """``blender_ext.py validate`` on a staged folder or a zip; returns its output, raises ExtensionError."""
    return run_blender_ext(["validate", str(path)]).stdout.strip()


def build(source: Path, output_dir: Path = DIST, *, split_platforms: bool = False) -> list[Path]:
    """``blender_ext.py build`` of a staged folder into ``output_dir``; returns the zips it wrote (old zips of
    the same id and version are removed first)."""
    m = manifest(Path(source) / "blender_manifest.toml")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{m['id']}-{m['version']}"
    for old in [*output_dir.glob(f"{stem}.zip"), *output_dir.glob(f"{stem}-*.zip")]:
        old.unlink()
    args = ["build", "--source-dir", str(source), "--output-dir", str(output_dir)]
    if split_platforms:
        args.append("--split-platforms")
    run_blender_ext(args)
    zips = sorted([*output_dir.glob(f"{stem}.zip"), *output_dir.glob(f"{stem}-*.zip")])
    if not zips:
        raise ExtensionError(f"blender_ext.py build wrote no {stem}*.zip into {output_dir}")
    return zips


def dist_zips(dist: Path = DIST, m: dict | None = None) -> list[Path]:
    """The built zips of the manifest's id and version in ``dist``: the per-platform ones when there are any,
    else the single all-platform zip."""
    m = manifest() if m is None else m
    stem = f"{m['id']}-{m['version']}"
    split = sorted(Path(dist).glob(f"{stem}-*.zip"))
    if split:
        return split
    single = Path(dist) / f"{stem}.zip"
    return [single] if single.is_file() else []


def generate_repo(zips: Sequence[Path], repo_dir: Path = REPO_DIR, *, html: bool = True) -> Path:
    """Copy ``zips`` into ``repo_dir`` and run ``blender_ext.py server-generate`` there; returns the
    ``index.json`` path. Zips of other extensions/versions already in ``repo_dir`` stay listed."""
    if not zips:
        raise ExtensionError("no extension zips: run `python -m bridge.packaging.extension build` first")
    repo_dir = Path(repo_dir)
    repo_dir.mkdir(parents=True, exist_ok=True)
    for z in zips:
        if Path(z).resolve().parent != repo_dir.resolve():
            shutil.copy2(z, repo_dir / Path(z).name)
    args = ["server-generate", "--repo-dir", str(repo_dir)]
    if html:
        args.append("--html")
    run_blender_ext(args)
    index = repo_dir / "index.json"
    if not index.is_file():
        raise ExtensionError(f"blender_ext.py server-generate wrote no {index}")
    return index


# --------------------------------------------------------------------------------------------------------
# Command line


def _stage_dir(args: argparse.Namespace) -> Path:
    return stage(Path(args.stage_dir), wheels=not getattr(args, "no_wheels", False))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bridge.packaging.extension", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage-dir", default=str(STAGE_ROOT), help="where <id>/ is staged (%(default)s)")
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("wheels", help="download the manifest's wheel files into the cache")
    p.add_argument("--dest", default=str(WHEEL_CACHE), help="wheel cache (%(default)s)")
    p.add_argument("--force", action="store_true", help="download again even when cached")

    p = sub.add_parser("stage", help="assemble <stage-dir>/<id>/ (code + manifest + wheels)")
    p.add_argument("--no-wheels", action="store_true", help="leave the wheels out (development install)")

    p = sub.add_parser("validate", help="stage, then blender_ext.py validate")
    p.add_argument("--no-wheels", action="store_true", help="validate without the wheels")

    p = sub.add_parser("build", help="stage, then blender_ext.py build")
    p.add_argument("--split-platforms", action="store_true", help="one zip per platform in the manifest")
    p.add_argument("--output-dir", default=str(DIST), help="where the zips go (%(default)s)")

    p = sub.add_parser("repo", help="static extension repository from the built zips (server-generate)")
    p.add_argument("--dist", default=str(DIST), help="where the built zips are (%(default)s)")
    p.add_argument("--repo-dir", default=str(REPO_DIR), help="repository folder (%(default)s)")
    p.add_argument("--no-html", action="store_true", help="write index.json only, no index.html")

    args = parser.parse_args(argv)
    try:
        if args.cmd == "wheels":
            paths = download_wheels(Path(args.dest), force=args.force)
            print(f"{len(paths)} wheels in {args.dest}")
        elif args.cmd == "stage":
            print(_stage_dir(args))
        elif args.cmd == "validate":
            target = _stage_dir(args)
            out = validate(target)
            print(out or f"valid: {target}")
        elif args.cmd == "build":
            target = stage(Path(args.stage_dir), wheels=True)
            for z in build(target, Path(args.output_dir), split_platforms=args.split_platforms):
                print(f"{z}  ({z.stat().st_size:,} bytes)")
        elif args.cmd == "repo":
            index = generate_repo(dist_zips(Path(args.dist)), Path(args.repo_dir), html=not args.no_html)
            print(f"{index}\nserve {index.parent} over HTTP(S) and add <url>/index.json as a remote "
                  "repository in Blender")
    except (ExtensionError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
