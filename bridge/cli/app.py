"""The `mediaidx` command line: thin commands over ``bridge.MediaIndexer``."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import MediaIdxError, ProbeError, UsageError
from ..indexer import ChangeResult, MediaIndexer
from . import render
from .options import DryOpt, JsonOpt
from .progress import ScanProgress

app = typer.Typer(
    name="mediaidx", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Index media on NAS shares and local disks; search, probe and organise it.",
    context_settings={"help_option_names": ["-h", "--help"]},
)



def _ix(ctx: typer.Context) -> MediaIndexer:
    return ctx.obj["indexer"]


@app.callback()
def main_options(
    ctx: typer.Context,
    catalog: Annotated[Path | None, typer.Option(
        "--catalog", envvar="MEDIAIDX_CATALOG", help="Catalog file (default: per-user data folder).")] = None,
    cache_dir: Annotated[Path | None, typer.Option(
        "--cache-dir", envvar="MEDIAIDX_CACHE", help="Thumbnail cache folder.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log details to stderr.")] = False,
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    ix = MediaIndexer(catalog, cache_dir=cache_dir)
    ctx.obj = {"indexer": ix}
    ctx.call_on_close(ix.close)


@app.command()
def scan(
    ctx: typer.Context,
    roots: Annotated[list[str] | None, typer.Argument(help="Folders to scan (default: every known root).")] = None,
    dry_run: DryOpt = False,
    probe: Annotated[bool, typer.Option("--probe/--no-probe", help="Read and probe new and changed files.")] = True,
    thumbs: Annotated[bool, typer.Option("--thumbs/--no-thumbs", help="Make poster thumbnails.")] = False,
    follow_symlinks: Annotated[bool, typer.Option("--follow-symlinks", help="Follow symbolic links.")] = False,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Probe failed files again.")] = False,
    allow_empty: Annotated[bool, typer.Option(
        "--allow-empty", help="Accept that a root which had files is now empty (marks them missing).")] = False,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", min=1, help="Worker processes (default: CPUs).")] = None,
    thumb_size: Annotated[int, typer.Option(min=32, max=4096, help="Thumbnail long side in pixels.")] = 320,
    thumb_format: Annotated[str, typer.Option(help="jpeg or webp.")] = "jpeg",
    analyze: Annotated[bool, typer.Option(
        "--analyze", help="Also find shots, key frames and a hero image of new and changed videos.")] = False,
    endpoint_url: Annotated[str | None, typer.Option(
        "--endpoint-url", help="S3-compatible service for s3:// roots (stored with the root).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Sync the catalog with ROOTS: add, update, recognise moves, mark vanished files missing.

    ROOTS are folders or URLs: s3://bucket/prefix, smb://host/share/path, sftp://host/path
    (credentials: environment, storage.toml or the keyring; see docs/storage.md)."""
    if thumb_format not in ("jpeg", "webp"):
        raise UsageError(f"--thumb-format must be jpeg or webp, not {thumb_format!r}")
    if endpoint_url:
        from ..storage.remote import with_endpoint

        roots = with_endpoint(roots or [], endpoint_url)
    ix = _ix(ctx)
    try:
        with ScanProgress(enabled=not as_json) as progress:
            summary = ix.scan(*(roots or []), probe=probe, thumbs=thumbs, dry_run=dry_run,
                              follow_symlinks=follow_symlinks, retry_failed=retry_failed, allow_empty=allow_empty,
                              jobs=jobs, thumb_size=thumb_size, thumb_format=thumb_format, progress=progress,
                              analyze=analyze)
    except KeyboardInterrupt:
        raise Interrupted("interrupted; what was scanned is saved, run the scan again to finish") from None
    if as_json:
        render.print_json(summary.to_dict())
    else:
        render.print_scan_summary(summary)
    if not summary.complete:
        raise typer.Exit(1)


@app.command()
def probe(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(
        help="A media file, or a file URL on remote storage (s3://, smb://, sftp://); catalog not needed.")],
    as_json: JsonOpt = False,
) -> None:
    """Probe one file in-process: streams, codecs, timecode, dates, camera, GPS, EXIF."""
    try:
        result = _ix(ctx).probe(file)
    except ProbeError as exc:
        msg = str(exc)  # the probe's reasons are about the content; one line must also say which file
        raise ProbeError(msg if msg.startswith(file) else f"{file}: {msg}") from None
    if as_json:
        render.print_json(result)
        return
    from ..probe import summarize

    render.out.print(f"[bold]{file}[/bold]")
    for k, v in summarize(result).items():
        if v is not None:
            render.out.print(f"  {k}: {v}")
    for s in result.get("streams", []):
        keys = ("codec", "width", "height", "frame_rate", "pix_fmt", "sample_rate", "channels", "rotation")
        render.out.print(f"  stream {s.get('index')} {s.get('type')}: "
                         + ", ".join(f"{k}={s[k]}" for k in keys if s.get(k) is not None))
    for key in ("timecode", "created", "camera", "gps", "audio", "warnings"):
        if result.get(key):
            render.out.print(f"  {key}: {result[key]}")


def _filters(kind: str | None, codec: str | None, resolution: str | None, min_duration: float | None,
             max_duration: float | None, has_audio: bool | None, date_from: str | None, date_to: str | None,
             camera: str | None, tag: list[str] | None, rating: int | None, status: str | None,
             root: str | None) -> dict[str, Any]:
    return dict(kind=kind, codec=codec, resolution=resolution, min_duration=min_duration,
                max_duration=max_duration, has_audio=has_audio, date_from=date_from, date_to=date_to,
                camera=camera, tags=tag or [], min_rating=rating, status=status, root=root)


KindOpt = Annotated[str | None, typer.Option(help="video, audio or image.")]
CodecOpt = Annotated[str | None, typer.Option(help="Video or audio codec (h264, hevc, prores, aac...).")]
ResOpt = Annotated[str | None, typer.Option(help="8k, 6k, 4k, 2k, 1080p, 720p, sd, or WxH (at least).")]
MinDurOpt = Annotated[float | None, typer.Option("--min-duration", help="Seconds.")]
MaxDurOpt = Annotated[float | None, typer.Option("--max-duration", help="Seconds.")]
AudioOpt = Annotated[bool | None, typer.Option("--has-audio/--no-audio", help="With or without audio.")]
FromOpt = Annotated[str | None, typer.Option("--from", help="Captured on or after YYYY[-MM[-DD]].")]
ToOpt = Annotated[str | None, typer.Option("--to", help="Captured on or before YYYY[-MM[-DD]].")]
CameraOpt = Annotated[str | None, typer.Option(help="Camera make or model contains this.")]
TagOpt = Annotated[list[str] | None, typer.Option("--tag", help="Has this tag (repeatable).")]
RatingOpt = Annotated[int | None, typer.Option("--rating", min=0, max=5, help="Rated at least this.")]
StatusOpt = Annotated[str | None, typer.Option(help="ok, unprobed, failed or missing (default: not missing).")]
RootOpt = Annotated[str | None, typer.Option(help="Only under this root.")]


@app.command()
def search(
    ctx: typer.Context,
    query: Annotated[list[str] | None, typer.Argument(help="Words to find in names, folders, metadata, tags, notes.")]
    = None,
    kind: KindOpt = None, codec: CodecOpt = None, resolution: ResOpt = None, min_duration: MinDurOpt = None,
    max_duration: MaxDurOpt = None, has_audio: AudioOpt = None, date_from: FromOpt = None, date_to: ToOpt = None,
    camera: CameraOpt = None, tag: TagOpt = None, rating: RatingOpt = None, status: StatusOpt = None,
    root: RootOpt = None,
    sort: Annotated[str, typer.Option(help="relevance, added, captured, name, duration, size, rating.")] = "relevance",
    ascending: Annotated[bool, typer.Option("--asc", help="Ascending order.")] = False,
    limit: Annotated[int, typer.Option("--limit", "-l", min=1, max=10000)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Search the catalog (full text plus filters)."""
    ix = _ix(ctx)
    flt = _filters(kind, codec, resolution, min_duration, max_duration, has_audio, date_from, date_to, camera,
                   tag, rating, status, root)
    text = " ".join(query or [])
    results = ix.search(text, sort=sort, descending=not ascending, limit=limit, offset=offset, **flt)
    total = ix.count(text, **flt)
    if as_json:
        render.print_json({"query": text, "total": total, "offset": offset, "results": [a.to_dict() for a in results]})
        return
    render.out.print(render.asset_table(results, title=f"{total} match(es)" + (f" for {text!r}" if text else "")))


@app.command()
def recent(
    ctx: typer.Context,
    n: Annotated[int, typer.Option("--number", "-n", min=1, max=10000, help="How many.")] = 20,
    kind: KindOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The most recently added assets."""
    assets = _ix(ctx).get_recent(n, kind=kind)
    if as_json:
        render.print_json({"results": [a.to_dict() for a in assets]})
    else:
        render.out.print(render.asset_table(assets, title="recently added"))


@app.command()
def stats(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Library statistics: kinds, codecs, resolutions, cameras, months, sizes."""
    s = _ix(ctx).stats()
    if as_json:
        render.print_json(s.to_dict())
    else:
        render.print_stats(s)


@app.command()
def show(
    ctx: typer.Context,
    asset: Annotated[str, typer.Argument(help="Asset id or file path.")],
    as_json: JsonOpt = False,
) -> None:
    """What the catalog knows about one asset: file, probe summary and streams, user data (--json: the whole probe)."""
    a = _ix(ctx).get(asset)
    if as_json:
        render.print_json(a.to_dict())
    else:
        render.print_asset(a)


def _print_change(result: ChangeResult, as_json: bool, what: str) -> None:
    if as_json:
        render.print_json(result.to_dict())
    elif result.dry_run:
        render.print_plan(result.plan, "dry run, nothing changed; would")
    elif result.plan:
        for p in result.plan:
            render.out.print(render.plan_line(p))
    else:
        render.out.print(f"[dim]{what}: nothing to change[/dim]")


@app.command()
def tag(
    ctx: typer.Context,
    asset: Annotated[str, typer.Argument(help="Asset id or file path.")],
    tags: Annotated[list[str], typer.Argument(help="Tags to add (or remove with --remove).")],
    remove: Annotated[bool, typer.Option("--remove", "-r", help="Remove these tags.")] = False,
    dry_run: DryOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Add or remove tags."""
    _print_change(_ix(ctx).tag(asset, tags, remove=remove, dry_run=dry_run), as_json, "tag")


@app.command()
def rate(
    ctx: typer.Context,
    asset: Annotated[str, typer.Argument(help="Asset id or file path.")],
    rating: Annotated[str, typer.Argument(help="0 to 5, or 'clear'.")],
    dry_run: DryOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Rate an asset 0-5."""
    if rating.lower() in ("clear", "none", "-"):
        value = None
    elif rating.isascii() and rating.isdigit():  # not '²': int() refuses what isdigit() alone accepts
        value = int(rating)
    else:
        raise UsageError(f"rating must be 0 to 5 or 'clear', not {rating!r}")
    _print_change(_ix(ctx).rate(asset, value, dry_run=dry_run), as_json, "rate")


@app.command()
def note(
    ctx: typer.Context,
    asset: Annotated[str, typer.Argument(help="Asset id or file path.")],
    text: Annotated[str | None, typer.Argument(help="The note ('-' reads standard input).")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the note.")] = False,
    dry_run: DryOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Set or clear an asset's note."""
    if clear:
        text = None
    elif text == "-":
        text = sys.stdin.read().strip()
    elif text is None:
        raise UsageError("give the note text, '-' to read it from standard input, or --clear")
    _print_change(_ix(ctx).note(asset, text, dry_run=dry_run), as_json, "note")


@app.command()
def prune(
    ctx: typer.Context,
    older_than: Annotated[float | None, typer.Option(
        "--older-than", min=0, help="Only assets missing for at least this many days.")] = None,
    dry_run: DryOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete missing assets from the catalog and thumbnails nothing uses."""
    plan = _ix(ctx).prune(dry_run=dry_run, older_than_days=older_than)
    if as_json:
        render.print_json({"dry_run": dry_run, "plan": [p.to_dict() for p in plan]})
    else:
        render.print_plan(plan, "dry run, nothing changed; would" if dry_run else "pruned")


roots_app = typer.Typer(help="Roots known to the catalog: list them (no command), or forget one.",
                        no_args_is_help=False)
app.add_typer(roots_app, name="roots")


@roots_app.callback(invoke_without_command=True)
def roots(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Roots known to the catalog."""
    if ctx.invoked_subcommand is not None:
        return
    rs = _ix(ctx).roots()
    if as_json:
        render.print_json({"roots": rs})
        return
    for r in rs:
        render.out.print(r["url"])


@roots_app.command("forget")
def roots_forget(
    ctx: typer.Context,
    root: Annotated[str, typer.Argument(help="The root, as `mediaidx roots` lists it (a path or storage URL).")],
    drop_user_data: Annotated[bool, typer.Option(
        "--drop-user-data", help="Forget it even though some of its assets carry ratings, tags or notes.")] = False,
    dry_run: DryOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove a root from the catalog: its folders, assets, analyses and the thumbnails only they used. The
    files themselves are not touched. A dry run lists everything it would remove."""
    plan = _ix(ctx).forget_root(root, dry_run=dry_run, drop_user_data=drop_user_data)
    assets = sum(1 for p in plan if p.action == "delete")
    thumbs = sum(1 for p in plan if p.action == "remove")
    # A dry run lists everything, user data included; it also says when the real run would be refused.
    from ..catalog.prune import USER_DATA

    refused = 0 if drop_user_data else sum(1 for p in plan if (p.reason or "").startswith(USER_DATA))
    if as_json:
        render.print_json({"root": plan[0].path, "dry_run": dry_run, "assets": assets, "thumbnails": thumbs,
                           "refused_without_drop_user_data": refused, "plan": [p.to_dict() for p in plan]})
        return
    if dry_run:
        render.print_plan(plan, "dry run, nothing changed; would")
    verb = "would forget" if dry_run else "forgot"
    render.out.print(f"{verb} {plan[0].path}: {assets} assets, {thumbs} thumbnails (files untouched)")
    if refused:
        render.err.print(f"[yellow]without --drop-user-data this is refused: {refused} asset(s) carry ratings, "
                         "tags or notes[/yellow]")


@app.command()
def run(
    ctx: typer.Context,
    workflow: Annotated[Path, typer.Argument(help="A JSON workflow file ('-' for standard input).")],
    dry_run: DryOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Run a JSON workflow: one step or {"workflow": \\[steps]} (scan, stats, backup, sync_album)."""
    try:
        text = sys.stdin.read() if str(workflow) == "-" else workflow.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{workflow}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{workflow}: not UTF-8 text (byte {exc.start}); workflows are JSON in UTF-8") from None
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{workflow}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    try:
        with ScanProgress(enabled=not as_json) as progress:
            results = _ix(ctx).run_workflow(spec, dry_run=dry_run, progress=progress)
    except KeyboardInterrupt:
        raise Interrupted("interrupted; finished steps are saved") from None
    if as_json:
        render.print_json({"dry_run": dry_run, "steps": results})
    else:
        from ..workflow.report import print_results

        print_results(results, dry_run)
    if any(r.get("status") != "ok" for r in results):
        raise typer.Exit(1)  # with --json too: scripts read the exit status first


BridgeOpt = Annotated[str, typer.Option("--bridge", envvar="MEDIAIDX_BRIDGE", help="Bridge address.")]


@app.command()
def serve(
    ctx: typer.Context,
    bind: Annotated[str, typer.Option(help="ZeroMQ endpoint; tcp://127.0.0.1:* picks a free port.")]
    = "tcp://127.0.0.1:5557",
    keys: Annotated[Path | None, typer.Option(
        help="CURVE key folder from `mediaidx keys` (required to listen beyond loopback).")] = None,
    http: Annotated[str | None, typer.Option(
        "--http", help="HOST:PORT for the REST API and dashboard \\[default: 127.0.0.1:8765; port 0 picks one].")]
    = None,
    no_http: Annotated[bool, typer.Option("--no-http", help="ZeroMQ only: no REST API, no dashboard.")] = False,
    token: Annotated[str | None, typer.Option(
        "--token", envvar="MEDIAIDX_TOKEN", show_default=False,
        help="HTTP bearer token (required to serve HTTP beyond loopback; prefer the environment variable).")]
    = None,
    tls_cert: Annotated[Path | None, typer.Option(
        "--tls-cert", envvar="MEDIAIDX_TLS_CERT", show_default=False,
        help="PEM certificate (chain): serve HTTPS instead of HTTP (with --tls-key).")] = None,
    tls_key: Annotated[Path | None, typer.Option(
        "--tls-key", envvar="MEDIAIDX_TLS_KEY", show_default=False,
        help="The certificate's unencrypted PEM private key.")] = None,
    allow_root: Annotated[list[str] | None, typer.Option(
        "--allow-root", show_default=False,
        help="A folder or URL prefix inside which clients may scan new roots (repeatable; also MEDIAIDX_ALLOW_ROOTS). "
             "Without it clients may only scan the catalog's roots.")] = None,
) -> None:
    """Run the bridge service that Blender sessions connect to, and the web dashboard (stops on Ctrl-C)."""
    from ..service import serve as run_service
    from ..service.rootpolicy import RootPolicy

    ix = _ix(ctx)
    allowed = RootPolicy.from_options(allow_root or []).allowed  # a bad entry stops here, before binding
    web = None
    if not no_http:
        from ..web.server import HttpOptions

        web = HttpOptions.parse(http, token, str(tls_cert) if tls_cert else None, str(tls_key) if tls_key else None)
        if web.cleartext_warning:  # refused above when exposed without a token, before binding
            sys.stderr.write(f"mediaidx: {web.cleartext_warning}\n")

    def ready(endpoint: str) -> None:
        sys.stdout.write(f"mediaidx bridge listening on {endpoint} (catalog {ix.catalog_path})\n")
        if web is not None and web.url:
            sys.stdout.write(f"mediaidx dashboard on {web.url} (Ctrl-C stops)\n")
        if allowed:
            sys.stdout.write(f"clients may also scan inside: {', '.join(allowed)}\n")
        sys.stdout.flush()

    run_service(ix.settings.catalog_path, bind=bind, cache_dir=ix.settings.cache_dir, keys_dir=keys, on_ready=ready,
                with_server=web.attach if web is not None else None, allow_roots=allowed)


@app.command()
def push(
    ctx: typer.Context,
    assets: Annotated[list[str], typer.Argument(help="Asset ids or file paths.")],
    to: Annotated[str, typer.Option("--to", help="The Blender session's name.")],
    mode: Annotated[str, typer.Option(help="clip, camera-bg, strip or plane.")] = "clip",
    bridge: BridgeOpt = "tcp://127.0.0.1:5557",
    server_key: Annotated[str | None, typer.Option(help="The bridge's public key (CURVE), or a .key file.")] = None,
    client_key: Annotated[Path | None, typer.Option(help="This client's .key_secret file (CURVE).")] = None,
    timeout: Annotated[float, typer.Option(min=0.5)] = 10.0,
    dry_run: DryOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Send shots to a running Blender session, which imports them."""
    from ..service.client import push_shots

    if mode not in ("clip", "camera-bg", "strip", "plane"):
        raise UsageError(f"--mode must be clip, camera-bg, strip or plane, not {mode!r}")
    ids = [int(a) if a.isascii() and a.isdigit() else _ix(ctx).get(a).id for a in assets]
    result = push_shots(bridge, to, ids, mode, server_key=server_key, client_key=client_key, timeout=timeout,
                        dry_run=dry_run)
    if as_json:
        render.print_json(result)
    elif dry_run:
        render.out.print(f"dry run, nothing sent; {result['to']} would import {result['would_deliver']} shot(s):")
        for s in result["shots"]:
            render.out.print(f"  {s['mode']:9} {s['path']}  #{s['asset']}")
    else:
        render.out.print(f"sent {result['delivered']} shot(s) to {result['to']}")


@app.command()
def keys(
    folder: Annotated[Path | None, typer.Option("--dir", help="Key folder (default: per-user config).")] = None,
    client: Annotated[str | None, typer.Option(help="Also make (and authorize) a key pair for this client.")] = None,
    authorize: Annotated[Path | None, typer.Option(help="Authorize a client's public .key file.")] = None,
    dry_run: DryOpt = False,
) -> None:
    """Create the bridge's CURVE keys (needed to listen beyond loopback) and client keys."""
    from ..service.security import Keys, default_keys_dir

    k = Keys(folder or default_keys_dir())
    if dry_run:
        render.print_plan(k.plan(client, authorize), "dry run, nothing written; keys would")
        return
    _pub, created = k.create_server()
    render.out.print(f"{'created' if created else 'using'} server keys in {k.folder}")
    render.out.print(f"server public key: {k.public_text()}")
    if client:
        _cpub, csec = k.create_client(client)
        render.out.print(f"client {client}: give {csec} to that machine (its public key is authorized)")
    if authorize:
        render.out.print(f"authorized {k.authorize(authorize)}")


@app.command()
def blend(
    ctx: typer.Context,
    query: Annotated[list[str] | None, typer.Argument(help="Search words (or asset ids) for the shots.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for the .blend files.")] = Path("shots"),
    kind: KindOpt = "video",
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 100,
    mode: Annotated[str, typer.Option(help="clip, camera-bg, strip or plane.")] = "clip",
    sequence: Annotated[str, typer.Option(
        help="A numbered still image: auto (a sequence when named name.1001.ext or in a plate format such as "
             "EXR/DPX/PNG/TIFF; camera photos like IMG_0001.JPG stay single), single, or sequence (all its "
             "numbered neighbours; a shot with none fails).")] = "auto",
    start_frame: Annotated[int, typer.Option(min=0)] = 1,
    workers: Annotated[int, typer.Option("--workers", "-j", min=1, help="Blender worker processes.")] = 2,
    bridge: Annotated[str | None, typer.Option(
        "--bridge", help="Use this running bridge (default: a private one on a free loopback port).")] = None,
    dry_run: DryOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Build one .blend per shot (plate imported, scene set from the probe) with headless Blender workers."""
    from ..blend import build_blends, plan_blends

    words = query or []
    ids = [int(w) for w in words if w.isascii() and w.isdigit()]
    text = " ".join(w for w in words if not (w.isascii() and w.isdigit()))
    ix = _ix(ctx)
    if text or not ids:
        ids += [a.id for a in ix.search(text or None, kind=kind, status="ok", limit=limit) if a.id not in ids]
    if not ids:
        raise UsageError("no shots match")
    if dry_run:  # no Blender started, nothing written
        plan = plan_blends(ix, ids, out, mode=mode, sequence=sequence)
        if as_json:
            render.print_json({"dry_run": True, "plan": [p.to_dict() for p in plan]})
        else:
            render.print_plan(plan, "dry run, nothing written; blend would")
        if any(p.action == "fail" for p in plan):
            raise typer.Exit(1)
        return
    with render.progress_bar(as_json, "building") as update:
        summary = build_blends(ix, ids, out, mode=mode, start_frame=start_frame, workers=workers, bridge=bridge,
                               progress=update, sequence=sequence)
    if as_json:
        render.print_json(summary)
    else:
        for b in summary["built"]:
            render.out.print(f"built {b['blend']}")
        for k in summary.get("skipped", []):
            render.out.print(f"asset {k['asset']}: a frame of the image sequence built from asset {k['in_sequence_of']}")
        for f in summary["failed"]:
            render.err.print(f"[red]failed[/red] asset {f['asset']}: {f['error']}")
    if summary["failed"]:
        raise typer.Exit(1)


@app.command()
def track(
    ctx: typer.Context,
    hero: Annotated[str, typer.Argument(help="Hero plate: a movie, the first image of a sequence, or an id.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the exports and shot.json.")],
    witness: Annotated[list[str] | None, typer.Option("--witness", "-w", help="A witness plate (repeat).")] = None,
    offset: Annotated[list[float] | None, typer.Option(
        "--offset", help="Per witness, in order: frames its first image starts after the hero's.")] = None,
    survey: Annotated[Path | None, typer.Option(
        help="JSON of survey points: {point: {camera: [\\[frame, x_px, y_px], ...]}}.")] = None,
    focal_px: Annotated[float | None, typer.Option(help="Known hero focal length in pixels.")] = None,
    sensor_width: Annotated[float | None, typer.Option(help="Sensor width in mm.")] = None,
    pixel_aspect: Annotated[float | None, typer.Option(
        help="The hero's pixel aspect (width / height of a stored pixel, 0.1..10; 2 for a 2x anamorphic squeeze) "
             "when its metadata is missing or wrong. Default: the plate's sample aspect ratio.")] = None,
    witness_pixel_aspect: Annotated[list[float] | None, typer.Option(
        help="Per witness, in order: its pixel aspect (0: from its metadata).")] = None,
    fps: Annotated[str | None, typer.Option(help="Scene rate, e.g. 24000/1001.")] = None,
    refine: Annotated[str, typer.Option(help="FOCAL, FOCAL+PRINCIPAL, FOCAL+RADIAL or NONE.")] = "FOCAL",
    name: Annotated[str, typer.Option(help="Shot name in shot.json.")] = "shot",
    save_blend: Annotated[bool, typer.Option(help="Also save the solved scene as shot.blend.")] = False,
    formats: Annotated[str | None, typer.Option(
        help="Exports per camera, comma-separated: chan, fbx, abc, 3de, csv, json (default: all). Lens and plate "
             "JSON and shot.json are always written. A rerun into the same --out with fewer formats removes the "
             "exports the earlier run wrote there in the others (the files its shot.json lists); --dry-run "
             "lists them.")] = None,
    dry_run: DryOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Solve the hero and witness cameras with Blender's tracker and export .chan, FBX, Alembic, 3DE points,
    CSV/JSON tracks, lens and plate data, and shot.json. --dry-run checks every input and lists every file the
    run would write (no Blender started, nothing written, the output folder not made)."""
    from ..track import plan_track, resolve_plate, run_track

    ix = _ix(ctx)
    plates = [resolve_plate(ix, p) for p in [hero, *(witness or [])]]
    if dry_run:
        plan = plan_track(plates[0], out, witnesses=plates[1:], offsets=offset, survey=survey, focal_px=focal_px,
                          sensor_width=sensor_width, fps=fps, refine=refine, save_blend=save_blend, formats=formats,
                          pixel_aspect=pixel_aspect, witness_pixel_aspect=witness_pixel_aspect)
        if as_json:
            render.print_json({"dry_run": True, "plan": [p.to_dict() for p in plan]})
        else:
            render.print_plan(plan, "dry run, nothing written; track would")
        return
    with render.progress_bar(as_json, "tracking") as update:
        summary = run_track(plates[0], out, witnesses=plates[1:], offsets=offset, survey=survey, focal_px=focal_px,
                            sensor_width=sensor_width, fps=fps, refine=refine, name=name, save_blend=save_blend,
                            formats=formats, pixel_aspect=pixel_aspect, witness_pixel_aspect=witness_pixel_aspect,
                            progress=update)
    if as_json:
        render.print_json(summary)
    else:
        for c in summary.get("built", []):
            render.out.print(f"{c['role']} {c['name']}: {c['error_px']:.3f} px ({c['strategy']})"
                             + (", aligned to the hero" if c.get("aligned") else ""))
        if summary.get("manifest"):
            render.out.print(f"wrote {summary['manifest']}")
        for path in summary.get("removed", []):
            render.out.print(f"removed {path} (an earlier run's export this run no longer writes)")
        for f in summary.get("failed", []):
            render.err.print(f"[red]failed[/red]: {f['error']}")
    if summary.get("failed"):
        raise typer.Exit(1)


@app.command()
def sync(
    files: Annotated[list[Path], typer.Argument(help="Recordings of the same event: video with audio or audio.")],
    reference: Annotated[Path | None, typer.Option(
        "--reference", "-r", help="The file the others are placed against (default: the longest).")] = None,
    otio_out: Annotated[Path | None, typer.Option(
        "--otio", help="Also write the synced group as an OpenTimelineIO timeline (.otio).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Offsets between recordings by their sound: seconds, samples and frames, a confidence, and clock drift.
    Exit 1 when a file could not be placed (the others are still reported)."""
    from ..sync import sync_files

    paths = [str(f) for f in files]
    if reference is not None and str(reference) not in paths:
        paths.insert(0, str(reference))
    results = sync_files(paths, reference=str(reference) if reference else None)
    if otio_out is not None:
        from ..sync.timeline import write_timeline

        write_timeline(results, otio_out, name=otio_out.stem)
    unsynced = any(r.status == "unsynced" for r in results)  # a script must not take a partial group for done
    if as_json:
        render.print_json({"reference": results[0].path, "results": [r.as_dict() for r in results]})
        if unsynced:
            raise typer.Exit(1)
        return
    from rich.table import Table

    table = Table("file", "status", "offset s", "samples", "frames", "confidence", "drift ppm", box=None)
    for r in results:
        fmt = lambda v, spec: "" if v is None else format(v, spec)  # noqa: E731
        status = r.status if not r.via else f"{r.status} via {Path(r.via).name}"
        table.add_row(r.path, status if r.status != "unsynced" else f"[yellow]unsynced[/yellow] {r.reason}",
                      fmt(r.offset_seconds, "+.4f"), fmt(r.offset_samples, "d"), fmt(r.offset_frames, ".2f"),
                      fmt(r.confidence, ".1f"), fmt(r.drift_ppm, "+.1f"))
    render.out.print(table)
    if unsynced:
        raise typer.Exit(1)


# shots, keyframes, hero, contact-sheet, analyze (bridge/cli/analysis.py)
from . import analysis as _analysis_commands  # noqa: E402

_analysis_commands.register(app)

# credentials set/show/delete for remote roots (bridge/cli/storage_cmds.py)
from . import storage_cmds as _storage_commands  # noqa: E402

_storage_commands.register(app)


class Interrupted(MediaIdxError):
    exit_code = 130


def main(argv: list[str] | None = None) -> None:
    """Entry point: one-line errors, exit 1 (2 for usage), 130 on Ctrl-C."""
    from rich.text import Text

    try:
        app(args=argv)
    except MediaIdxError as exc:
        render.err.print(Text.assemble(("mediaidx: error: ", "red"), str(exc)))
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(0)
    except OSError as exc:  # a file the user named is missing or unreadable: say which, no traceback
        where = f"{exc.filename}: " if exc.filename else ""
        render.err.print(Text.assemble(("mediaidx: error: ", "red"), f"{where}{exc.strerror or exc}"))
        sys.exit(1)


if __name__ == "__main__":
    main()
