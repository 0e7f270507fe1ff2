"""The SQL store: tables (``models``), shapes (``schemas``), functions (``repo``), engines
(``db``) and migrations (``migrate``), laid out after the FastAPI full-stack template.

SQL is the source of truth for everything ingestion writes; the FAISS index is a cache rebuilt
from the ``sighting`` table (``indexer.index``).
"""
