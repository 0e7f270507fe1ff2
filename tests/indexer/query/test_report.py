"""The trace report page: self-contained, escaped, complete, and calm about missing pieces.

Most tests render a constructed trace through a fake ``ReportSource``; the last ones read a tiny
in-memory store and a real (tiny) video file through ``SqlReportSource``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from sqlalchemy.orm import Session

from indexer.protocols import ReportSource
from indexer.query import report
from indexer.query.report import SqlReportSource, render_report, write_report
from indexer.store import repo
from indexer.store.models import Camera
from indexer.store.schemas import CameraPublic, SightingCreate
from reid.errors import ReidTraceError
from reid.geometry import camera_position
from reid.synth.site import RIGS
from tests.indexer.conftest import START, make_detections, unit

EVIL = '<script>alert("x")</script> cam" onmouseover="boom'
RIG = RIGS[0].camera(480, 360)


def jpeg(value: int, size: tuple[int, int] = (40, 20)) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((*size, 3), value, np.uint8))
    assert ok
    return buf.tobytes()


def iso(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).isoformat()


def camera(name: str, cid: int, homography: Any = None) -> CameraPublic:
    return CameraPublic(
        id=cid,
        name=name,
        width=480,
        height=360,
        fps=10.0,
        homography=None if homography is None else np.asarray(homography).tolist(),
        ground_units=None if homography is None else "m",
    )


class FakeSource:
    """Cameras, thumbnails and frames from dictionaries; records the frame requests."""

    def __init__(
        self,
        cameras: list[CameraPublic],
        *,
        broken_videos: Sequence[int] = (),
        num_frames: int = 1000,
    ) -> None:
        self._cameras = cameras
        self.broken = set(broken_videos)
        self.num_frames = num_frames
        self.thumbs = {991: jpeg(200), 992: b"not a jpeg at all"}
        self.track_thumbs = {3: jpeg(90)}
        self.calls: list[tuple[int, list[int]]] = []

    def cameras(self) -> list[CameraPublic]:
        return self._cameras

    def thumbnail(self, sighting_id: int) -> bytes | None:
        return self.thumbs.get(sighting_id)

    def track_thumbnail(self, track_ids: Sequence[int]) -> bytes | None:
        return next((self.track_thumbs[t] for t in track_ids if t in self.track_thumbs), None)

    def frames(self, video_id: int, frame_idxs: Sequence[int]) -> dict[int, np.ndarray]:
        self.calls.append((video_id, list(frame_idxs)))
        if video_id in self.broken:
            raise ReidTraceError(f"/footage/video{video_id}.mp4 does not exist")
        return {f: np.full((360, 480, 3), 120, np.uint8) for f in frame_idxs if f < self.num_frames}


def evidence(cam: str, video_id: int, frame: int, t: float, dist: float | None) -> dict:
    return {
        "camera": cam,
        "video_id": video_id,
        "frame_idx": frame,
        "time": iso(t),
        "subject_box": [200.0, 150.0, 230.0, 250.0],
        "contact_box": [240.0, 150.0, 270.0, 250.0],
        "distance": dist,
    }


def make_trace() -> dict[str, Any]:
    """Subject seen in cam1 (with homography) then camB (without); three contacts, one of
    order 2; exposure counted once where cameras overlap (34.5 < 30.1 + 20.0)."""
    path = [[iso(k), 3.0 + 0.5 * k, 8.0 + 0.2 * k] for k in range(0, 30, 3)]
    return {
        "subject": {
            "kind": "track",
            "query": None,
            "person_id": 12,
            "track_ids": [3, 17],
            "score": None,
        },
        "model": "mobilenetv2_x1_0-5e696aa0c364",
        "contact_definition": {
            "distance": 2.0,
            "units": "m",
            "min_seconds": 5.0,
            "depth": 2,
            "window_s": None,
        },
        "trajectory": [
            {
                "camera": "cam1",
                "video_id": 1,
                "track_ids": [3],
                "enter": iso(0),
                "leave": iso(30),
                "confidence": 0.91,
                "ground_path": path,
            },
            {
                "camera": "camB",
                "video_id": 2,
                "track_ids": [17],
                "enter": iso(40),
                "leave": iso(70),
                "confidence": 0.8,
                "ground_path": None,
            },
        ],
        "contacts": [
            {  # listed second on purpose: the page ranks by exposure
                "person_id": 7,
                "track_ids": [9],
                "order": 2,
                "via_person_id": 5,
                "units": "m",
                "exposure_s": 6.2,
                "per_camera": [{"camera": "cam1", "exposure_s": 6.2}],
                "closest": 1.5,
                "first": iso(10),
                "last": iso(16),
                "thumbnail_sighting_id": 992,  # broken bytes: "no thumbnail", no failure
                "evidence": [evidence("cam1", 1, 100, 10, 1.9), evidence("cam1", 1, 130, 13, 1.5)],
            },
            {
                "person_id": 5,
                "track_ids": [8, 21],
                "order": 1,
                "via_person_id": None,
                "units": "m",
                "exposure_s": 34.5,
                "per_camera": [
                    {"camera": "cam1", "exposure_s": 30.1},
                    {"camera": "camB", "exposure_s": 20.0},
                ],
                "closest": 0.8,
                "first": iso(2),
                "last": iso(60),
                "thumbnail_sighting_id": 991,
                "evidence": [
                    evidence("cam1", 1, 20, 2, 1.2),
                    evidence("cam1", 1, 150, 15, 0.8),
                    evidence("cam1", 1, 290, 29, 1.9),
                    evidence("camB", 2, 50, 45, 1.1),
                    evidence("camB", 2, 250, 60, 1.7),
                ],
            },
            {
                "person_id": None,
                "track_ids": [30],
                "order": 1,
                "via_person_id": None,
                "units": "m",
                "exposure_s": 5.0,
                "per_camera": [{"camera": "camB", "exposure_s": 5.0}],
                "closest": 1.99,
                "first": iso(50),
                "last": iso(55),
                "thumbnail_sighting_id": None,
                "evidence": [],
            },
        ],
        "notes": ["camB has no ground homography: contacts there are within 1.0 box heights"],
    }


def source() -> FakeSource:
    return FakeSource([camera("cam1", 1, RIG.image_to_ground), camera("camB", 2)])


def articles(page: str) -> list[str]:
    return re.findall(r'<article class="card contact" id="contact-\d+">.*?</article>', page, re.S)


def test_fake_is_a_report_source() -> None:
    assert isinstance(source(), ReportSource)


def test_page_is_self_contained() -> None:
    page = render_report(make_trace(), source())
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert "<script" not in page.lower() and "@import" not in page
    assert re.findall(r"url\(([^)]*)\)", page) == ["#plan-clip"]  # the plan's own clip path
    srcs = re.findall(r'<img [^>]*src="([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/jpeg;base64,") for s in srcs)
    # evidence: 7 frames read, each a picture (the two videos, each in one batch)
    assert page.count('alt="cam1 · frame') + page.count('alt="camB · frame') == 7
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in page  # the namespace, not a fetch


def test_every_contact_is_shown_ranked_direct_first_then_by_exposure() -> None:
    page = render_report(make_trace(), source())
    cards = articles(page)
    assert len(cards) == 3
    assert "person 5" in cards[0] and "34.5 s" in cards[0]
    assert "cam1 30.1 s, camB 20.0 s" in cards[0]
    assert "overlapping cameras counted once" in cards[0]  # 34.5 < 30.1 + 20.0
    assert "0.80 m" in cards[0]  # closest, with its units
    assert "track 30" in cards[1] and "5.0 s" in cards[1] and "no evidence frames" in cards[1]
    # order 2 after every direct contact, though its exposure (6.2 s) beats track 30's
    assert "person 7" in cards[2] and "6.2 s" in cards[2] and "order 2, via person 5" in cards[2]
    assert "no thumbnail" in cards[2]  # its thumbnail bytes do not decode
    # its evidence shows it beside person 5 (through whom it came), in person 5's colour
    assert f'background:{report.CONTACT_COLORS[0]}"></span>person 5 (the contact it' in cards[2]
    assert "near person 5)</title>" in page and "near the subject)</title>" in page
    # first / closest / last are named in the captions
    assert "0.80 m · closest" in cards[0] and "1.20 m · first" in cards[0]
    assert "1.90 m · last" in cards[0]
    # evidence distances are in their camera's units: camB has no homography
    assert "camB · frame 50 · 12:00:45.0 · 1.10 box heights · first" in cards[0]
    assert "Contacts (3): direct first, then by exposure" in page
    # the timeline has a lane per camera and a bar per contact and camera it was seen in
    assert page.count("<title>#1 person 5 in ") == 2 and page.count("<title>#3 person 7 in") == 1
    assert page.count("<title>#2 track 30 in camB") == 1  # no evidence: a dashed bar
    assert "<title>subject in camB: 12:00:40.0 to 12:01:10.0</title>" in page
    assert "depth 2 (contacts of contacts)" in page
    trace = make_trace()
    trace["contacts"][0]["via_person_id"] = None
    assert "order 2, via a contact with no person id" in render_report(trace, source())
    trace["contacts"] = trace["contacts"][1:]
    assert "Contacts, by exposure (2)" in render_report(trace, source())


def test_user_text_is_escaped() -> None:
    trace = make_trace()
    trace["trajectory"][0]["camera"] = EVIL
    trace["contacts"][1]["evidence"][0]["camera"] = EVIL
    trace["notes"].append(EVIL)
    trace["subject"]["kind"] = "photo"
    trace["subject"]["query"] = f"/tmp/{EVIL}.jpg"
    src = FakeSource([camera(EVIL, 1, RIG.image_to_ground), camera("camB", 2)])
    page = render_report(trace, src)
    assert "<script>" not in page and 'onmouseover="boom' not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; cam&quot; onmouseover=" in page
    assert "not readable" in page  # the query photo does not exist: said, not fatal


def test_site_plan_shows_the_path_cameras_and_a_scale_bar() -> None:
    page = render_report(make_trace(), source())
    plan = re.search(r'<svg[^>]*aria-label="site plan".*?</svg>', page, re.S)
    assert plan is not None
    svg = plan.group(0)
    assert svg.count("<polyline") == 1  # the one visit with a ground path
    assert "cam1 (position from its homography)" in svg  # RIG's camera, placed from H alone
    assert re.search(r">\d+(\.\d+)? m</text>", svg)  # scale bar
    assert "no ground homography for camB: not on the site plan" in page
    assert camera_position(RIG.image_to_ground, 480, 360) is not None


def test_no_homography_means_no_plan_and_a_note() -> None:
    trace = make_trace()
    for visit in trace["trajectory"]:
        visit["ground_path"] = None
    page = render_report(trace, FakeSource([camera("cam1", 1), camera("camB", 2)]))
    assert 'aria-label="site plan"' not in page
    assert "no camera of this trace has a ground homography: no site plan" in page
    assert 'aria-label="timeline per camera"' in page  # the rest of the page is still there
    assert len(articles(page)) == 3


def test_missing_video_is_said_not_fatal() -> None:
    src = FakeSource([camera("cam1", 1, RIG.image_to_ground), camera("camB", 2)], broken_videos=[2])
    page = render_report(make_trace(), src)
    assert page.count("video 2 unreadable: /footage/video2.mp4 does not exist") == 2
    assert page.count('alt="cam1 · frame') == 5  # video 1 still gives its frames
    short = FakeSource([camera("cam1", 1)], num_frames=120)
    page = render_report(make_trace(), short)
    assert "frame 290 is past the end of video 1" in page


def test_frames_are_read_in_batches(monkeypatch) -> None:
    monkeypatch.setattr(report, "FRAME_BATCH", 2)
    src = source()
    page = render_report(make_trace(), src)
    assert page.count('alt="cam1 · frame') == 5
    assert [(v, len(f)) for v, f in src.calls] == [(1, 2), (1, 2), (1, 1), (2, 2)]
    assert all(f == sorted(f) for _, f in src.calls)


def test_empty_trace_renders() -> None:
    trace = make_trace()
    trace["contacts"] = []
    page = render_report(trace, source())
    assert "No contacts: nobody stayed within 2 m on the ground" in page
    assert articles(page) == []
    trace["trajectory"] = []
    trace["subject"]["track_ids"] = []
    trace["subject"].update(kind="photo", person_id=None)
    page = render_report(trace, source())
    assert "<h1>Trace: nobody found for the photo</h1>" in page
    assert "The subject was not found in any camera." in page
    assert "No times to draw." in page


def test_co_appearance_and_box_heights_units() -> None:
    trace = make_trace()
    trace["contact_definition"].update(units="co-appearance", distance=None, window_s=2.0)
    for c in trace["contacts"]:
        c["closest"] = None
        for ev in c["evidence"]:
            ev["distance"] = None
            ev["contact_box"] = None  # a crop-only world: nothing to draw but the subject
    page = render_report(trace, source())
    assert "seen in the same camera within 2 s of each other" in page
    assert "same camera, same time" in page and " m · " not in page
    trace = make_trace()
    trace["contact_definition"]["units"] = "box_heights"
    for c in trace["contacts"]:
        c["units"] = "box_heights"
    page = render_report(trace, FakeSource([camera("cam1", 1), camera("camB", 2)]))
    assert "0.80 box heights" in page and "within 2 box heights in the image" in page
    assert " m · " not in page and "0.80 m" not in page


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda t: t.pop("contacts"), "the trace has no contacts"),
        (lambda t: t.update(trajectory={}), "trajectory must be a list"),
        (lambda t: t["contacts"].append("person 9"), r"contacts\[3\] is not a contacts entry"),
        (lambda t: t["trajectory"][0].update(enter="yesterday"), "not an ISO-8601 time"),
    ],
)
def test_bad_traces_are_user_errors(mutate, needle) -> None:
    trace = copy.deepcopy(make_trace())
    mutate(trace)
    with pytest.raises(ReidTraceError, match=needle):
        render_report(trace, source())
    with pytest.raises(ReidTraceError, match="JSON object"):
        render_report(["not", "a", "trace"], source())  # type: ignore[arg-type]


def test_write_report_is_atomic_and_checks_the_path(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    out.write_text("old")
    when = datetime(2025, 1, 2, 3, 4, tzinfo=UTC)
    assert write_report(make_trace(), source(), out, generated=when) == out
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert "generated 2025-01-02 03:04 UTC" in out.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # no temp file left
    bad = make_trace()
    bad["trajectory"][0]["leave"] = "soon"
    with pytest.raises(ReidTraceError):
        write_report(bad, source(), out)
    assert out.read_text().startswith("<!DOCTYPE html>")  # the earlier report is intact
    with pytest.raises(ReidTraceError, match="does not exist"):
        write_report(make_trace(), source(), tmp_path / "nope" / "r.html")
    with pytest.raises(ReidTraceError, match="is a folder"):
        write_report(make_trace(), source(), tmp_path)


# --------------------------------------------------------------------------- the SQL source


def _write_video(path: Path, n: int = 30) -> None:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (480, 360))
    for k in range(n):
        w.write(np.full((360, 480, 3), (k * 8) % 256, np.uint8))
    w.release()


def test_sql_source_on_a_tiny_store(session: Session, camera: Camera, tmp_path: Path) -> None:
    _write_video(tmp_path / "cam1.mp4")
    video = repo.create_video(
        session=session,
        camera_id=camera.id,
        path=str(tmp_path / "cam1.mp4"),
        content_hash="ef" * 32,
        start_time=START,
        fps=10.0,
        num_frames=30,
        width=480,
        height=360,
    )
    rng = np.random.default_rng(0)
    sightings = [
        SightingCreate(
            track_no=no, frame_idx=f, vector=unit(rng)[0], model="m", quality=q, thumbnail=thumb
        )
        for no, f, q, thumb in [(1, 2, 0.4, jpeg(10)), (1, 5, 0.9, jpeg(250)), (2, 6, 0.99, None)]
    ]
    out = repo.commit_chunk(
        session=session,
        video_id=video.id,
        frames_done=30,
        detections=make_detections({1: range(0, 10), 2: range(5, 30)}),
        sightings=sightings,
    )
    tracks = {t.track_no: t.id for t in repo.tracks_for_video(session=session, video_id=video.id)}
    src = SqlReportSource(session)
    assert isinstance(src, ReportSource)

    cams = src.cameras()
    assert [c.name for c in cams] == ["cam1"] and cams[0].ground_units == "m"
    assert src.thumbnail(out.sighting_ids[0]) == jpeg(10)
    assert src.thumbnail(999_999) is None
    best = src.track_thumbnail([tracks[1], tracks[2]])  # track 2's better crop has no JPEG
    assert best == jpeg(250)
    assert src.track_thumbnail([tracks[2]]) is None and src.track_thumbnail([]) is None

    frames = src.frames(video.id, [20, 3, 99])
    assert sorted(frames) == [3, 20] and frames[3].shape == (360, 480, 3)
    assert abs(float(frames[20].mean()) - 160) < 4  # the frame of that index
    with pytest.raises(ReidTraceError, match="no video"):
        src.frames(12345, [1])
    crops = repo.create_video(
        session=session,
        camera_id=camera.id,
        path=str(tmp_path / "market"),
        content_hash="cd" * 32,
        start_time=START,
        fps=1.0,
        num_frames=3,
        width=64,
        height=128,
        kind="crops",
    )
    with pytest.raises(ReidTraceError, match="crops"):
        src.frames(crops.id, [0])

    trace = make_trace()
    trace["contacts"] = trace["contacts"][1:2]
    ev = trace["contacts"][0]["evidence"]
    for k, e in enumerate(ev):
        e.update(video_id=video.id, frame_idx=[3, 20, 29, 40, 2][k])
    trace["contacts"][0]["thumbnail_sighting_id"] = out.sighting_ids[1]
    path = write_report(trace, src, tmp_path / "report.html")
    page = path.read_text()
    assert page.count('alt="cam1 · frame') == 3 and page.count('alt="camB · frame') == 1
    assert f"frame 40 is past the end of video {video.id}" in page
    assert 'aria-label="site plan"' in page  # cam1's homography (10 px = 1 m, top-down)


def _has_colour(img: np.ndarray, hex_color: str) -> bool:
    b, g, r = (int(hex_color[i : i + 2], 16) for i in (5, 3, 1))
    return bool((np.abs(img.astype(int) - [b, g, r]).sum(axis=2) < 30).any())


def test_evidence_crop_draws_both_boxes_in_their_colours() -> None:
    frame = np.full((360, 480, 3), 128, np.uint8)
    subject, contact = np.array([200.0, 150, 230, 250]), np.array([240.0, 150, 270, 250])
    img = report._evidence_crop(frame, subject, contact, "#2b8a3e", "0.80 m")
    assert img.shape[0] == report.EVIDENCE_HEIGHT  # cropped around the two, then scaled
    assert img.shape[1] < img.shape[0] * 2.2
    assert _has_colour(img, report.SUBJECT_COLOR) and _has_colour(img, "#2b8a3e")
    via = report._evidence_crop(frame, subject, contact, "#2b8a3e", "", near_color="#c92a2a")
    assert _has_colour(via, "#c92a2a") and not _has_colour(via, report.SUBJECT_COLOR)
    edge = report._evidence_crop(frame, np.array([0.0, 0, 20, 60]), None, "#2b8a3e", "")
    assert edge.shape[0] == report.EVIDENCE_HEIGHT  # at the frame's corner: window slid inside
