import json
import subprocess
import sys

import pytest

from tests.cli_helpers import one_line_error, run

TINY_ARGS = [
    "--seed",
    "1",
    "--cameras",
    "2",
    "--identities",
    "8",
    "--groups",
    "1",
    "--minutes",
    "0.05",
]


def test_help_lists_every_verb(capsys) -> None:
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    for verb in ("synth", "demo", "config"):
        assert verb in out


@pytest.mark.parametrize("verb", ["synth", "demo", "config"])
def test_every_verb_has_help(verb, capsys) -> None:
    code, out, _ = run([verb, "--help"], capsys)
    assert code == 0 and "Usage" in out


def test_unknown_option_is_one_line(tmp_path, capsys) -> None:
    code, _, err = run(["synth", str(tmp_path / "w"), "--bogus"], capsys)
    one_line_error(code, err, "--bogus")


def test_bad_value_type_is_one_line(tmp_path, capsys) -> None:
    code, _, err = run(["synth", str(tmp_path / "w"), "--cameras", "many"], capsys)
    one_line_error(code, err, "--cameras")


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--cameras", "0"], "cameras"),
        (["--identities", "5", "--groups", "3"], "groups"),
        (["--minutes", "-1"], "minutes"),
        (["--crops-only", "--cameras", "1"], "cameras"),
        (["--crops-only", "--variety", "extreme"], "variety"),
        (["--variety", "high"], "variety"),
    ],
)
def test_impossible_parameters_are_one_line(extra, needle, tmp_path, capsys) -> None:
    code, _, err = run(["synth", str(tmp_path / "w"), *extra], capsys)
    one_line_error(code, err, needle)


def test_unwritable_output_is_one_line(tmp_path, capsys) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    code, _, err = run(["synth", str(blocker / "world"), *TINY_ARGS], capsys)
    one_line_error(code, err, "cannot create")


def test_json_errors_are_one_document(tmp_path, capsys) -> None:
    code, out, _ = run(["synth", str(tmp_path / "w"), "--cameras", "0", "--json"], capsys)
    assert code == 2
    doc = json.loads(out)
    assert "cameras" in doc["error"] and doc["hint"]


def test_synth_json_then_refuse_to_overwrite(tmp_path, capsys) -> None:
    out_dir = tmp_path / "w"
    code, out, _ = run(["synth", str(out_dir), *TINY_ARGS, "--json", "--workers", "1"], capsys)
    assert code == 0
    summary = json.loads(out)
    assert summary["cameras"] == ["cam1", "cam2"] and (out_dir / "cameras.json").is_file()
    code, _, err = run(["synth", str(out_dir), *TINY_ARGS], capsys)
    one_line_error(code, err, "already holds a world")
    code, _, _ = run(["synth", str(out_dir), *TINY_ARGS, "--overwrite", "--workers", "1"], capsys)
    assert code == 0


def test_bad_setting_is_one_line(monkeypatch, capsys) -> None:
    monkeypatch.setenv("REIDTRACE_INDEX__METRIC", "cosine")
    code, _, err = run(["config"], capsys)
    one_line_error(code, err, "index.metric")


def test_missing_config_file_is_one_line(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setenv("REIDTRACE_CONFIG", str(tmp_path / "nope.toml"))
    code, _, err = run(["config"], capsys)
    one_line_error(code, err, "REIDTRACE_CONFIG")


def test_config_file_and_env_precedence(monkeypatch, tmp_path, capsys) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('reid_model = "from-file"\n[index]\nfactory = "IDMap2,HNSW32"\n')
    monkeypatch.setenv("REIDTRACE_CONFIG", str(cfg))
    monkeypatch.setenv("REIDTRACE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("REIDTRACE_REID_MODEL", "from-env")
    code, out, _ = run(["config", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["reid_model"] == "from-env"  # env beats file
    assert data["index"]["factory"] == "IDMap2,HNSW32"
    assert data["database_url"] == f"sqlite:///{tmp_path / 'home' / 'reidtrace.db'}"


def test_console_script_entry_point() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "reidtrace", "synth", "/tmp/x", "--cameras", "0"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("error:")


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["ingest", "{tmp}", "--max-gap", "-1"], "max_gap"),
        (["bench", "ingest", "--workers", "-1"], "workers"),
        (["bench", "ingest", "--appearance", "colour"], "appearance must be one of"),
    ],
)
def test_bad_ingest_and_bench_numbers_are_one_line(argv, needle, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REIDTRACE_HOME", str(tmp_path / "home"))
    code, _, err = run([a.replace("{tmp}", str(tmp_path)) for a in argv], capsys)
    one_line_error(code, err, needle)
    assert not (tmp_path / "home" / "reidtrace.db").exists()  # refused before touching the store
