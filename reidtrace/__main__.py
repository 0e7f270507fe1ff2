"""`python -m reidtrace` runs the `reidtrace` command (where its script is not on PATH)."""

from reidtrace.cli import main

main()
