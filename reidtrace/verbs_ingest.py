"""Verbs of ingestion: ``ingest``, ``index rebuild|verify``, ``evaluate-tracking``,
``tracks export``, ``bench ingest`` and ``bench search``.

Verb bodies import ``indexer`` (FAISS, SQLAlchemy, OpenCV, ONNX Runtime) and the settings lazily,
so ``reidtrace --help`` stays fast; no import here is deferred to avoid a cycle.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer

from reid.errors import ReidTraceError
from reidtrace.app import bench_app, err_console, friendly_errors, progress_bar


def _model_path(model: str | None, setting: str) -> str | None:
    """``--model`` beats the ``reid_model`` setting; "default" means the bundled model."""
    chosen = model or setting
    return None if chosen in (None, "", "default") else chosen


def _model_id(model: str | None, setting: str) -> str:
    """The id of the configured model (``--model``, else ``reid_model``), which every stored
    vector and the index manifest carry (``reid.embed.model_identity``)."""
    from reid.embed import default_model, model_identity

    return model_identity(_model_path(model, setting) or default_model())


ZONE_HELP = (
    '"include:x,y x,y x,y ..." or "exclude:x,y ..." in image pixels (repeatable), or a .json '
    "file of zones: boxes whose foot point is outside are dropped (replaces cameras.json zones)."
)
MODEL_HELP = "ReID model (.onnx) the store was built with; default: reid_model (the bundled one)."


def register(app: typer.Typer) -> None:
    """Add the ingestion verbs and the ``index``/``tracks`` groups (called by ``reidtrace.cli``)."""
    index_app = typer.Typer(help="The FAISS vector index: rebuild it from SQL, or check it.")
    tracks_app = typer.Typer(help="Stored tracks.")
    app.add_typer(index_app, name="index")
    app.add_typer(tracks_app, name="tracks")

    @app.command()
    def ingest(
        paths: list[Path] = typer.Argument(..., help="Video files, folders, frame folders."),
        camera: str | None = typer.Option(
            None, help="Camera name (default: from cameras.json or the file)."
        ),
        start: str | None = typer.Option(
            None, help="UTC start time, ISO 8601 (default: cameras.json or file time)."
        ),
        workers: int = typer.Option(
            0, help="Processes, one video each (0 = settings / one per core)."
        ),
        ray: str | None = typer.Option(
            None, "--ray", help="'auto' for a local Ray cluster, or an address."
        ),
        detector: str | None = typer.Option(
            None,
            help="auto (default: the best installed, see `reidtrace detectors`), yolox-nano, "
            "nanodet, nanodet-float, centernet, hog, mog2, oracle.",
        ),
        model: str | None = typer.Option(
            None, help="ReID model (.onnx); default: the bundled one."
        ),
        appearance: str | None = typer.Option(
            None,
            help="Tracking cue: histogram (default), reid, or fused (both; each box is embedded).",
        ),
        stride: int | None = typer.Option(None, help="Detect every Nth frame (default 1)."),
        low_score: float | None = typer.Option(
            None,
            help="Weak boxes down to this score may continue existing tracks (default 0.15; "
            "0 = off: the detector's own threshold only).",
        ),
        ground_cue: bool | None = typer.Option(
            None,
            "--ground-cue/--no-ground-cue",
            help="Also track foot points on the ground where cameras.json gives a homography "
            "(default off: fewer ID switches, not always a better IDF1; docs/tracking.md).",
        ),
        max_gap: int | None = typer.Option(
            None,
            help="Bridge up to this many frames without a detection inside a track with "
            "interpolated boxes (default 10; 0 = off; frames skipped by --stride are always "
            "filled).",
        ),
        zone: list[str] = typer.Option([], "--zone", help=ZONE_HELP),
        clutter: str | None = typer.Option(
            None,
            help="Static clutter learned from the footage (cones, posts): weak (default: boxes "
            "there start no track, weak boxes there feed only tracks that moved), all (no box "
            "there feeds a track that never moved), off (docs/tracking.md).",
        ),
        stitch: bool | None = typer.Option(
            None,
            "--stitch/--no-stitch",
            help="Join a track that breaks to the track that continues it (default: the "
            "detector's tracking profile, docs/tracking.md).",
        ),
        min_track_score: float | None = typer.Option(
            None,
            help="Store a track's boxes only while the mean detector confidence of its boxes "
            "reaches this (default: the detector's tracking profile, YOLOX-Nano 0.5; 0 = off; "
            "docs/tracking.md).",
        ),
        detector_input: str | None = typer.Option(
            None,
            help="Network input HxW for a resizable detector (YOLOX-Nano), e.g. 480x640, "
            "multiples of 32 (default: per camera, its native size within 384x480 pixels; "
            "docs/tracking.md).",
        ),
        market: bool = typer.Option(
            False, "--market", help="PATHS are Market-1501-format folders of crops, not footage."
        ),
        split: str = typer.Option("gallery", help="With --market: gallery, query, train or all."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Detect, track, embed and index people in footage; resumable and idempotent."""
        from indexer.ingest import IngestConfig
        from indexer.ingest import ingest as run
        from indexer.settings import load_settings
        from reid.zones import parse_zones

        with friendly_errors(as_json):
            s = load_settings()
            zones = parse_zones(zone)
            settings = _tracking_settings(
                low_score,
                detector=detector,
                max_gap=max_gap,
                clutter=clutter,
                stitch=stitch,
                min_track_score=min_track_score,
                detector_input=detector_input,
            ) | {
                k: v
                for k, v in (
                    ("appearance", appearance),
                    ("detect_stride", stride),
                    ("ground_cue", ground_cue),
                )
                if v is not None
            }
            cfg = IngestConfig.from_settings(
                embedder_path=_model_path(model, s.reid_model),
                models_dir=str(s.models_dir),
                **settings,
            )
            n = workers or s.workers or (os.cpu_count() or 1)
            with progress_bar(not as_json) as update:
                report = run(
                    [str(p) for p in paths],
                    db_url=s.database_url,
                    index_path=s.index_location,
                    index_settings=s.index,
                    cfg=cfg,
                    camera=camera,
                    start=start,
                    workers=n,
                    ray_address=(None if ray is None else ("auto-local" if ray == "auto" else ray)),
                    market_split=split if market else None,
                    zones=zones,
                    progress=update,
                )
        d = report.as_dict()
        if as_json:
            typer.echo(json.dumps(d, sort_keys=True, default=str))
        else:
            for v in d["videos"]:
                line = f"{v['status']:8s} {v['camera']:10s} {Path(v['path']).name}"
                if v["status"] == "done":
                    line += (
                        f"  {v['frames']} frames, {v['detections']} boxes,"
                        f" {v['sightings']} sightings, {v['seconds']} s"
                    )
                if v["error"]:
                    line += f"  error: {v['error']}"
                typer.echo(line)
                for note in v["notes"]:
                    typer.echo(f"         {note}")
            t = d["totals"]
            typer.echo(
                f"{t['done']} done, {t['skipped']} skipped, {t['failed']} failed; "
                f"index holds {d['index'].get('count', 0)} vectors"
            )
        if not report.ok:
            raise typer.Exit(1)

    @index_app.command("rebuild")
    def index_rebuild(
        model: str | None = typer.Option(None, help=MODEL_HELP),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Rebuild the vector index from the SQL store (the source of truth).

        It re-reads the stored vectors and cannot re-embed them: a store of another model is
        refused (ingest again with the model you want)."""
        from indexer.index import rebuild_index
        from indexer.settings import load_settings
        from indexer.store.db import make_engine

        with friendly_errors(as_json):
            s = load_settings()
            model_id = _model_id(model, s.reid_model)
            manifest = rebuild_index(
                make_engine(s.database_url), s.index_location, s.index, model_id
            )
        out = manifest.model_dump(mode="json")
        shown = json.dumps(out, sort_keys=True) if as_json else f"rebuilt {s.index_location}: {out}"
        typer.echo(shown)

    @index_app.command("verify")
    def index_verify(
        model: str | None = typer.Option(None, help=MODEL_HELP),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Check that the vector index and the SQL store agree (exit 1 when they do not)."""
        from indexer.index import verify_index
        from indexer.settings import load_settings
        from indexer.store.db import make_engine

        with friendly_errors(as_json):
            s = load_settings()
            model_id = _model_id(model, s.reid_model)
            report = verify_index(make_engine(s.database_url), s.index_location, model_id)
        out = report.model_dump(mode="json") | {"ok": report.ok}
        if as_json:
            typer.echo(json.dumps(out, sort_keys=True))
        else:
            typer.echo("index and store agree" if report.ok else "\n".join(report.problems()))
        if not report.ok:
            raise typer.Exit(1)

    @app.command("evaluate-tracking")
    def evaluate_tracking(
        world: Path | None = typer.Option(
            None, help="An ingested synthetic world (reidtrace synth)."
        ),
        mot: list[Path] = typer.Option(
            [],
            "--mot",
            help="MOTChallenge sequence folder (seqinfo.ini, gt/gt.txt, img1/ or a video); "
            "repeatable; ingested first when the store does not hold it.",
        ),
        video: Path | None = typer.Option(
            None, help="With one --mot: its footage, when the folder has none."
        ),
        frames: str | None = typer.Option(
            None, help="With --mot: score only frames A:B (1-based, inclusive), e.g. 1:397."
        ),
        zone: list[str] = typer.Option([], "--zone", help=ZONE_HELP),
        score_zone: list[str] = typer.Option(
            [],
            "--score-zone",
            help="With --mot: a zone (same syntax) applied to scoring only, not to ingestion: "
            "e.g. the area the truth annotates.",
        ),
        gt_scale: float | None = typer.Option(
            None, help="With --mot: multiply the truth's boxes (default: video width / imWidth)."
        ),
        detector: str | None = typer.Option(
            None, help="With --mot: the detector to ingest with (default auto), as for ingest."
        ),
        low_score: float | None = typer.Option(
            None, help="With --mot: as for ingest (weak-box bar; 0 = one stage)."
        ),
        max_gap: int | None = typer.Option(None, help="With --mot: as for ingest."),
        clutter: str | None = typer.Option(None, help="With --mot: as for ingest."),
        stitch: bool | None = typer.Option(
            None, "--stitch/--no-stitch", help="With --mot: as for ingest."
        ),
        min_track_score: float | None = typer.Option(None, help="With --mot: as for ingest."),
        detector_input: str | None = typer.Option(None, help="With --mot: as for ingest."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Score stored tracks against ground truth: a synthetic world (MOTA, IDF1, ID switches)
        or MOTChallenge sequences (also HOTA, recall, precision; per sequence and pooled)."""
        from indexer.settings import load_settings

        with friendly_errors(as_json):
            if (world is None) == (not mot):
                raise ReidTraceError(
                    "give either --world or --mot", hint="e.g. --mot data/TUD-Stadtmitte"
                )
            settings = _tracking_settings(
                low_score,
                detector=detector,
                max_gap=max_gap,
                clutter=clutter,
                stitch=stitch,
                min_track_score=min_track_score,
                detector_input=detector_input,
            )
            if world is not None and settings:
                raise ReidTraceError(
                    f"--{next(iter(settings)).replace('_', '-')} goes with --mot",
                    hint="a world is scored as ingested: give the settings to `reidtrace ingest`",
                )
            if world is not None:
                from indexer.ingest.evaluate import evaluate_tracking as run

                out = run(world, db_url=load_settings().database_url)
            else:
                zones = (zone, score_zone)
                out = _evaluate_mot(mot, video, frames, zones, gt_scale, as_json, settings)
        if as_json:
            typer.echo(json.dumps(out, sort_keys=True))
        elif world is not None:
            typer.echo(
                f"MOTA {out['mota']:.3f}  IDF1 {out['idf1']:.3f}  ID switches {out['id_switches']}"
            )
            for cam, sc in out["per_camera"].items():
                typer.echo(
                    f"  {cam}: MOTA {sc['mota']:.3f} IDF1 {sc['idf1']:.3f} "
                    f"switches {sc['id_switches']}"
                )
        else:
            from indexer.ingest.bench_tracking import markdown_table

            rows = dict(out["sequences"])
            if len(rows) > 1:
                rows["pooled"] = out["pooled"]
            for note in out["notes"] or [f"detector {out['detector']}"]:
                typer.echo(note)
            typer.echo(markdown_table(rows))

    @tracks_app.command("export")
    def tracks_export(
        out: Path = typer.Argument(..., help="File to write."),
        camera: str = typer.Option(..., help="Camera name."),
        fmt: str = typer.Option("mot", "--format", help="Output format (mot)."),
        video: int | None = typer.Option(None, help="Video id, when the camera has several."),
    ) -> None:
        """Write a camera's stored tracks in MOTChallenge format (1-based frame numbers)."""
        from indexer.ingest.evaluate import export_tracks
        from indexer.settings import load_settings

        with friendly_errors():
            if fmt != "mot":
                raise ReidTraceError(f"unknown format {fmt!r}", hint="only 'mot' is supported")
            path = export_tracks(camera, out, db_url=load_settings().database_url, video_id=video)
        err_console.print(f"wrote {path}")

    @bench_app.command("ingest")
    def bench_ingest(
        as_json: bool = typer.Option(False, "--json"),
        detector: str = typer.Option("auto", help="Detector to time (auto: the best installed)."),
        stride: int = typer.Option(1, help="Detect every Nth frame."),
        workers: int = typer.Option(0, help="Processes for the archive run (0 = one per core)."),
        appearance: str = typer.Option(
            "histogram", help="Tracking cue to time: histogram, reid or fused."
        ),
    ) -> None:
        """Frames/s, x real time and a per-stage breakdown: the synthetic world one video at a
        time and as an archive (process pool, wall clock), and PETS."""
        from indexer.ingest.bench import bench_ingest as run
        from indexer.settings import load_settings

        with friendly_errors(as_json), progress_bar(not as_json) as update:
            out = run(
                detector=detector,
                models_dir=load_settings().models_dir,
                stride=stride,
                workers=workers or None,
                appearance=appearance,
                progress=update,
            )
        if as_json:
            typer.echo(json.dumps(out, sort_keys=True))
            return
        for name, r in out.items():
            if isinstance(r, dict) and "fps" in r:
                typer.echo(
                    f"{name}: {r['fps']} frames/s, {r['x_realtime']}x real time, {r['stages']}"
                )
            elif isinstance(r, dict):
                typer.echo(f"{name}: {r}")

    @bench_app.command("search")
    def bench_search(
        as_json: bool = typer.Option(False, "--json", help="One JSON object per row, in a list."),
        sizes: str = typer.Option(
            "100000,1000000", help="Gallery sizes, comma-separated ('' = contacts only)."
        ),
        quick: bool = typer.Option(
            False, "--quick", help="2000 vectors and 100 queries: a smoke run of seconds."
        ),
        queries: int = typer.Option(1000, help="Held-out queries (recall and latency)."),
        threads: int = typer.Option(2, help="FAISS threads to build and sweep (latency: 1)."),
        indexes: str = typer.Option(
            "hnsw,ivf,ivfpq,refine",
            help="Approximate indexes besides exact search: hnsw, ivf, ivfpq, refine "
            "(PCA256,HNSW32 re-ranked on the full vectors).",
        ),
        cache: Path | None = typer.Option(
            None,
            help="Keep generated vectors, built indexes and exact results here and reuse them.",
        ),
        build: bool = typer.Option(
            True,
            "--build/--no-build",
            help="--no-build: measure only the indexes already in --cache (a rerun that only "
            "queries).",
        ),
        contacts: int = typer.Option(
            1_000_000, help="Tracks of the synthetic store for the contacts rows (0 = none)."
        ),
        pg_url: str = typer.Option(
            os.environ.get(
                "REIDTRACE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
            ),
            help="A PostgreSQL server (admin URL) for the contacts row; '' = SQLite only.",
        ),
    ) -> None:
        """Exact vs approximate vector search (Flat, HNSW, IVF-Flat, IVF-PQ, PCA + HNSW
        re-ranked) and the vector database on synthetic ReID embeddings of the bundled model's
        size: recall@10 against
        exact search, single-query p50/p99 latency, memory, build time; then the contacts
        query over a synthetic store of --contacts tracks in SQLite and PostgreSQL."""
        import tempfile

        from indexer.bench_contacts import bench_contacts, contact_table, postgres_bench_url
        from indexer.index.bench_search import bench_search as run
        from indexer.index.bench_search import markdown_table, qdrant_row

        with friendly_errors(as_json), progress_bar(not as_json) as update:
            try:
                numbers = [int(s) for s in sizes.split(",") if s.strip()]
            except ValueError as err:
                raise ReidTraceError(
                    f"--sizes {sizes!r} is not a comma-separated list of integers",
                    hint="e.g. --sizes 100000,1000000",
                ) from err
            if quick:
                numbers, queries = [2000], min(queries, 100)
                contacts, pg_url = min(contacts, 2000), ""
            if contacts < 0:
                raise ReidTraceError(
                    f"--contacts must be >= 0, got {contacts}", hint="e.g. 1000000"
                )
            rows = (
                []
                if not numbers
                else run(
                    numbers,
                    n_queries=queries,
                    latency_queries=queries,
                    exact_latency_queries=min(queries, 100),
                    kinds=[k.strip() for k in indexes.split(",") if k.strip()],
                    extra_backends=(qdrant_row,),
                    cache=cache,
                    threads=threads,
                    build=build,
                    progress=update,
                )
            )
            found = []
            if contacts:
                with tempfile.TemporaryDirectory() as tmp:
                    folder = cache or Path(tmp)
                    folder.mkdir(parents=True, exist_ok=True)
                    sqlite = f"sqlite:///{folder / f'contacts_{contacts}.db'}"
                    found.append(bench_contacts(sqlite, contacts, progress=update))
                if pg_url:
                    try:
                        url = postgres_bench_url(pg_url)
                    except ReidTraceError as err:  # no server here: SQLite only, and say so
                        err_console.print(f"contacts on PostgreSQL skipped: {err.message}")
                    else:
                        found.append(bench_contacts(url, contacts, progress=update))
        if as_json:
            typer.echo(json.dumps(rows + found, sort_keys=True))
            return
        typer.echo(markdown_table(rows))
        if found:
            typer.echo("\n" + contact_table(found))

    @bench_app.command("tracking")
    def bench_tracking(as_json: bool = typer.Option(False, "--json")) -> None:
        """Tracking accuracy of the current defaults on the real dev sequences (PETS frames
        1-397 in its annotated area, TUD-Stadtmitte; from ../shared/data, skipped when absent)
        and two small synthetic worlds: one table (MOTA, IDF1, HOTA, switches, recall,
        precision)."""
        from indexer.ingest import IngestConfig
        from indexer.ingest.bench_tracking import bench_tracking as run
        from indexer.ingest.bench_tracking import markdown_table
        from indexer.settings import load_settings

        with friendly_errors(as_json), progress_bar(not as_json) as update:
            # the installed detector models count (``auto``); the ReID model does not matter
            cfg = IngestConfig(models_dir=str(load_settings().models_dir))
            out = run(cfg=cfg, progress=update)
        typer.echo(json.dumps(out, sort_keys=True) if as_json else markdown_table(out))


def _evaluate_mot(
    folders: list[Path],
    video: Path | None,
    frames: str | None,
    zones: tuple[list[str], list[str]],
    gt_scale: float | None,
    as_json: bool,
    settings: dict[str, Any],
) -> dict:
    """``evaluate-tracking --mot``: read the sequences, ingest them with the configured
    defaults when needed, and score them; ``zones`` are (``--zone``, ``--score-zone``)."""
    from indexer.ingest import IngestConfig
    from indexer.ingest.evaluate import evaluate_mot, parse_frames, read_sequence
    from indexer.settings import load_settings
    from reid.zones import parse_zones

    if video is not None and len(folders) != 1:
        raise ReidTraceError(
            "--video goes with exactly one --mot folder",
            hint="score sequences that hold their own footage together, or one at a time",
        )
    s = load_settings()
    seqs = [read_sequence(f, video=video) for f in folders]
    cfg = IngestConfig.from_settings(
        embedder_path=_model_path(None, s.reid_model), models_dir=str(s.models_dir), **settings
    )
    with progress_bar(not as_json) as update:
        return evaluate_mot(
            seqs,
            db_url=s.database_url,
            index_path=s.index_location,
            index_settings=s.index,
            cfg=cfg,
            frames=parse_frames(frames),
            zones=parse_zones(zones[0]),
            score_zones=parse_zones(zones[1]),
            gt_scale=gt_scale,
            progress=update,
        )


def _tracking_settings(low_score: float | None, **given: Any) -> dict[str, Any]:
    """The ingest settings the user gave (``ingest``, ``evaluate-tracking --mot``): only
    these override the detector's tracking profile. ``given``: ``detector``, the tracker
    flags by setting name, and ``detector_input`` ("HxW")."""
    size = given.pop("detector_input", None)
    settings = {k: v for k, v in given.items() if v is not None}
    if low_score is not None:
        settings["low_score"] = low_score or None  # 0 = one stage
    if size is not None:
        settings["detector_options"] = {"input_size": _input_size(size)}
    return settings


def _input_size(text: str) -> tuple[int, int]:
    """``"480x640"`` -> (480, 640): a detector's network input, height by width."""
    parts = text.lower().replace(" ", "").split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 and int(p) % 32 == 0 for p in parts):
        raise ReidTraceError(
            f"--detector-input must be HEIGHTxWIDTH in multiples of 32, got {text!r}",
            hint="e.g. 480x640; leave it out for each camera's own size",
        )
    return int(parts[0]), int(parts[1])
