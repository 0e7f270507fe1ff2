"""The one settings object (after the FastAPI template's ``core/config.py``).

Read only by the CLI and the API app; library code receives plain arguments. Sources, highest
first: keyword arguments, ``REIDTRACE_*`` environment variables (nested with ``__``, e.g.
``REIDTRACE_INDEX__FACTORY``), the TOML file named by ``REIDTRACE_CONFIG`` (or
``$REIDTRACE_HOME/config.toml`` when it exists), then the embedded defaults below. Everything the
product writes by default goes under ``home``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from reid.errors import ReidTraceError

DEFAULT_HOME = Path("~/.reidtrace")
INDEX_SCHEMES = ("qdrant", "qdrant+http", "qdrant+https")  # indexer.index.qdrant_index.SCHEMES


class IndexSettings(BaseModel):
    """FAISS index structure and search knobs (a manifest beside each index records both)."""

    factory: str = "IDMap2,Flat"  # "IVF4096,PQ32" for large galleries (IVF keeps its own ids)
    search_params: str = ""  # "nprobe=16" for IVF indexes
    metric: Literal["ip", "l2"] = "ip"  # ip on unit-length embeddings = cosine


class PersonSettings(BaseModel):
    """Cross-camera association thresholds (``indexer.query.persons``; docs/query.md).

    Similarities are cosines of track embeddings. Changing any of these makes the next query
    rebuild the persons (the values used are stored with them)."""

    link_similarity: float = 0.55  # a pair of tracks is a candidate link at or above this score
    mean_similarity: float = 0.45  # two groups merge only if their mean cross score reaches this
    confident_similarity: float = 0.75  # mutual best matches at or above teach transit times
    ground_match_m: float = 0.6  # overlapping cameras: same place at the same time, within this
    ground_conflict_m: float = 2.0  # ... and farther apart than this = two different people
    ground_bonus: float = 0.6  # score added at distance 0 over ground_full_s, less linearly
    ground_full_s: float = 2.0  # seconds together at one place that earn the full bonus
    max_speed_mps: float = 3.0  # faster between two tracks = impossible (0 = no check)
    ground_slack_m: float = 3.0  # foot-point error allowed on top of max_speed_mps x the gap
    transit_slack_s: float = 2.0  # quicker than half the quickest learned transit, less this,
    # is impossible
    transit_bonus: float = 0.15  # score added to a transit inside the learned range (0.1 and
    # 0.15 tied with the FP32 source model; with the INT8 default 0.15 gains seed 1, docs/query.md)
    min_transit_samples: int = 3  # learned transit times are used from this many matches on
    overlap_tolerance_s: float = 0.3  # tracks of one camera may overlap this much (hand-overs)
    block_tracks: int = 2000  # association holds pairwise scores of at most this many tracks
    visit_gap_s: float = 5.0  # a person's tracks of one camera this close are one visit
    split_similarity: float = -1.0  # a track whose sightings fall into two runs with no pair
    # across them this alike switched people and is cut in two (indexer.query.switches); -1 =
    # never (default: cuts trade trajectories for contacts, docs/query.md); 0.2 when measured

    @model_validator(mode="after")
    def _check(self) -> PersonSettings:
        if not 0 <= self.ground_match_m <= self.ground_conflict_m:
            raise ValueError("need 0 <= ground_match_m <= ground_conflict_m")
        if self.ground_full_s <= 0:
            raise ValueError("ground_full_s must be > 0")
        if (
            self.max_speed_mps < 0
            or self.ground_slack_m < 0
            or self.transit_slack_s < 0
            or self.overlap_tolerance_s < 0
        ):
            raise ValueError(
                "max_speed_mps, ground_slack_m, transit_slack_s, overlap_tolerance_s must be >= 0"
            )
        if self.block_tracks < 2:
            raise ValueError("block_tracks must be >= 2")
        if self.min_transit_samples < 1:
            raise ValueError("min_transit_samples must be >= 1")
        if not -1 <= self.split_similarity <= 1:
            raise ValueError("split_similarity is a cosine: -1 (never cut a track) .. 1")
        return self


def _config_file() -> Path | None:
    explicit = os.environ.get("REIDTRACE_CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ReidTraceError(
                f"REIDTRACE_CONFIG points to {path}, which is not a file",
                hint="unset REIDTRACE_CONFIG or point it at a TOML file",
            )
        return path
    home = Path(os.environ.get("REIDTRACE_HOME", str(DEFAULT_HOME))).expanduser()
    candidate = home / "config.toml"
    return candidate if candidate.is_file() else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="REIDTRACE_", env_nested_delimiter="__", extra="forbid"
    )

    home: Path = DEFAULT_HOME
    database_url: str = ""  # default: sqlite:///<home>/reidtrace.db
    index_path: Path | None = None  # default: <home>/index.faiss
    # a vector database instead of the FAISS file: "qdrant:///folder" (local),
    # "qdrant+http://host:6333/collection" (server); needs reidtrace[vectordb]
    index_url: str = ""
    reid_model: str = "default"  # the bundled ONNX embedder
    index: IndexSettings = IndexSettings()
    persons: PersonSettings = PersonSettings()
    workers: int = 0  # 0 = one per CPU core

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        self.home = self.home.expanduser()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.home / 'reidtrace.db'}"
        if self.index_path is None:
            self.index_path = self.home / "index.faiss"
        if self.index_url and self.index_url.split("://", 1)[0].lower() not in INDEX_SCHEMES:
            raise ValueError(
                f"index_url {self.index_url!r} is not a Qdrant URL: use qdrant:///folder or "
                "qdrant+http://host:6333/collection, or leave it empty for the FAISS file"
            )
        if self.workers < 0:
            raise ValueError("workers must be >= 0 (0 = one per CPU core)")
        return self

    @property
    def index_location(self) -> Path | str:
        """Where the vector index lives: ``index_url`` when set, else the FAISS file."""
        return self.index_url or self.index_path or self.home / "index.faiss"

    @property
    def models_dir(self) -> Path:
        """Installed detector models (``reidtrace detectors install``; detector ``auto``)."""
        return self.home / "models"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def load_settings(**overrides: object) -> Settings:
    """``Settings()`` with validation problems turned into one readable ``ReidTraceError``."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ReidTraceError(
            f"bad setting {where}: {first['msg']}",
            hint=f"check REIDTRACE_{where.upper().replace('.', '__')} or your config file",
        ) from err
    except ValueError as err:  # e.g. a TOML file that does not parse
        raise ReidTraceError(f"cannot read settings: {err}", hint="check your config file") from err
