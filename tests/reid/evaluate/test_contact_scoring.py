"""Contact precision / recall over directed pairs and the exposure error of matched pairs."""

from __future__ import annotations

from pathlib import Path

import pytest

from reid.errors import ReidTraceError
from reid.evaluate.contact_scoring import read_true_contacts, score_contacts

TRUTH = {(1, 2): 10.0, (2, 1): 10.0, (1, 3): 6.0, (3, 1): 6.0}


def test_hand_computed_case() -> None:
    predicted = [
        (1, 2, 12.0),  # match, error 2
        (1, 2, 11.0),  # the same pair again (a split person): counted once, larger exposure
        (2, 1, 9.0),  # match, error 1
        (1, 4, 7.0),  # false positive
        (3, None, 8.0),  # a contact with no true identity: false positive
    ]
    s = score_contacts(predicted, TRUTH)
    assert s.predicted_pairs == 4 and s.true_pairs == 4 and s.matched_pairs == 2
    assert s.contact_precision == pytest.approx(2 / 4)
    assert s.contact_recall == pytest.approx(2 / 4)
    assert s.exposure_mae_s == pytest.approx(1.5)
    assert set(s.to_json()) >= {"contact_precision", "contact_recall", "exposure_mae_s"}


def test_subjects_restrict_truth_and_predictions() -> None:
    s = score_contacts([(1, 2, 10.0), (1, 3, 6.0), (2, 1, 10.0)], TRUTH, subjects=[1])
    assert (s.contact_precision, s.contact_recall, s.exposure_mae_s) == (1.0, 1.0, 0.0)
    assert s.true_pairs == 2 and s.predicted_pairs == 2


def test_empty_sides() -> None:
    nothing = score_contacts([], TRUTH)
    assert (nothing.contact_precision, nothing.contact_recall) == (1.0, 0.0)
    assert nothing.exposure_mae_s is None
    none_true = score_contacts([(1, 2, 3.0)], {})
    assert (none_true.contact_precision, none_true.contact_recall) == (0.0, 1.0)


def test_reads_the_worlds_contacts_csv(tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text(
        "subject,contact,camera,start,end,exposure_s,min_distance_m,total_exposure_s\n"
        "1,2,cam1,2026-05-04T08:00:00.000Z,2026-05-04T08:00:09.900Z,10.0,0.5,14.50\n"
        "1,2,cam2,2026-05-04T08:00:05.000Z,2026-05-04T08:00:09.900Z,5.0,0.7,14.50\n"
        "2,1,cam1,2026-05-04T08:00:00.000Z,2026-05-04T08:00:09.900Z,10.0,0.5,14.50\n"
    )
    assert read_true_contacts(path) == {(1, 2): 14.5, (2, 1): 14.5}
    with pytest.raises(ReidTraceError, match="cannot read"):
        read_true_contacts(tmp_path / "missing.csv")
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ReidTraceError, match=r"not a contacts\.csv"):
        read_true_contacts(tmp_path / "bad.csv")


def test_the_demo_worlds_truth_scores_itself(tiny_world) -> None:
    root, _ = tiny_world
    truth = read_true_contacts(root / "contacts.csv")
    s = score_contacts([(a, b, e) for (a, b), e in truth.items()], truth)
    assert (s.contact_precision, s.contact_recall, s.exposure_mae_s) == (
        1.0,
        1.0,
        0.0 if truth else None,
    )
