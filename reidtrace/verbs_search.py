"""Verbs of search by photo: ``search`` and ``evaluate-search`` (docs/search.md).

Verb bodies import ``indexer`` (FAISS, SQLAlchemy, OpenCV, ONNX Runtime) lazily, so
``reidtrace --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from reid.errors import ReidTraceError
from reidtrace.app import err_console, friendly_errors, model_path, open_searcher, progress_bar

__all__ = ["register"]

MODEL_HELP = "ReID model (.onnx) the store was built with; default: reid_model (the bundled one)."


def _hit_row(rank: int, h: Any) -> str:
    return (
        f"{rank:>4}  {h.mean_score:6.3f}  {h.score:6.3f}  {f'{h.num_hits}/{h.num_sightings}':>5}  "
        f"{h.camera:<12} "
        f"{h.start:%Y-%m-%d %H:%M:%S}  {h.end:%H:%M:%S}  {h.track_id:>7}  {h.video_id:>5}  "
        f"{h.frame_idx:>6}  {h.sighting_id:>8}"
    )


HEADER = (
    "rank    mean    best   hits  camera       start                end          track  video"
    "   frame  sighting"
)


def register(app: typer.Typer) -> None:
    """Add ``search`` and ``evaluate-search`` to the ``reidtrace`` app."""

    @app.command()
    def search(
        image: Path = typer.Argument(..., help="A photo: a person crop or a full frame."),
        top_k: int = typer.Option(20, "--top-k", help="Tracks to return per person (>= 1)."),
        camera: list[str] = typer.Option(
            [], "--camera", help="Only tracks of this camera (repeatable: any of them)."
        ),
        from_: str | None = typer.Option(
            None, "--from", help="Only tracks that end at or after this ISO-8601 time (UTC)."
        ),
        to: str | None = typer.Option(
            None, "--to", help="Only tracks that start at or before this ISO-8601 time (UTC)."
        ),
        rerank: bool = typer.Option(
            False, "--rerank", help="Alpha query expansion with the 5 nearest sightings."
        ),
        rank_by: str = typer.Option(
            "both",
            "--rank-by",
            help="Rank tracks by (best + mean) / 2 of their sightings' similarity (both), the "
            "mean, or the best.",
        ),
        box: int | None = typer.Option(
            None, "--box", help="With several people in the photo: search only person N (0..)."
        ),
        crop: bool = typer.Option(
            False, "--crop", help="The photo is a person crop: use it whole, run no detector."
        ),
        thumbnails: Path | None = typer.Option(
            None, "--thumbnails", help="Write each hit's best sighting JPEG into this folder."
        ),
        model: str | None = typer.Option(None, help=MODEL_HELP),
        detector: str = typer.Option(
            "auto", help="Finds the people of a photo: auto (the best installed), ..."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    ) -> None:
        """Find the stored tracks that look like the person in IMAGE, best first."""
        from indexer.query.search import SearchFilters, parse_time

        with friendly_errors(as_json):
            if top_k < 1:
                raise ReidTraceError(f"--top-k must be >= 1, got {top_k}", hint="e.g. --top-k 20")
            if box is not None and box < 0:
                raise ReidTraceError(f"--box must be >= 0, got {box}", hint="people are 0, 1, ...")
            filters = SearchFilters(
                cameras=tuple(dict.fromkeys(camera)),
                start=None if from_ is None else parse_time(from_, "--from"),
                end=None if to is None else parse_time(to, "--to"),
            )
            searcher = open_searcher(model, detector)
            results = searcher.search_image(
                image,
                top_k=top_k,
                filters=filters,
                rerank=rerank,
                mode="crop" if crop else "auto",
                box=box,
                rank_by=rank_by,
            )
            files = _write_thumbnails(searcher, results, thumbnails)
        doc = {
            "query": str(image),
            "model": searcher.embedder.model_id,
            "kind": results[0].person.kind,
            "top_k": top_k,
            "rerank": rerank,
            "rank_by": rank_by,
            "filters": {
                "cameras": list(filters.cameras),
                "from": None if filters.start is None else filters.start.isoformat(),
                "to": None if filters.end is None else filters.end.isoformat(),
            },
            "people": [
                {
                    "box_index": r.person.box_index,
                    "box": list(r.person.box),
                    "confidence": r.person.confidence,
                    "hits": [h.as_dict() | {"thumbnail": files.get(h.sighting_id)} for h in r.hits],
                }
                for r in results
            ],
        }
        if as_json:
            typer.echo(json.dumps(doc))
            return
        for r in results:
            p = r.person
            if p.kind == "crop":
                typer.echo(
                    f"person crop ({int(p.box[2])}x{int(p.box[3])} px), model {doc['model']}"
                )
            else:
                conf = "" if p.confidence is None else f", detector score {p.confidence:.2f}"
                box_txt = ",".join(f"{v:.0f}" for v in p.box)
                typer.echo(f"person {p.box_index} of the photo: box {box_txt}{conf}")
            if not r.hits:
                typer.echo("  no matching tracks")
                continue
            typer.echo(HEADER)
            for rank, h in enumerate(r.hits, 1):
                typer.echo(_hit_row(rank, h))
        if files:
            err_console.print(f"wrote {len(files)} thumbnails to {thumbnails}", markup=False)

    @app.command("evaluate-search")
    def evaluate_search(
        market: Path = typer.Option(
            ...,
            "--market",
            help="Market-1501-format folder whose gallery was ingested (ingest --market DIR).",
        ),
        rerank: bool = typer.Option(False, "--rerank", help="Search with query expansion."),
        compare: bool = typer.Option(
            True,
            "--compare/--no-compare",
            help="Also run `reidtrace evaluate` on the folder (same model) and print both.",
        ),
        model: str | None = typer.Option(None, help=MODEL_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    ) -> None:
        """Score search by photo with the Market-1501 protocol (rank-1, mAP), beside evaluate."""
        from indexer.query.search import evaluate_market_search
        from indexer.settings import load_settings

        with friendly_errors(as_json), progress_bar(not as_json) as update:
            searcher = open_searcher(model, None)  # Market queries are crops: no detector
            out: dict[str, Any] = {
                "search": evaluate_market_search(searcher, market, rerank=rerank, progress=update)
            }
            if compare:
                from reid.evaluate.run import evaluate_model

                path = model_path(model, load_settings().reid_model)
                out["evaluate"] = evaluate_model(market, path, progress=update)
        out["model"] = searcher.embedder.model_id
        if as_json:
            typer.echo(json.dumps(out))
            return
        cols = [("search", out["search"])] + ([("evaluate", out["evaluate"])] if compare else [])
        typer.echo(
            f"model    {out['model']}" + (" (search with query expansion)" if rerank else "")
        )
        typer.echo("         " + "".join(f"{name:>10}" for name, _ in cols))
        for key, label in (("rank1", "rank-1"), ("mAP", "mAP"), ("rank5", "rank-5")):
            typer.echo(f"{label:<9}" + "".join(f"{r[key]:>9.2f}%" for _, r in cols))
        typer.echo(
            f"queries  {out['search']['num_query']} scored, gallery {out['search']['num_gallery']}"
        )


def _write_thumbnails(searcher: Any, results: list, folder: Path | None) -> dict[int, str]:
    """Each hit's best sighting JPEG as ``track<T>_sighting<S>.jpg``; sighting id -> path."""
    if folder is None:
        return {}
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ReidTraceError(
            f"cannot create the thumbnails folder {folder}: {err.strerror}",
            hint="pass a writable --thumbnails folder",
        ) from err
    files: dict[int, str] = {}
    for r in results:
        for h in r.hits:
            if h.sighting_id in files:
                continue
            jpeg = searcher.thumbnail(h.sighting_id)
            if jpeg is None:
                continue
            path = folder / f"track{h.track_id}_sighting{h.sighting_id}.jpg"
            path.write_bytes(jpeg)
            files[h.sighting_id] = str(path)
    return files
