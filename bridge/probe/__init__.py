"""Deep media probe, in-process: PyAV for audio/video containers, Pillow and pillow-heif for stills.

No subprocess per file (about 10x faster than running ffprobe), and one JSON-serialisable dict per
file that the catalog stores as is. ``summarize()`` reduces it to the catalog's columns.

Probe layout (keys the file cannot answer are absent, never guessed; rationals are "num/den"):

- ``kind`` video|audio|image, ``size``, ``warnings`` (list of one-line strings, e.g. truncation)
- ``format``: ``name`` (ffprobe's format_name), ``long_name``, ``container`` (short: mov, mp4,
  matroska, avi, mpegts, mp3, wav, flac, jpeg, heif, png...), ``duration``, ``bit_rate``,
  ``start_time``, ``nb_streams``, ``tags``
- ``streams``: ffprobe-like dicts (``codec`` is ffprobe's codec_name); video streams add
  ``frame_rate`` (nominal, av_guess_frame_rate), ``avg_frame_rate``, ``r_frame_rate``, ``vfr``,
  ``rotation`` (ffprobe's sign: -90 = shown turned clockwise), ``display_width``/``display_height``,
  colour names and ``hdr``; audio streams add ``sample_rate``, ``channels``, ``channel_layout``,
  ``sample_fmt``
- ``has_audio`` (audio/video), ``audio`` {silent, peak_dbfs, rms_dbfs, analysed_seconds...}
- ``timecode`` + ``timecode_source``, ``created`` {value, source, utc}, ``camera`` {make, model,
  software, lens, serial}, ``gps`` {lat, lon, alt?, source}, ``bwf`` (WAV bext)
- stills: ``image`` {width, height, mode, format, orientation, exif {...}, motion_photo...}
"""

from __future__ import annotations

from .api import probe_file
from .summary import SUMMARY_KEYS, summarize

__all__ = ["SUMMARY_KEYS", "probe_file", "summarize"]
