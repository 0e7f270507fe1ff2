import json
import re
from datetime import datetime
from pathlib import Path

from indexer.query.evaluate import WorldTruth, read_world_truth
from reid.evaluate.contact_scoring import read_true_contacts
from reidtrace.demo import TRACING_SCORES, pick_subject
from reidtrace.verbs_world import print_demo_summary
from tests.metrics import reference


def _t(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def test_demo_runs_every_stage_on_a_tiny_world(tmp_path, tiny_embedder, capsys) -> None:
    out = reference.run_tiny_demo(tmp_path, tiny_embedder)
    world = tmp_path / "demo"
    assert out["world"]["gt_boxes"] > 0
    assert out["ingest"]["done"] == 2 and out["ingest"]["sightings"] > 0
    assert out["index_ok"] and not out["ingest_errors"]
    assert {"mota", "idf1", "id_switches", "per_camera"} <= set(out["tracking"])
    assert (world / "preview.png").is_file()
    # the ReID and tracking numbers against tests/metrics/reference.toml (fails if they move)
    reference.check(reference.read_table(), reference.tiny_demo_sections(out))

    # stage 5: the subject is the query crop of the test identity with the most true contacts
    tr, truth = out["trace"], read_world_truth(world)
    true_contacts = read_true_contacts(world / "contacts.csv")
    sub = tr["subject"]
    assert sub["identity"] == pick_subject(truth, true_contacts)
    assert Path(sub["photo"]) == truth.query_files[sub["identity"]]
    assert sub["track_id"] in sub["track_ids"] and 0 < sub["score"] <= 1.0001
    # the trajectory: non-empty, time-ordered, each visit of the subject's tracks
    visits = tr["trajectory"]
    assert visits
    assert [_t(v["enter"]) for v in visits] == sorted(_t(v["enter"]) for v in visits)
    for v in visits:
        assert _t(v["enter"]) <= _t(v["leave"]) and set(v["track_ids"]) <= set(sub["track_ids"])
        assert 0 <= v["confidence"] <= 1
    # contacts ranked by exposure; the truth beside them is that identity's
    exposures = [c["exposure_s"] for c in tr["contacts"]]
    assert exposures == sorted(exposures, reverse=True)
    assert all(e >= tr["contact_definition"]["min_seconds"] for e in exposures)
    mine = {c: round(e, 1) for (s, c), e in true_contacts.items() if s == sub["identity"]}
    assert {c["identity"]: c["exposure_s"] for c in tr["truth"]["contacts"]} == mine
    true_visits = sorted(truth.trajectories[sub["identity"]], key=lambda v: v[1])
    assert [(v["camera"], _t(v["enter"])) for v in tr["truth"]["trajectory"]] == [
        (cam, enter) for cam, enter, _ in true_visits
    ]
    # the report: written where the summary says, one self-contained page of that trace
    page = Path(tr["report"])
    assert page == world / "trace_report.html"
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "<script" not in html  # and nothing fetched: every src/href is inline or local
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert f"person {sub['person_id']}" in html and "data:image/" in html
    # the world's scores: evaluate-tracing --query photo over every test identity
    scores = out["tracing"]
    assert scores["query"] == "photo" and scores["identities"] == len(truth.test_ids)
    for key in TRACING_SCORES[:4]:
        assert 0.0 <= scores[key] <= 1.0, key
    assert scores["exposure_mae_s"] is None or scores["exposure_mae_s"] >= 0
    json.dumps(out)  # `reidtrace demo --json` prints it as one document

    # what `reidtrace demo` prints at the end
    print_demo_summary(world, out)
    text = capsys.readouterr().out
    assert f"trace by photo {sub['photo']}" in text
    assert f"report: {page}" in text and "tracing vs truth, all" in text
    assert visits[0]["enter"][11:21] in text


def test_pick_subject_prefers_most_contacts_then_exposure_then_lowest_id() -> None:
    truth = WorldTruth(
        trajectories={},
        test_ids=[1, 2, 3, 4],
        queries={},
        query_files={1: Path("a.jpg"), 2: Path("b.jpg"), 3: Path("c.jpg")},
    )
    # 4 has the most contacts but no query crop; 2 and 3 tie on count, 3 has more exposure
    contacts = {(4, 1): 9.0, (4, 2): 9.0, (4, 3): 9.0, (2, 1): 6.0, (2, 4): 6.0,
                (3, 1): 7.0, (3, 4): 6.0, (1, 2): 6.0}  # fmt: skip
    assert pick_subject(truth, contacts) == 3
    contacts[(2, 4)] = 7.0  # now 2 and 3 tie on count and exposure: the lower id
    assert pick_subject(truth, contacts) == 2
    assert pick_subject(truth, {}) == 1  # nobody has contacts: the lowest id with a crop
    assert pick_subject(WorldTruth({}, [1], {}, {}), contacts) is None


def test_the_demo_prints_found_contacts_beside_the_truth(capsys) -> None:
    """A constructed trace entry: matched, false, duplicate and missed contacts and visits."""
    visit = {"camera": "cam1", "video_id": 1, "track_ids": [3], "confidence": 0.9,
             "enter": "2024-05-01T08:00:03.400000+00:00",
             "leave": "2024-05-01T08:00:40.000000+00:00"}  # fmt: skip

    def contact(person: int | None, identity: int | None, exposure: float) -> dict:
        return {"person_id": person, "identity": identity, "track_ids": [8], "order": 1,
                "exposure_s": exposure, "closest": 0.8, "units": "m", "first": "", "last": "",
                "per_camera": [{"camera": "cam1", "exposure_s": exposure}]}  # fmt: skip

    tr = {
        "subject": {
            "photo": "q.jpg",
            "identity": 46,
            "track_id": 3,
            "person_id": 5,
            "track_ids": [3],
            "score": 0.8,
            "found_identity": 46,
        },
        "contact_definition": {
            "distance": 2.0,
            "units": "m",
            "min_seconds": 5.0,
            "depth": 1,
            "window_s": None,
        },
        "trajectory": [visit],
        "contacts": [
            contact(7, 12, 30.5),
            contact(9, 12, 8.0),
            contact(None, None, 6.0),
            contact(11, 46, 5.5),  # the subject's own identity: a person split in two
        ],
        "notes": [],
        "truth": {
            "trajectory": [
                {
                    "camera": "cam1",
                    "enter": "2024-05-01T08:00:02.000000+00:00",
                    "leave": "2024-05-01T08:00:41.000000+00:00",
                },
                {
                    "camera": "cam3",
                    "enter": "2024-05-01T08:01:00.000000+00:00",
                    "leave": "2024-05-01T08:01:20.000000+00:00",
                },
            ],
            "contacts": [{"identity": 12, "exposure_s": 29.0}, {"identity": 20, "exposure_s": 7.5}],
        },
        "report": "/x/trace_report.html",
    }
    from reidtrace.verbs_world import print_demo_trace

    print_demo_trace(tr, {})
    text = capsys.readouterr().out
    lines = {line.split("│")[1].strip(): line for line in text.splitlines() if "│" in line}
    assert "08:00:02.0" in lines["cam1"] and "08:00:03.4" in lines["cam1"]  # found | truth
    assert "missed" in lines["cam3"]
    assert "29.0" in lines["1"] and "30.5" in lines["1"]
    assert "duplicate" in lines["2"] and "false" in lines["3"]
    assert "subject" in lines["4"].split("│")[7]
    assert "missed" in lines["-"] and "7.5" in lines["-"]
