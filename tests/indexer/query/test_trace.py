"""The trace document (keys pinned: the HTML report and API clients read them) and the
``persons`` / ``trace`` verbs' answers to bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from indexer.query.trace import TRACE_KEYS, trace
from indexer.settings import PersonSettings
from indexer.store import migrate
from indexer.store.db import make_engine, make_session_factory
from reid.errors import ReidTraceError
from tests.cli_helpers import one_line_error, run
from tests.indexer.query.helpers import StoreBuilder, look

SUBJECT_KEYS = {"kind", "query", "person_id", "track_ids", "score"}
DEFINITION_KEYS = {"distance", "units", "min_seconds", "depth", "window_s"}
CONTACT_KEYS = {
    "person_id", "track_ids", "order", "via_person_id", "units", "exposure_s", "per_camera",
    "closest", "first", "last", "thumbnail_sighting_id", "evidence",
}  # fmt: skip
VISIT_KEYS = {"camera", "video_id", "track_ids", "enter", "leave", "confidence", "ground_path"}


def build(session: Session) -> None:
    b = StoreBuilder(session)
    b.camera("cam1")
    b.camera("cam2", ground=False)
    b.track("cam1", 0, 10, look(0), path=((0, 0), (10, 0)))
    b.track("cam2", 30, 40, look(0))
    b.track("cam1", 0, 10, look(3), path=((0, 9), (10, 9)))  # 9 m away: no contact
    b.track("cam1", 0, 10, look(5), path=((0, 1), (10, 1)))  # 1 m away for 10 s: a contact


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A REIDTRACE_HOME whose migrated store holds three constructed tracks."""
    monkeypatch.setenv("REIDTRACE_HOME", str(tmp_path))
    url = f"sqlite:///{tmp_path / 'reidtrace.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    with make_session_factory(engine)() as s:
        build(s)
    engine.dispose()
    yield tmp_path


def test_trace_document_keys_are_stable(session: Session) -> None:
    build(session)
    doc = trace(session, PersonSettings(), track_id=1)
    assert tuple(doc) == TRACE_KEYS
    assert set(doc["subject"]) == SUBJECT_KEYS
    assert set(doc["contact_definition"]) == DEFINITION_KEYS
    assert all(set(v) == VISIT_KEYS for v in doc["trajectory"])
    assert doc["subject"]["kind"] == "track" and doc["subject"]["track_ids"] == [1, 2]
    assert [v["camera"] for v in doc["trajectory"]] == ["cam1", "cam2"]
    # cam1 has a ground plane: metres; cam2 has none, which the notes say
    assert doc["contact_definition"] == {
        "distance": 2.0, "units": "m", "min_seconds": 5.0, "depth": 1, "window_s": None
    }  # fmt: skip
    assert "cam2 has no ground homography: its visits have no ground path" in doc["notes"]
    (contact,) = doc["contacts"]
    assert set(contact) == CONTACT_KEYS and contact["track_ids"] == [4]
    assert contact["exposure_s"] == pytest.approx(10.0, abs=0.2) and contact["order"] == 1
    by_person = trace(session, PersonSettings(), person_id=doc["subject"]["person_id"])
    assert by_person["subject"]["kind"] == "person"
    assert by_person["trajectory"] == doc["trajectory"]
    json.dumps(doc)  # plain JSON types only


def test_trace_refuses_bad_arguments(session: Session) -> None:
    build(session)
    cfg = PersonSettings()
    with pytest.raises(ReidTraceError, match="--distance must be > 0"):
        trace(session, cfg, track_id=1, distance=-1.0)
    with pytest.raises(ReidTraceError, match="--depth must be 1 to 3"):
        trace(session, cfg, track_id=1, depth=4)
    with pytest.raises(ReidTraceError, match="one subject"):
        trace(session, cfg)


def test_cli_trace_and_persons(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["persons", "--json"], capsys)
    assert code == 0 and json.loads(out)["persons"] == 3
    code, out, _ = run(["persons"], capsys)
    assert code == 0 and "up to date" in out
    code, out, _ = run(["trace", "--track", "2", "--json"], capsys)
    doc = json.loads(out)
    assert code == 0 and tuple(doc) == TRACE_KEYS and doc["subject"]["track_ids"] == [1, 2]
    code, out, _ = run(["trace", "--person", str(doc["subject"]["person_id"])], capsys)
    assert code == 0 and "cam1" in out and "cam2" in out and "contacts (within 2 m" in out
    page = home / "trace.html"
    code, out, _ = run(["trace", "--track", "1", "--report", str(page)], capsys)
    assert code == 0 and f"report: {page}" in out
    html = page.read_text()
    assert html.lstrip().lower().startswith("<!doctype html") and "cam2" in html
    code, out, _ = run(["persons", "--rebuild"], capsys)
    assert code == 0 and out.startswith("rebuilt: 4 tracks in 3 persons")


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["trace", "--track", "999"], "no track with id 999"),
        (["trace", "--person", "999"], "no person with id 999"),
        (["trace", "--track", "1", "--distance", "-2"], "--distance must be > 0"),
        (["trace", "--track", "1", "--depth", "0"], "--depth must be 1 to 3"),
        (["trace", "--track", "1", "--min-seconds", "-1"], "--min-seconds must be >= 0"),
        (["trace"], "give one subject"),
        (["trace", "--track", "1", "--person", "1"], "give one subject"),
        (
            ["trace", "--track", "1", "--report", "/no/such/folder/t.html"],
            "cannot write the report",
        ),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(
    home: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    code, _, err = run(argv, capsys)
    one_line_error(code, err, needle)


def test_cli_empty_store_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REIDTRACE_HOME", str(tmp_path))
    code, _, err = run(["trace", "--track", "1"], capsys)
    one_line_error(code, err, "the store holds no tracks")
    code, out, _ = run(["persons", "--json"], capsys)
    assert code == 2 and "no tracks" in json.loads(out)["error"]
