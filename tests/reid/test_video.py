from pathlib import Path

import cv2
import numpy as np
import pytest

from reid.errors import ReidTraceError
from reid.video import probe, read_frames, read_frames_at


def _write_video(path: Path, n: int = 12) -> None:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for k in range(n):
        w.write(np.full((48, 64, 3), (k * 8) % 256, np.uint8))
    w.release()


def test_video_file_and_frame_folder(tmp_path) -> None:
    _write_video(tmp_path / "v.mp4")
    info = probe(tmp_path / "v.mp4")
    assert (info.width, info.height, info.fps) == (64, 48, 10.0)
    frames = list(read_frames(info))
    assert [k for k, _ in frames] == list(range(12))
    assert [k for k, _ in read_frames(info, start=9)] == [9, 10, 11]
    folder = tmp_path / "frames"
    folder.mkdir()
    for k in range(5):
        cv2.imwrite(str(folder / f"{k:04d}.png"), np.full((20, 30, 3), k, np.uint8))
    finfo = probe(folder, fps=5)
    assert finfo.is_frame_folder and finfo.num_frames == 5 and finfo.fps == 5
    assert [k for k, _ in read_frames(finfo, start=3)] == [3, 4]
    assert probe(folder).content_hash == finfo.content_hash


def test_truncated_video_reads_what_is_there(tmp_path) -> None:
    _write_video(tmp_path / "v.mp4", n=30)
    data = (tmp_path / "v.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) * 2 // 3])
    try:
        info = probe(tmp_path / "cut.mp4")
    except ReidTraceError:
        return  # a container cut before its index is unreadable: also a clean, reported failure
    assert len(list(read_frames(info))) < 30


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [("empty.mp4", b"", "empty"), ("junk.mp4", b"not a video at all" * 50, "cannot open")],
)
def test_bad_files_are_user_errors(tmp_path, name, content, needle) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ReidTraceError, match=needle):
        probe(tmp_path / name)


def test_missing_and_empty_folder(tmp_path) -> None:
    with pytest.raises(ReidTraceError, match="does not exist"):
        probe(tmp_path / "nope.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReidTraceError, match="no image frames"):
        probe(tmp_path / "empty")


def test_read_frames_at_picks_exact_frames(tmp_path) -> None:
    _write_video(tmp_path / "v.mp4", n=12)
    got = read_frames_at(tmp_path / "v.mp4", [7, 3, 3, 11, 40])
    assert sorted(got) == [3, 7, 11]  # 40 is past the end: absent, not an error
    for k, frame in got.items():
        assert frame.shape == (48, 64, 3)
        assert abs(float(frame.mean()) - (k * 8) % 256) < 4  # the frame of that index
    folder = tmp_path / "frames"
    folder.mkdir()
    for k in range(4):
        cv2.imwrite(str(folder / f"{k:04d}.png"), np.full((20, 30, 3), 10 * k, np.uint8))
    got = read_frames_at(folder, [2, 9])
    assert list(got) == [2] and int(got[2][0, 0, 0]) == 20
    assert read_frames_at(folder, []) == {}
    with pytest.raises(ReidTraceError, match="does not exist"):
        read_frames_at(tmp_path / "gone.mp4", [1])
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 50)
    with pytest.raises(ReidTraceError, match="cannot open"):
        read_frames_at(tmp_path / "junk.mp4", [1])
