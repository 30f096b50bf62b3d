"""`make demo`: build a small demo library, index it into the default catalog, show what was found.

The library is generated in-process (clips at 23.976, 25 and 29.97 fps with timecode, audio and
camera metadata, stills with EXIF) so it needs no download. When ../shared/corpus (real camera and
phone files) is present beside the repository it is indexed too, read-only.
"""

from __future__ import annotations

import argparse
import os
from fractions import Fraction
from pathlib import Path

from . import synth
from .cli import render
from .cli.progress import ScanProgress
from .indexer import MediaIndexer

REPO = Path(__file__).resolve().parents[1]


def build_demo_library(dest: Path) -> Path:
    """Generate the demo clips once (skips files already there)."""
    shoot = dest / "2024-05-06 Harbour shoot"
    stills = dest / "Stills"
    audio = dest / "Sound"
    for d in (shoot / "A-cam", shoot / "B-cam", stills, audio):
        d.mkdir(parents=True, exist_ok=True)
    jobs = [
        (shoot / "A-cam" / "A001_C001_0506.mov", dict(
            width=640, height=360, fps=Fraction(24000, 1001), frames=48, audio=synth.tone(440),
            timecode="10:00:00:00", metadata={"creation_time": "2024-05-06T07:30:00.000000Z", "make": "Acme",
                                              "model": "Cine One"})),
        (shoot / "A-cam" / "A001_C002_0506.mov", dict(
            width=640, height=360, fps=Fraction(24000, 1001), frames=36, audio=synth.tone(660),
            timecode="10:04:12:08", metadata={"creation_time": "2024-05-06T07:34:12.000000Z", "make": "Acme",
                                              "model": "Cine One"})),
        (shoot / "B-cam" / "B001_C001_0506.mp4", dict(
            width=480, height=270, fps=25, frames=50, audio=synth.tone(550),
            metadata={"creation_time": "2024-05-06T07:30:02.000000Z"})),
        (shoot / "B-cam" / "B001_C002_0506_phone.mp4", dict(
            width=270, height=480, fps=Fraction(30000, 1001), frames=30, audio=synth.silence(),
            metadata={"creation_time": "2024-05-06T07:41:00.000000Z"})),
    ]
    for path, kw in jobs:
        if not path.exists():
            synth.make_video(path, **kw)  # type: ignore[arg-type]
    for i, (model, when) in enumerate((("Acme Still 5", "2024:05:06 08:12:00"), ("Acme Still 5", "2024:05:06 08:15:31"))):
        p = stills / f"IMG_{1001 + i}.jpg"
        if not p.exists():
            synth.make_image(p, width=800, height=600, exif={0x010F: "Acme", 0x0110: model},
                             exif_ifd={0x9003: when})
    wav = audio / "Harbour_ambience_48k.wav"
    if not wav.exists():
        synth.make_audio(wav, seconds=3.0, sample_rate=48000, channels=2, signal=synth.tone(220, 0.1))
    return dest


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--library", type=Path, default=REPO / "build" / "demo-library")
    ap.add_argument("--catalog", default=None, help="default: the per-user catalog (or MEDIAIDX_CATALOG)")
    ap.add_argument("--no-corpus", action="store_true", help="do not index ../shared/corpus even if present")
    ap.add_argument("--serve", action="store_true",
                    help="then run `mediaidx serve` on the demo catalog (bridge + dashboard) until Ctrl-C")
    ap.add_argument("--http", default=None, help="dashboard address for --serve (default 127.0.0.1:8765)")
    args = ap.parse_args(argv)

    lib = build_demo_library(args.library)
    roots = [str(lib)]
    corpus = Path(os.environ.get("MEDIAIDX_CORPUS", REPO.parent / "shared" / "corpus"))
    if not args.no_corpus and (corpus / "MANIFEST.tsv").is_file():
        roots.append(str(corpus))
    with MediaIndexer(args.catalog) as ix:
        render.out.print(f"[bold]catalog[/bold] {ix.catalog_path}")
        with ScanProgress() as progress:
            summary = ix.scan(*roots, thumbs=True, progress=progress)
        render.print_scan_summary(summary)
        render.out.print(render.asset_table(ix.get_recent(15), title="recently added"))
        render.print_stats(ix.stats())
        render.out.print("\nTry: [bold].venv/bin/mediaidx search harbour[/bold], "
                         "[bold].venv/bin/mediaidx show 1[/bold], [bold].venv/bin/mediaidx stats[/bold]")
        settings = ix.settings
    if args.serve:  # the bridge and the dashboard on this catalog, in the foreground
        from .cli.app import main as cli_main

        render.out.print("\n[bold]Starting mediaidx serve[/bold]: open the dashboard address below (Ctrl-C stops)")
        cli_main(["--catalog", str(settings.catalog_path), "--cache-dir", str(settings.cache_dir), "serve",
                  *(["--http", args.http] if args.http else [])])


if __name__ == "__main__":
    main()
