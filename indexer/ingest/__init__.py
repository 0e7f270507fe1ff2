"""Ingestion: footage in, tracks, detections, embedded sightings and vectors out.

The left half of the data flow (ARCHITECTURE.md): decode -> detect -> track -> select crops ->
embed (all from ``reid``) -> store (SQL) -> index (FAISS). Resumable and idempotent per video.
"""

from indexer.ingest.config import IngestConfig
from indexer.ingest.pipeline import VideoReport, ingest_video
from indexer.ingest.runner import IngestReport, ingest
from indexer.ingest.sources import Source, discover_sources

__all__ = [
    "IngestConfig",
    "IngestReport",
    "Source",
    "VideoReport",
    "discover_sources",
    "ingest",
    "ingest_video",
]
