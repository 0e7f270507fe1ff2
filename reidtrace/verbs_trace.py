"""``reidtrace persons``, ``reidtrace trace`` and ``reidtrace evaluate-tracing`` (issue 22).

The query verbs: group tracks into cross-camera persons, answer "where was this person and who
was close", and score those answers against a synthetic world's truth. Bodies import the
library lazily, so ``reidtrace --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from reid.errors import ReidTraceError
from reidtrace.app import friendly_errors

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``persons``, ``trace`` and ``evaluate-tracing`` to the ``reidtrace`` app."""

    @app.command()
    def persons(
        rebuild: bool = typer.Option(
            False, "--rebuild", help="Drop every person and group all tracks again."
        ),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Group stored tracks into cross-camera persons (new tracks join or start persons;
        `trace` does this by itself when needed)."""
        from indexer.query.persons import ensure_persons, rebuild_persons
        from indexer.query.session import query_session
        from indexer.settings import load_settings

        with friendly_errors(as_json):
            s = load_settings()
            with query_session(s.database_url) as session:
                if rebuild:
                    ensure_persons(session, s.persons)  # refuses an empty store
                    done = rebuild_persons(session, s.persons)
                else:
                    done = ensure_persons(session, s.persons)
        out = (
            done.as_dict()
            if done is not None
            else {"tracks": None, "assigned": 0, "rebuilt": False, "up_to_date": True}
        )
        if as_json:
            typer.echo(json.dumps(out, sort_keys=True))
        elif done is None:
            typer.echo("persons are up to date")
        else:
            verb = "rebuilt" if done.rebuilt else "updated"
            typer.echo(
                f"{verb}: {done.tracks} tracks in {done.persons} persons "
                f"({done.assigned} tracks assigned, {done.new_persons} new persons)"
            )
            for pair, (lo, hi) in sorted(done.transit.items()):
                typer.echo(f"  learned transit {pair.replace('>', ' -> ')}: {lo}-{hi} s")

    @app.command()
    def trace(
        image: Path | None = typer.Argument(None, help="A photo of the person (a crop)."),
        track: int | None = typer.Option(None, "--track", help="Trace the person of this track."),
        person: int | None = typer.Option(None, "--person", help="Trace this person."),
        distance: float | None = typer.Option(
            None,
            help="Contact distance: metres (default 2), or box heights without a ground plane.",
        ),
        min_seconds: float = typer.Option(5.0, help="Contact: at least this long within distance."),
        depth: int = typer.Option(1, help="1: contacts; 2: also contacts of contacts."),
        as_json: bool = typer.Option(False, "--json", help="Print the trace document."),
    ) -> None:
        """Where was this person, when, and who was close: a trajectory across cameras."""
        from indexer.query.session import query_session
        from indexer.query.trace import check_contact_args
        from indexer.query.trace import trace as run
        from indexer.settings import load_settings

        with friendly_errors(as_json):
            check_contact_args(distance, min_seconds, depth)
            given = [x is not None for x in (image, track, person)]
            if sum(given) != 1:
                raise ReidTraceError(
                    "give one subject: IMAGE, --track ID or --person ID",
                    hint="e.g. `reidtrace trace --track 12`",
                )
            if image is not None:
                raise ReidTraceError(
                    "tracing by photo needs the photo search, which this build does not have",
                    hint="trace a track instead: --track ID",
                )
            s = load_settings()
            with query_session(s.database_url) as session:
                doc = run(
                    session,
                    s.persons,
                    track_id=track,
                    person_id=person,
                    distance=distance,
                    min_seconds=min_seconds,
                    depth=depth,
                )
        if as_json:
            typer.echo(json.dumps(doc))
            return
        sub = doc["subject"]
        typer.echo(f"person {sub['person_id']}: tracks {', '.join(map(str, sub['track_ids']))}")
        for v in doc["trajectory"]:
            typer.echo(
                f"  {v['camera']:8s} {v['enter'][11:19]} - {v['leave'][11:19]}  "
                f"confidence {v['confidence']:.2f}  tracks {v['track_ids']}"
            )
        for note in doc["notes"]:
            typer.echo(f"note: {note}")

    @app.command("evaluate-tracing")
    def evaluate_tracing(
        world: Path = typer.Option(..., help="An ingested synthetic world (reidtrace synth)."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Trace every test identity of an ingested world by its query crop and score the
        trajectories against the world's truth (fractions 0..1)."""
        from indexer.query.evaluate import evaluate_tracing as run
        from indexer.settings import load_settings

        with friendly_errors(as_json):
            s = load_settings()
            out = run(world, db_url=s.database_url, cfg=s.persons)
        if as_json:
            typer.echo(json.dumps(out, sort_keys=True))
            return
        typer.echo(
            f"trajectory precision {out['trajectory_precision']:.3f}  "
            f"recall {out['trajectory_recall']:.3f}  "
            f"({out['visits_matched']} of {out['visits_predicted']} predicted visits match, "
            f"of {out['visits_true']} true; {out['identities']} identities)"
        )
