"""bpy-free edge cases: survey files checked before a solve, and image sequences with gaps held in place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from blender_mediaidx.core.sequences import find_sequence
from blender_mediaidx.core.track_formats import load_survey, parse_survey


def test_a_good_survey_is_normalised() -> None:
    doc = {"P1": {"hero": [[1, 10, 20.5], [2.0, 11, 21]], "witness1.0001.png": [[5, 1e3, 2]]}}
    assert parse_survey(doc) == {"P1": {"hero": [[1, 10.0, 20.5], [2, 11.0, 21.0]],
                                        "witness1.0001.png": [[5, 1000.0, 2.0]]}}


@pytest.mark.parametrize(("doc", "message"), [
    ([], "a survey is a JSON object"),
    ({"P1": [[1, 2, 3]]}, "survey point 'P1': expected {camera"),
    ({"P1": {"hero": []}}, "expected a list of [frame, x, y]"),
    ({"P1": {"hero": [[1, 2]]}}, "[1, 2] is not [frame, x, y]"),
    ({"P1": {"hero": [[1, "2", 3]]}}, "is not [frame, x, y]"),
    ({"P1": {"hero": [[1, True, 3]]}}, "is not [frame, x, y]"),
    ({"P1": {"hero": [[1.5, 2, 3]]}}, "frame 1.5 is not a whole number"),
    ({"P1": {"hero": [[0, 2, 3]]}}, "frame 0 is not a whole number from 1"),
])
def test_a_bad_survey_says_which_entry(doc: object, message: str) -> None:
    with pytest.raises(ValueError) as e:
        parse_survey(doc)
    assert message in str(e.value)


def test_load_survey_errors_are_one_line(tmp_path: Path) -> None:
    for name, content, message in (("missing.json", None, "No such file"), ("bad.json", "{oops", "not JSON"),
                                   ("latin.json", b"\xff\xfe{", "not UTF-8"),
                                   ("nan.json", '{"P": {"hero": [[1, NaN, 2]]}}', "is not [frame, x, y]")):
        p = tmp_path / name
        if isinstance(content, bytes):
            p.write_bytes(content)
        elif content is not None:
            p.write_text(content)
        with pytest.raises(ValueError) as e:
            load_survey(p)
        assert message in str(e.value) and "\n" not in str(e.value) and name in str(e.value)
    (tmp_path / "ok.json").write_text(json.dumps({"P": {"hero": [[1, 2, 3]]}}))
    assert load_survey(tmp_path / "ok.json") == {"P": {"hero": [[1, 2.0, 3.0]]}}


def test_a_sequence_with_gaps_holds_the_frame_before_each_gap(tmp_path: Path) -> None:
    for f in (1001, 1002, 1005, 1006):
        (tmp_path / f"plate.{f}.exr").write_bytes(b"x")
    seq = find_sequence(str(tmp_path / "plate.1002.exr"))
    assert seq is not None and seq.missing == [1003, 1004]
    assert seq.held_files() == ["plate.1001.exr", "plate.1002.exr", "plate.1002.exr", "plate.1002.exr",
                                "plate.1005.exr", "plate.1006.exr"]
    assert len(seq.held_files()) == seq.frame_count
