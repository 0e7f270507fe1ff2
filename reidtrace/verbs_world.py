"""Verbs of the synthetic world: ``synth``, ``demo`` (every stage on a rendered world) and
``bench synth``.

Verb bodies import the library lazily (OpenCV, and for the demo FAISS, SQLAlchemy and ONNX
Runtime), so ``reidtrace --help`` stays fast; no import here is deferred to avoid a cycle.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from reid.errors import ReidTraceError
from reidtrace.app import bench_app, friendly_errors, out_console, progress_bar

__all__ = ["print_demo_summary", "print_demo_trace", "print_world_summary", "register"]


def synth(
    out: Path = typer.Argument(..., help="Folder to write the world into (new or empty)."),
    seed: int = typer.Option(0, help="Random seed: the same arguments give the same world."),
    cameras: int | None = typer.Option(
        None, help="Number of cameras, 1-8 [default: 4; 6 with --crops-only]."
    ),
    identities: int | None = typer.Option(
        None, help="Number of people [default: 48; 750 with --crops-only]."
    ),
    groups: int = typer.Option(6, help="Groups of 2-4 people who walk and stand together."),
    minutes: float = typer.Option(2.0, help="Minutes of footage per camera."),
    fps: float = typer.Option(10.0, help="Frames per second."),
    width: int = typer.Option(480, help="Frame width in pixels."),
    height: int = typer.Option(360, help="Frame height in pixels."),
    difficulty: float = typer.Option(0.5, help="0 (easy) .. 1 (hard): look-alikes, noise, blur."),
    passers: float = typer.Option(0.3, help="Share of lone people who only pass through."),
    hard_negatives: float = typer.Option(0.3, help="Share of identities that twin another."),
    crops_only: bool = typer.Option(
        False, "--crops-only", help="Fast path: only Market-format crops, no video."
    ),
    images_per_camera: int = typer.Option(
        8, help="With --crops-only: crops per identity and camera."
    ),
    variety: str = typer.Option(
        "none",
        help="With --crops-only: none | medium | high: domain-randomised crops (clothing "
        "textures, camera response per camera and sequence, backgrounds, crop sizes).",
    ),
    preview: bool = typer.Option(
        False, "--preview", help="Also write preview.png (a contact sheet)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a world already in OUT."),
    workers: int = typer.Option(0, help="Processes to render with (0 = one per CPU core)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Render a seeded multi-camera world with full ground truth (or only Market crops)."""
    from reid.synth import crops, world  # OpenCV: loaded only when the verb runs
    from reid.synth.preview import write_preview

    with friendly_errors(as_json):
        if variety != "none" and not crops_only:
            raise ReidTraceError(
                "--variety applies to --crops-only training crops only",
                hint="add --crops-only, or drop --variety for a video world",
            )
        if crops_only:
            cfg_c = crops.CropsConfig(
                seed=seed,
                cameras=6 if cameras is None else cameras,
                identities=750 if identities is None else identities,
                images_per_camera=images_per_camera,
                difficulty=difficulty,
                hard_negative_frac=hard_negatives,
                variety=variety,
            )
            with progress_bar(not as_json) as update:
                summary = crops.generate_crops(
                    out, cfg_c, workers=workers or None, overwrite=overwrite, progress=update
                )
        else:
            cfg = world.WorldConfig(
                seed=seed,
                cameras=4 if cameras is None else cameras,
                identities=48 if identities is None else identities,
                groups=groups,
                minutes=minutes,
                fps=fps,
                width=width,
                height=height,
                difficulty=difficulty,
                passer_frac=passers,
                hard_negative_frac=hard_negatives,
            )
            with progress_bar(not as_json) as update:
                summary = world.generate_world(
                    out, cfg, workers=workers or None, overwrite=overwrite, progress=update
                )
        if preview:
            summary["preview"] = str(write_preview(out))
    if as_json:
        typer.echo(json.dumps(summary, sort_keys=True))
        return
    print_world_summary(out, summary)


def print_world_summary(out: Path, summary: dict) -> None:
    """The summary of ``generate_world``/``generate_crops`` as a table (``synth`` and ``demo``)."""
    table = Table(title=f"synthetic world in {out}", show_header=False)
    m = summary["market"]
    rows = [
        ("identities (seen)", f"{summary['identities']} ({summary.get('identities_seen', '-')})"),
        ("cameras", " ".join(summary.get("cameras", [])) or "-"),
    ]
    if "frames_per_camera" in summary:
        rows += [
            ("frames per camera", str(summary["frames_per_camera"])),
            ("ground-truth boxes", str(summary["gt_boxes"])),
            ("visits (trajectory entries)", str(summary["visits"])),
            ("contact pairs", str(summary["contact_pairs"])),
        ]
    rows += [
        ("market train", f"{m['train_images']} images, {m['train_ids']} ids"),
        ("market query / gallery", f"{m['query_images']} / {m['gallery_images']} images"),
        ("market test ids", str(m["test_ids"])),
        ("distractors / junk", f"{m['distractors']} / {m['junk']}"),
    ]
    if "preview" in summary:
        rows.append(("preview", summary["preview"]))
    for k, v in rows:
        table.add_row(k, v)
    out_console.print(table)


def demo(
    out: Path | None = typer.Option(None, help="Where to put the demo world (default: HOME/demo)."),
    seed: int = typer.Option(7, help="Seed of the demo world."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Run the end-to-end demo: render a world, evaluate the model, ingest, score the tracks,
    then trace a subject by photo against the truth and write its HTML report."""
    from indexer.settings import load_settings
    from reidtrace.demo import run_demo  # every stage (FAISS, SQLAlchemy, ONNX Runtime)

    with friendly_errors(as_json):
        cfg_s = load_settings()
        target = out or cfg_s.home / "demo"
        with progress_bar(not as_json) as update:
            summary = run_demo(
                target,
                seed=seed,
                workers=cfg_s.workers or None,
                model=None,
                models_dir=cfg_s.models_dir,
                progress=update,
            )
    if as_json:
        typer.echo(json.dumps(summary, sort_keys=True, default=str))
        return
    print_demo_summary(target, summary)


def print_demo_summary(target: Path, summary: dict) -> None:
    """What ``reidtrace demo`` prints: the world, every stage's numbers, then the trace."""
    print_world_summary(target, summary["world"])
    r, t, i = summary["reid"], summary["tracking"], summary["ingest"]
    typer.echo(
        f"ReID model on the world's crops: mAP {r['mAP']:.1f}  rank-1 {r['rank1']:.1f}  "
        f"({r['num_query']} queries, {r['num_gallery']} gallery images)"
    )
    typer.echo(
        f"ingested {i['done']} videos: {i['frames']} frames, {i['detections']} tracked boxes, "
        f"{i['sightings']} sightings, {i['index_vectors']} vectors in the index "
        f"({'agrees' if summary['index_ok'] else 'DISAGREES'} with SQL)"
    )
    for line in summary["detectors"]:
        typer.echo(f"  {line}")
    for err in summary["ingest_errors"]:
        typer.echo(f"  ingest error: {err}")
    if t:
        typer.echo(
            f"tracking vs truth: MOTA {t['mota']:.3f}  IDF1 {t['idf1']:.3f}  "
            f"ID switches {t['id_switches']}"
        )
    print_demo_trace(summary.get("trace") or {}, summary.get("tracing") or {})
    typer.echo(f"done in {summary['seconds']} s; everything is in {target}")


def _clock(iso: str) -> str:
    return iso[11:21]  # HH:MM:SS.s of an ISO-8601 time: the demo world spans minutes


def _span_iou(a: dict, b: dict) -> float:
    from datetime import datetime

    a0, a1, b0, b1 = (datetime.fromisoformat(x).timestamp()
                      for x in (a["enter"], a["leave"], b["enter"], b["leave"]))  # fmt: skip
    union = max(a1, b1) - min(a0, b0)
    return max(min(a1, b1) - max(a0, b0), 0.0) / union if union > 0 else 0.0


def _pair_visits(found: list[dict], true: list[dict]) -> list[tuple[dict | None, dict | None]]:
    """Each found visit beside the true visit of its camera it overlaps most (one to one, for
    reading only: ``evaluate-tracing`` scores with its own rule), then the true visits left."""
    pairs: list[tuple[dict | None, dict | None]] = []
    left = list(true)
    for v in found:
        best = max(
            (t for t in left if t["camera"] == v["camera"]),
            key=lambda t: _span_iou(v, t),
            default=None,
        )
        if best is not None and _span_iou(v, best) > 0:
            left.remove(best)
        else:
            best = None
        pairs.append((v, best))
    return pairs + [(None, t) for t in left]


def print_demo_trace(tr: dict, scores: dict) -> None:
    """The demo's trace beside the truth of its subject's identity, then the world's scores."""
    if not tr:
        return
    if "error" in tr:
        typer.echo(f"trace: {tr['error']}")
        return
    sub, d = tr["subject"], tr["contact_definition"]
    truth, found = tr["truth"], sub["found_identity"]
    typer.echo(
        f"trace by photo {sub['photo']}\n"
        f"  identity {sub['identity']}: of the test identities with a query crop, the one "
        f"with the most true contacts ({len(truth['contacts'])}); the search ranks track "
        f"{sub['track_id']} first (score {sub['score']:.3f}): person {sub['person_id']}, "
        f"scored as identity {'?' if found is None else found}"
        + ("" if found == sub["identity"] else " (NOT the photo's identity)")
    )
    visits = Table(title="trajectory: found | truth", title_justify="left")
    for col in ("camera", "enter", "leave", "conf.", "tracks", "true enter", "true leave"):
        visits.add_column(col)
    for v, t in _pair_visits(tr["trajectory"], truth["trajectory"]):
        true_cols = ["missed", "-"] if t is None else [_clock(t["enter"]), _clock(t["leave"])]
        if v is None and t is not None:
            visits.add_row(t["camera"], "-", "-", "-", "missed", *true_cols)
        elif v is not None:
            visits.add_row(
                v["camera"], _clock(v["enter"]), _clock(v["leave"]), f"{v['confidence']:.2f}",
                ", ".join(map(str, v["track_ids"])), *(["-", "-"] if t is None else true_cols),
            )  # fmt: skip
    out_console.print(visits)
    true_exp = {c["identity"]: c["exposure_s"] for c in truth["contacts"]}
    within = "co-appearing" if d["distance"] is None else f"within {d['distance']:g} {d['units']}"
    contacts = Table(
        title=f"contacts ({within} for >= {d['min_seconds']:g} s), by exposure: found | truth",
        title_justify="left",
    )
    for col in (
        "#",
        "person",
        "identity",
        "exposure s",
        "closest",
        "per camera s",
        "true exp. s",
    ):
        contacts.add_column(col)
    shown: set[int] = set()
    for rank, c in enumerate(tr["contacts"], 1):
        who = c["identity"]
        hit = who in true_exp and who not in shown
        if hit:
            shown.add(who)
        contacts.add_row(
            str(rank),
            str(c["person_id"]) if c["person_id"] is not None else f"tracks {c['track_ids']}",
            "?" if who is None else str(who),
            f"{c['exposure_s']:.1f}",
            "-" if c["closest"] is None else f"{c['closest']:.2f} {c['units']}",
            ", ".join(f"{p['camera']} {p['exposure_s']:.1f}" for p in c["per_camera"]),
            f"{true_exp[who]:.1f}"
            if hit
            else "duplicate"
            if who in true_exp
            else "subject"  # the subject's own identity: a person split in two
            if who is not None and who == sub["identity"]
            else "false",
        )
    for who, e in true_exp.items():
        if who not in shown:
            contacts.add_row("-", "missed", str(who), "-", "-", "-", f"{e:.1f}")
    if tr["contacts"] or true_exp:
        out_console.print(contacts)
    else:
        typer.echo(f"contacts ({within} for >= {d['min_seconds']:g} s): none found, none true")
    for note in tr["notes"]:
        typer.echo(f"note: {note}")
    typer.echo(f"report: {tr['report']}")
    if scores:
        mae = scores["exposure_mae_s"]
        typer.echo(
            f"tracing vs truth, all {scores['identities']} test identities traced by "
            f"{scores['query']} (as `reidtrace evaluate-tracing --query {scores['query']}`): "
            f"trajectory P {scores['trajectory_precision']:.3f} "
            f"R {scores['trajectory_recall']:.3f}  "
            f"contacts P {scores['contact_precision']:.3f} R {scores['contact_recall']:.3f}  "
            f"exposure error {'-' if mae is None else f'{mae:.1f} s'}"
        )


def bench_synth(
    workers: int = typer.Option(0, help="Processes to render with (0 = one per CPU core)."),
    identities: int = typer.Option(750, help="Identities in the crops training set."),
    variety: str = typer.Option("none", help="Variety of the crops set: none | medium | high."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Time the demo world (target < 60 s) and a 750-identity crops set (target < 15 min)."""
    from reid.synth.bench import bench_synth as run

    with friendly_errors(as_json), progress_bar(not as_json) as update:
        report = run(
            workers=workers or None, crops_identities=identities, variety=variety, progress=update
        )
    if as_json:
        typer.echo(json.dumps(report, sort_keys=True))
        return
    for name, r in report.items():
        if isinstance(r, dict):
            verdict = "meets" if r["meets_target"] else "MISSES"
            typer.echo(f"{name}: {r['seconds']} s ({verdict} the {r['target_s']:.0f} s target) {r}")


def register(app: typer.Typer) -> None:
    """Add ``synth``, ``demo`` and ``bench synth`` to the app (called by ``reidtrace.cli``)."""
    app.command()(synth)
    app.command()(demo)
    bench_app.command("synth")(bench_synth)
