"""Running the CLI in-process and checking its one-line errors (shared by the CLI tests)."""

from __future__ import annotations

import pytest

from reidtrace.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``reidtrace ARGV``."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return exc.value.code or 0, out, err


def one_line_error(code: int, err: str, needle: str) -> None:
    """A user error: exit code 2, exactly one line starting with 'error:', no traceback."""
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error:") and needle in lines[0], err
    assert "Traceback" not in err
