"""Verbs of adaptation: ``adapt`` (unsupervised, on the user's crops or store) and ``reembed``.

``adapt`` reads its crops here (a folder, or the configured store's thumbnails with their track
constraints, via ``indexer.ingest.reembed``) and hands plain paths and arrays to
``reid.train.adapt``, which never sees the store. torch is imported inside the verb only.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from reid.errors import ReidTraceError
from reidtrace.app import friendly_errors, progress_bar

__all__ = ["register"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def _folder_crops(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise ReidTraceError(f"--crops {str(folder)!r} is not a folder", hint="pass a folder")
    paths = sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not paths:
        anything = any(p.is_file() for p in folder.rglob("*"))
        raise ReidTraceError(
            f"--crops {str(folder)!r} holds no images"
            + (" (only other files)" if anything else " (it is empty)"),
            hint=f"pass a folder of person crops ({', '.join(IMAGE_SUFFIXES)}, any depth)",
        )
    return paths


def _fmt(scores: dict | None) -> str:
    if not scores:
        return "-"
    return f"mAP {scores['mAP']:.1f}, rank-1 {scores['rank1']:.1f}"


def _reembed(model: str, progress: object) -> dict:
    from indexer.ingest.reembed import reembed_store
    from indexer.settings import load_settings
    from indexer.store.db import make_engine
    from reid.embed import create_embedder

    s = load_settings()
    embedder = create_embedder("onnx", path=model)
    report = reembed_store(
        make_engine(s.database_url),
        embedder,
        s.index_location,
        s.index,
        progress=progress,  # type: ignore[arg-type]
    )
    out = dict(report.__dict__)
    out["next"] = f"set REIDTRACE_REID_MODEL={Path(model).resolve()} (or reid_model in the config)"
    return out


def adapt(
    out: Path = typer.Option(..., help="Run folder: last.pt, log.csv, model.onnx, report.json."),
    crops: Path | None = typer.Option(
        None, help="A folder of unlabelled person crops (any depth)."
    ),
    from_store: bool = typer.Option(
        False,
        "--from-store",
        help="Adapt on the configured store's sightings (their thumbnails); one track = one "
        "person, tracks sharing time in one camera = different people.",
    ),
    model: str = typer.Option(
        "default",
        help="Start model: default or source (the bundled FP32 source of the default; the "
        "INT8 default itself is not trainable), our FP32 .onnx export or a .pt.",
    ),
    eval_data: Path | None = typer.Option(
        None, "--eval", help="Market-format folder: mAP/rank-1 before and after."
    ),
    rounds: int = typer.Option(6, help="Rounds of cluster + train."),
    iters_per_round: int = typer.Option(100, help="Training batches per round."),
    max_minutes: float | None = typer.Option(
        None, help="Stop after this much wall time (the last round's model is exported)."
    ),
    batch_size: int = typer.Option(64, help="Crops per batch (pseudo-identities x instances)."),
    num_instances: int = typer.Option(4, help="Crops per pseudo-identity in a batch."),
    lr: float = typer.Option(3.5e-4, help="Adam learning rate."),
    eps: float = typer.Option(0.6, help="DBSCAN radius on the Jaccard distance."),
    min_samples: int = typer.Option(4, help="DBSCAN core size."),
    k1: int = typer.Option(30, help="k-reciprocal neighbourhood of the Jaccard distance."),
    k2: int = typer.Option(6, help="Local query expansion of the Jaccard distance."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in OUT."),
    device: str = typer.Option("auto", help="auto (CUDA when available), cpu or cuda."),
    seed: int = typer.Option(0, help="Random seed."),
    reembed: bool = typer.Option(
        False, "--reembed", help="Then re-embed the store with the new model, rebuild the index."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Adapt a ReID model to unlabelled crops of your cameras (clustering pseudo-labels)."""
    with friendly_errors(as_json):
        if (crops is None) == (not from_store):
            raise ReidTraceError(
                "adapt needs exactly one source of crops",
                hint="pass --crops DIR or --from-store",
            )
        groups, cannot_link, source = None, [], ""
        with progress_bar(not as_json) as update:
            if crops is not None:
                paths = _folder_crops(crops)
                source = str(crops)
            else:
                from indexer.ingest.reembed import store_crops
                from indexer.settings import load_settings
                from indexer.store.db import make_engine

                s = load_settings()
                got = store_crops(make_engine(s.database_url), out / "crops", progress=update)
                paths, groups, cannot_link = got.paths, got.groups, got.cannot_link
                source = f"store {s.database_url} ({got.tracks} tracks)"
            from reid.train.adapt import AdaptConfig
            from reid.train.adapt import adapt as run

            cfg = AdaptConfig(
                images=paths,
                out=out,
                model=model,
                groups=groups,
                cannot_link=cannot_link,
                eval_data=eval_data,
                rounds=rounds,
                iters_per_round=iters_per_round,
                max_minutes=max_minutes,
                batch_size=batch_size,
                num_instances=num_instances,
                lr=lr,
                eps=eps,
                min_samples=min_samples,
                k1=k1,
                k2=k2,
                resume=resume,
                device=device,
                seed=seed,
                extra={"source": source},
            )
            report = run(cfg, progress=update)
            if reembed:
                report["reembed"] = _reembed(report["model"], update)
    if as_json:
        typer.echo(json.dumps(report, sort_keys=True, default=str))
        return
    typer.echo(
        f"adapted {report['source']} on {source}: {report['rounds']} rounds, "
        f"{report['minutes']} min"
    )
    for row in report["history"]:
        typer.echo(
            f"  round {row['round']}: {row['clusters']} clusters, {row['clustered']}/"
            f"{row['crops']} crops clustered, loss {row['loss']}, {row['seconds']} s"
        )
    if report["eval"]:
        typer.echo(f"before: {_fmt(report['before'])}")
        typer.echo(f"after:  {_fmt(report['after'])}")
    typer.echo(f"model {report['model']} (id {report['model_id']})")
    if "reembed" in report:
        r = report["reembed"]
        typer.echo(
            f"re-embedded {r['sightings']} sightings, index holds {r['index_count']}; {r['next']}"
        )


def reembed_cmd(
    model: str = typer.Option(
        ..., help="The new model for every sighting: default (the bundled one) or FILE.onnx."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Re-embed the store's sightings (from their thumbnails) with MODEL and rebuild the index."""
    with friendly_errors(as_json):
        if model.strip() == "default":  # e.g. a store of the previous default, after an upgrade
            from reid.embed import default_model

            path = default_model()
        else:
            path = Path(model).expanduser()
        if path.suffix.lower() != ".onnx":
            raise ReidTraceError(
                f"--model {model!r} is not an .onnx file",
                hint="pass default or export a checkpoint first (`reidtrace export`)",
            )
        with progress_bar(not as_json) as update:
            out = _reembed(str(path), update)
    if as_json:
        typer.echo(json.dumps(out, sort_keys=True))
        return
    typer.echo(
        f"re-embedded {out['sightings']} sightings and {out['tracks']} tracks with "
        f"{out['model']} (was {', '.join(out['old_models'])}); index holds {out['index_count']}"
    )
    typer.echo(out["next"])


def register(app: typer.Typer) -> None:
    """Add ``adapt`` and ``reembed`` to the app (called by ``reidtrace.cli``)."""
    app.command()(adapt)
    app.command("reembed")(reembed_cmd)
