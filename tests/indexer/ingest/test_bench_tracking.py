"""``bench tracking``'s table: real sequences skip with a reason when ../shared is absent."""

from indexer.ingest.bench_tracking import bench_tracking, markdown_table


def test_absent_sequences_are_skipped_with_a_reason(tmp_path) -> None:
    out = bench_tracking(shared=tmp_path, worlds={})
    assert set(out) == {"PETS09-S2L1 1-397", "TUD-Stadtmitte"}
    assert all("is not there" in r["skipped"] for r in out.values())
    table = markdown_table(
        out
        | {
            "w": {
                "mota": 0.5,
                "idf1": 0.25,
                "hota": 0.125,
                "id_switches": 3,
                "recall": 1.0,
                "precision": 0.5,
                "gt_boxes": 10,
                "detector": "nanodet",
            }
        }
    )
    lines = table.splitlines()
    assert lines[0].startswith("| sequence | detector | MOTA | IDF1 | HOTA")
    assert "is not there" in lines[2]
    assert lines[-1] == "| w | nanodet | 0.500 | 0.250 | 0.125 | 3 | 1.000 | 0.500 | 10 |"
