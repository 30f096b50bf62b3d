"""Thumbnails: a poster frame per video, a downscaled upright copy per still."""

from .poster import make_thumbnail, still_thumbnail, video_poster

__all__ = ["make_thumbnail", "still_thumbnail", "video_poster"]
