"""``reidtrace persons``, ``reidtrace trace`` and ``reidtrace evaluate-tracing`` (issue 22).

The query verbs: group tracks into cross-camera persons, answer "where was this person and who
was close", and score those answers against a synthetic world's truth. Bodies import the
library lazily, so ``reidtrace --help`` stays fast.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from reid.errors import ReidTraceError
from reidtrace.app import friendly_errors, open_searcher

__all__ = ["register"]


def _searcher(*, crop: bool) -> Any:
    """The photo search of the current settings (``reidtrace search``'s): the best installed
    detector finds the people of a frame unless the photo is a known crop."""
    return open_searcher(None, None if crop else "auto")


def _photo_tracks() -> Callable[[Path], int | None]:
    """evaluate-tracing --query photo: crop file -> the track a search of it puts first."""
    from indexer.query.trace import photo_track_finder

    return photo_track_finder(_searcher(crop=True))


def _print_trace(doc: dict) -> None:
    sub = doc["subject"]
    head = f"person {sub['person_id']}: tracks {', '.join(map(str, sub['track_ids']))}"
    if sub["kind"] == "photo":
        head += f" (photo {sub['query']}, score {sub['score']:.3f})"
    typer.echo(head)
    for v in doc["trajectory"]:
        typer.echo(
            f"  {v['camera']:8s} {v['enter'][11:19]} - {v['leave'][11:19]}  "
            f"confidence {v['confidence']:.2f}  tracks {v['track_ids']}"
        )
    d = doc["contact_definition"]
    within = "co-appearing" if d["distance"] is None else f"within {d['distance']:g} {d['units']}"
    typer.echo(f"contacts ({within} for >= {d['min_seconds']:g} s): {len(doc['contacts'])}")
    for c in doc["contacts"]:
        who = (
            f"person {c['person_id']}" if c["person_id"] is not None else f"tracks {c['track_ids']}"
        )
        cams = ", ".join(f"{p['camera']} {p['exposure_s']:.1f} s" for p in c["per_camera"])
        closest = "" if c["closest"] is None else f", closest {c['closest']:.2f} {c['units']}"
        via = f" via person {c['via_person_id']}" if c["order"] > 1 else ""
        typer.echo(f"  {who}{via}: {c['exposure_s']:.1f} s ({cams}){closest}")
    for note in doc["notes"]:
        typer.echo(f"note: {note}")


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
            if done.split:
                typer.echo(f"  {done.split} tracks cut where the tracker switched people")
            for pair, (lo, hi) in sorted(done.transit.items()):
                typer.echo(f"  learned transit {pair.replace('>', ' -> ')}: {lo}-{hi} s")

    @app.command()
    def trace(
        image: Path | None = typer.Argument(
            None, help="A photo of the person: a crop, or a frame (then --box picks one)."
        ),
        track: int | None = typer.Option(None, "--track", help="Trace the person of this track."),
        person: int | None = typer.Option(None, "--person", help="Trace this person."),
        distance: float | None = typer.Option(
            None,
            help="Contact distance: metres (default 2), or box heights without a ground plane.",
        ),
        min_seconds: float = typer.Option(5.0, help="Contact: at least this long within distance."),
        depth: int = typer.Option(1, help="1: contacts; 2 (or 3): also contacts of contacts."),
        box: int | None = typer.Option(
            None, "--box", help="With several people in the photo: trace person N (0..)."
        ),
        crop: bool = typer.Option(
            False, "--crop", help="The photo is a person crop: use it whole, run no detector."
        ),
        report: Path | None = typer.Option(
            None, "--report", help="Also write the trace as a self-contained HTML page."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the trace document."),
    ) -> None:
        """Where was this person, when, and who was close: trajectory across cameras, contacts."""
        from indexer.query.report import SqlReportSource, write_report
        from indexer.query.session import query_session
        from indexer.query.trace import check_contact_args, photo_subject
        from indexer.query.trace import trace as run
        from indexer.settings import load_settings

        with friendly_errors(as_json):
            check_contact_args(distance, min_seconds, depth)
            if report is not None and (report.is_dir() or not report.parent.is_dir()):
                raise ReidTraceError(
                    f"cannot write the report to {report}",
                    hint="give a file in an existing folder, e.g. --report trace.html",
                )
            given = [x is not None for x in (image, track, person)]
            if sum(given) != 1:
                raise ReidTraceError(
                    "give one subject: IMAGE, --track ID or --person ID",
                    hint="e.g. `reidtrace trace photo.jpg` or `reidtrace trace --track 12`",
                )
            s = load_settings()
            score = None
            if image is not None:
                track, score = photo_subject(_searcher(crop=crop), image, box=box, crop=crop)
            with query_session(s.database_url) as session:
                doc = run(
                    session,
                    s.persons,
                    track_id=track,
                    person_id=person,
                    distance=distance,
                    min_seconds=min_seconds,
                    depth=depth,
                    query=None if image is None else str(image),
                    score=score,
                )
                if report is not None:
                    write_report(doc, SqlReportSource(session), report)
        if as_json:
            typer.echo(json.dumps(doc))
            return
        _print_trace(doc)
        if report is not None:
            typer.echo(f"report: {report}")

    @app.command("evaluate-tracing")
    def evaluate_tracing(
        world: Path = typer.Option(..., help="An ingested synthetic world (reidtrace synth)."),
        distance: float | None = typer.Option(None, help="Contact distance in metres (2)."),
        min_seconds: float = typer.Option(5.0, help="Contact: at least this long within distance."),
        query: str = typer.Option(
            "box",
            help="box: trace from the truth box of each identity's query crop; photo: from the "
            "track a photo search of the crop ranks first.",
        ),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Trace every test identity of an ingested world by its query crop and score the
        trajectories and contacts against the world's truth (fractions 0..1)."""
        from indexer.query.evaluate import evaluate_tracing as run
        from indexer.query.trace import check_contact_args
        from indexer.settings import load_settings

        with friendly_errors(as_json):
            check_contact_args(distance, min_seconds, 1)
            if query not in ("box", "photo"):
                raise ReidTraceError(f"--query must be box or photo, got {query!r}", hint="box")
            s = load_settings()
            out = run(
                world,
                db_url=s.database_url,
                cfg=s.persons,
                distance=distance,
                min_seconds=min_seconds,
                photo_track=None if query == "box" else _photo_tracks(),
            )
        if as_json:
            typer.echo(json.dumps(out, sort_keys=True))
            return
        mae = out["exposure_mae_s"]
        typer.echo(
            f"{out['identities']} test identities traced by {out['query']}\n"
            f"trajectory precision {out['trajectory_precision']:.3f}  "
            f"recall {out['trajectory_recall']:.3f}  "
            f"({out['visits_matched']} of {out['visits_predicted']} predicted visits match, "
            f"of {out['visits_true']} true)\n"
            f"contact precision {out['contact_precision']:.3f}  "
            f"recall {out['contact_recall']:.3f}  "
            f"exposure error {'-' if mae is None else f'{mae:.1f} s'}  "
            f"({out['contact_pairs_matched']} of {out['contact_pairs_predicted']} predicted "
            f"pairs match, of {out['contact_pairs_true']} true)"
        )
