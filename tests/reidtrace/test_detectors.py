"""``reidtrace detectors [install]``: lists the catalogue with what is installed in the home;
install refuses a wrong hash in one line and installs the real file (into a tmp home)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import one_line_error, run


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REIDTRACE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_a_fresh_home_lists_the_catalogue_and_auto_is_nanodet(home: Path, capsys) -> None:
    code, out, _ = run(["detectors", "--json"], capsys)
    assert code == 0
    listing = json.loads(out)
    assert listing["auto"] == "nanodet" and listing["models_dir"] == str(home / "models")
    rows = {r["name"]: r for r in listing["models"]}
    assert rows["nanodet"]["installed"] and not rows["yolox-nano"]["installed"]
    assert "0.1.1rc0" in rows["yolox-nano"]["source"] and rows["yolox-nano"]["sha256"]
    code, out, _ = run(["detectors"], capsys)
    assert code == 0 and "auto uses nanodet" in out and "not installed" in out


def test_install_refuses_a_wrong_hash_in_one_line(home: Path, tmp_path: Path, capsys) -> None:
    fake = tmp_path / "yolox_nano.onnx"
    fake.write_bytes(b"\x08\x07")
    code, _, err = run(["detectors", "install", "yolox-nano", str(fake)], capsys)
    one_line_error(code, err, "sha256")
    assert not (home / "models" / "yolox_nano.onnx").exists()
    code, _, err = run(["detectors", "install", "nanodet", str(fake)], capsys)
    one_line_error(code, err, "bundled")


def test_install_the_real_file_then_auto_uses_it(home: Path, yolox_nano: Path, capsys) -> None:
    code, out, _ = run(["detectors", "install", "yolox-nano", str(yolox_nano)], capsys)
    assert code == 0 and "sha256 matches" in out
    assert (home / "models" / "yolox_nano.onnx").is_file()
    code, out, _ = run(["detectors", "--json"], capsys)
    assert json.loads(out)["auto"] == "yolox-nano"
