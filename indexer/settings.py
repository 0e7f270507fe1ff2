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
