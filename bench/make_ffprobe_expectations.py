"""Regenerate tests/data/ffprobe_corpus.json: ffprobe's answers for the corpus audio and video files.

Run:  .venv/bin/python bench/make_ffprobe_expectations.py [--corpus DIR] [--ffprobe /usr/bin/ffprobe]

tests/test_probe.py compares probe_file() with these stored answers, so the test suite needs neither
ffprobe nor network access. Keys are corpus-relative paths; each value is ffprobe's -show_format
-show_streams JSON without the machine-specific file name.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = Path(os.environ.get("MEDIAIDX_CORPUS", REPO.parent / "shared" / "corpus"))
OUT = REPO / "tests" / "data" / "ffprobe_corpus.json"


def ffprobe_json(ffprobe: str, path: Path) -> dict:
    cmd = [ffprobe, "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)]
    data = json.loads(subprocess.run(cmd, capture_output=True, check=True, text=True).stdout)
    data.get("format", {}).pop("filename", None)
    return data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--ffprobe", default="/usr/bin/ffprobe")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)

    version = subprocess.run([args.ffprobe, "-version"], capture_output=True, text=True, check=True).stdout
    files = sorted(p for sub in ("video", "audio") for p in (args.corpus / sub).rglob("*") if p.is_file())
    if not files:
        print(f"no corpus files under {args.corpus}", file=sys.stderr)
        return 2
    result = {
        "_about": {
            "generator": "bench/make_ffprobe_expectations.py",
            "command": "ffprobe -v error -show_format -show_streams -of json FILE",
            "ffprobe_version": version.splitlines()[0],
        },
        "files": {p.relative_to(args.corpus).as_posix(): ffprobe_json(args.ffprobe, p) for p in files},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {len(files)} entries to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
