"""This Blender session's link to the bridge: one BridgeClient, pumped on the main thread.

In the UI a persistent ``bpy.app.timers`` callback calls ``pump()``; headless jobs and tests call it from
their own loops (timers never fire without Blender's event loop). Everything that touches bpy happens in
``pump()`` callbacks, on the main thread; the client's IO thread never does.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import bpy

from .core import protocol as P
from .core.client import BridgeClient, Transfer
from .prefs import Settings, settings

log = logging.getLogger(__name__)

TIMER_CONNECTED = 0.05
TIMER_IDLE = 0.5


class LinkError(RuntimeError):
    """The link cannot start as configured (a preference is wrong); the message is for the user."""


class Link:
    def __init__(self, s: Settings) -> None:
        keys = None
        if s.client_key_file:
            import zmq.auth

            try:
                pub, sec = zmq.auth.load_certificate(bpy.path.abspath(s.client_key_file))
            except (OSError, ValueError) as exc:
                raise LinkError(f"Client Key File preference: {exc}") from None
            if sec is None:
                raise LinkError(f"Client Key File preference: {s.client_key_file} has no secret key (give the "
                                ".key_secret file from `mediaidx keys --client`)")
            keys = (pub, sec)
        self.settings = s
        self.client = BridgeClient(s.bridge_address, name=s.name, kind="blender",
                                   server_public_key=s.server_public_key or None, client_keys=keys,
                                   info={"blender": bpy.app.version_string})
        self.client.on("shots", self._on_shots)
        self.client.on("job.progress", self._on_job)
        self.client.on("job.done", self._on_job_done)
        self.client.on("state", self._on_state)
        self.previews: Any = None
        self.thumbs_wanted: set[int] = set()
        self.received: list[dict[str, Any]] = []   # shots imported from pushes (for the panel and tests)
        self.errors: list[str] = []
        self.client.start()

    # -- events (run inside pump(), main thread) ---------------------------------------------------------
    def _on_state(self, state: str, msg: dict[str, Any]) -> None:
        st = _state()
        if st is not None:
            st.connection = state
            st.message = self.client.last_error or ""
        _redraw()

    def _on_job(self, data: dict[str, Any], msg: dict[str, Any]) -> None:
        st = _state()
        if st is not None:
            total = data.get("work_total") or 0
            st.job = f"scan: {data.get('phase')} {data.get('files', 0)} files"
            st.job_progress = (data.get("work_done", 0) / total) if total else 0.0
            _redraw()

    def _on_job_done(self, data: dict[str, Any], msg: dict[str, Any]) -> None:
        st = _state()
        if st is not None:
            summary = data.get("summary") or {}
            st.job = f"scan {data.get('state')}: " + ", ".join(
                f"{k} {summary.get(k, 0)}" for k in ("added", "changed", "moved", "missing"))
            st.job_progress = 1.0
            _redraw()

    def _on_shots(self, data: dict[str, Any], msg: dict[str, Any]) -> None:
        st = _state()
        if st is not None and not st.receive_shots:
            return
        from .core.shots import parse_shots

        try:
            shots = parse_shots(data)
        except ValueError as exc:
            self.errors.append(f"bad push: {exc}")
            return
        for shot in shots:
            self.import_shot(shot["asset"], shot["mode"])

    # -- work ------------------------------------------------------------------------------------------
    def import_shot(self, asset: dict[str, Any], mode: str, *, scene: Any = None, force_fetch: bool = False,
                    on_done: Any = None, sequence: str = "auto", pixel_aspect: float = 0.0) -> Transfer | None:
        """Import now if the file is readable here, else fetch it first and import when it arrives.
        ``sequence`` (Numbered Images) and ``pixel_aspect`` (0: the probe's) are the importer's; a still image
        fetched through the bridge comes alone, so "sequence" is refused for it before the fetch."""
        from . import importer
        from .batch import fetched_sequence_error

        importer.check_sequence_choice(sequence)
        importer.check_pixel_aspect(pixel_aspect)  # refused before a fetch, not after it
        start = self.settings.start_frame
        if importer.readable(asset.get("path")) and not force_fetch:
            self._import(asset, mode, asset["path"], scene, start, on_done, sequence, pixel_aspect)
            return None
        problem = fetched_sequence_error(asset.get("name") or str(asset.get("id")), asset.get("kind"), sequence)
        if problem:
            raise importer.PlateImportError(problem)
        dest = fetch_destination(self.settings, asset)

        def done(t: Transfer) -> None:
            self._import(asset, mode, str(t.dest), scene, start, on_done, sequence, pixel_aspect)

        def failed(t: Transfer, err: P.RemoteError) -> None:
            self.errors.append(f"{asset.get('name')}: fetch failed: {err.message}")
            _report(self.errors[-1])

        return self.client.fetch(dest, asset=asset["id"], on_done=done, on_error=failed)

    def _import(self, asset: dict[str, Any], mode: str, path: str, scene: Any, start: int, on_done: Any,
                sequence: str = "auto", pixel_aspect: float = 0.0) -> None:
        from . import importer

        try:
            result = importer.import_asset(asset, mode, path=path, scene=scene, start_frame=start,
                                           sequence=sequence, pixel_aspect=pixel_aspect)
        except importer.PlateImportError as exc:
            self.errors.append(str(exc))
            _report(str(exc))
            return
        self.received.append({"asset": asset.get("id"), "mode": mode, "created": result.created,
                              "warnings": result.warnings, "notes": result.notes})
        for message in (*result.warnings, *result.notes):  # a pushed shot has no operator to report them
            _report(f"{result.name}: {message}")
        if on_done:
            on_done(result)
        _redraw()

    def search(self, st: Any) -> None:
        filters: dict[str, Any] = {}
        if st.kind != "ANY":
            filters["kind"] = st.kind
        if st.resolution != "ANY":
            filters["resolution"] = st.resolution
        if st.has_audio != "ANY":
            filters["has_audio"] = st.has_audio == "YES"
        if st.tag.strip():
            filters["tags"] = [st.tag.strip()]
        if st.min_rating:
            filters["min_rating"] = st.min_rating
        query = st.query.strip()
        args = {"query": query, "filters": filters, "limit": 200}
        self.client.request("search", args, on_reply=self._fill_results, on_error=self._search_failed)

    def _search_failed(self, err: P.RemoteError) -> None:
        st = _state()
        if st is not None:
            st.message = err.message
        _redraw()

    def _fill_results(self, result: dict[str, Any]) -> None:
        st = _state()
        if st is None:
            return
        st.results.clear()
        st.total = result.get("total") or 0
        for a in result.get("results", []):
            item = st.results.add()
            item.asset_id = a["id"]
            item.name = a.get("name") or ""
            item.kind = a.get("kind") or ""
            item.path = a.get("path") or ""
            item.codec = a.get("video_codec") or a.get("audio_codec") or a.get("container") or ""
            item.resolution = f"{a['width']}x{a['height']}" if a.get("width") else ""
            item.fps = a.get("fps") or ""
            item.duration = float(a.get("duration") or 0)
            item.has_audio = bool(a.get("has_audio"))
            item.audio_silent = bool(a.get("audio_silent"))
            item.captured = (a.get("captured_at") or "")[:19]
            item.camera = " ".join(x for x in (a.get("camera_make"), a.get("camera_model")) if x)
            item.rating = a.get("rating") or 0
            item.tags = ", ".join(a.get("tags") or [])
            item.thumb_key = str(a["id"])
            if a.get("kind") in ("video", "image"):
                self.want_thumbnail(a["id"])
        st.active = min(st.active, max(len(st.results) - 1, 0))
        _redraw()

    def want_thumbnail(self, asset_id: int) -> None:
        """Fetch the asset's thumbnail once into the cache and load it as a preview icon."""
        if asset_id in self.thumbs_wanted:
            return
        self.thumbs_wanted.add(asset_id)
        path = self.settings.cache / "thumbs" / f"{asset_id}.jpg"
        if path.is_file():
            self._load_preview(asset_id, str(path))
            return

        def got(result: dict[str, Any]) -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(result["data"])
            os.replace(tmp, path)
            self._load_preview(asset_id, str(path))

        self.client.request("thumbnail", {"asset": asset_id}, on_reply=got, on_error=lambda e: None, timeout_s=60)

    def _load_preview(self, asset_id: int, path: str) -> None:
        if self.previews is None:
            import bpy.utils.previews

            self.previews = bpy.utils.previews.new()
        key = str(asset_id)
        if key not in self.previews:
            self.previews.load(key, path, "IMAGE")
        _redraw()

    def has_preview(self, key: str) -> bool:
        """The thumbnail is loaded (its icon id stays 0 in background mode, where there are no icons)."""
        return self.previews is not None and key in self.previews and self.previews[key].image_size[0] > 0

    def icon(self, key: str) -> int:
        if self.previews is not None and key in self.previews:
            return self.previews[key].icon_id
        return 0

    def close(self) -> None:
        self.client.stop()
        if self.previews is not None:
            import bpy.utils.previews

            bpy.utils.previews.remove(self.previews)
            self.previews = None


_link: Link | None = None


def link(connect: bool = True) -> Link | None:
    """The session's link (made on first use, never at register time)."""
    global _link
    if _link is None and connect:
        _link = Link(settings())
        st = _state()
        if st is not None:
            st.connection = "connecting"
            st.receive_shots = _link.settings.receive_shots
        ensure_timer()
    return _link


def _close() -> None:
    global _link
    if _link is not None:
        _link.close()
        _link = None


def disconnect() -> None:
    _close()
    st = _state()
    if st is not None:
        st.connection = "disconnected"


def pump(budget_s: float = 0.02) -> int:
    """Apply whatever the bridge sent; call on the main thread. Never raises."""
    if _link is None:
        return 0
    try:
        return _link.client.pump(budget_s=budget_s)
    except Exception:  # never let a timer die
        log.exception("bridge pump failed")
        return 0


def wait(predicate: Any, timeout_s: float) -> bool:
    """Headless: pump until ``predicate()`` or timeout."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        pump()
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


def search(st: Any) -> None:
    lk = link()
    if lk is not None:
        lk.search(st)


def fetch_destination(s: Settings, asset: dict[str, Any]) -> Any:
    """Fetched plates are named by asset id and content, so a re-rendered plate is fetched again."""
    ext = asset.get("ext") or os.path.splitext(asset.get("name") or "")[1].lstrip(".") or "bin"
    fp = (asset.get("fingerprint") or "nofp")[:16]
    return s.cache / "plates" / f"{asset['id']}-{fp}.{ext}"


def _timer() -> float:
    if _link is None:
        return TIMER_IDLE
    pump()
    return TIMER_CONNECTED if _link.client.state == "connected" else TIMER_IDLE


def ensure_timer() -> None:
    if not bpy.app.timers.is_registered(_timer):
        bpy.app.timers.register(_timer, first_interval=0.1, persistent=True)


def _auto_connect() -> None:
    """Runs once, from a timer after Blender has started (never inside register())."""
    try:
        if settings().auto_connect:
            link()
    except Exception:
        log.exception("could not start the bridge link")


def on_register() -> None:
    if not bpy.app.background:
        bpy.app.timers.register(_auto_connect, first_interval=1.0)


def on_unregister() -> None:
    _close()
    for fn in (_timer, _auto_connect):
        if bpy.app.timers.is_registered(fn):
            bpy.app.timers.unregister(fn)


def _state() -> Any:
    wm = getattr(bpy.context, "window_manager", None)
    return getattr(wm, "mediaidx", None) if wm is not None else None


def _redraw() -> None:
    wm = getattr(bpy.context, "window_manager", None)
    for window in getattr(wm, "windows", []) or []:
        for area in window.screen.areas:
            if area.type in ("VIEW_3D", "CLIP_EDITOR", "SEQUENCE_EDITOR"):
                area.tag_redraw()


def _report(message: str) -> None:
    log.warning(message)
    st = _state()
    if st is not None:
        st.message = message
