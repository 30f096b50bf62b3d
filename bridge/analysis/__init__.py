"""Video analysis: shot boundaries, key frames, hero images and contact sheets (issue 5).

    from bridge.analysis import detect_shots, analyze_video
    detect_shots("clip.mp4").shots          # cuts, fades and dissolves, decoded at 160 px
    a = analyze_video("clip.mp4")           # + a key frame per shot and the hero, each with its scores

Modules: ``decode`` (reduced-size PyAV decoding), ``detectors`` (one detector per kind of transition),
``shots`` (merging into a shot list), ``quality`` (frame scores), ``keyframes`` (candidate pool, key frames,
hero), ``sheet`` (contact sheets), ``pipeline`` (one clip end to end), ``store`` (catalog rows, hero files),
``synthclips`` (ffmpeg clips with known cuts, fades and dissolves, for tests and the benchmark).
"""

from .decode import AnalysisError
from .detectors import Boundary, ContentDetector, Detector, DissolveDetector, FadeDetector, default_detectors
from .pipeline import (
    ANALYSIS_VERSION,
    Analysis,
    analyze_video,
    write_contact_sheet,
    write_hero,
    write_keyframes,
)
from .shots import Shot, ShotResult, detect_shots

__all__ = [
    "ANALYSIS_VERSION", "Analysis", "AnalysisError", "Boundary", "ContentDetector", "Detector", "DissolveDetector",
    "FadeDetector", "Shot", "ShotResult", "analyze_video", "default_detectors", "detect_shots",
    "write_contact_sheet", "write_hero", "write_keyframes",
]
