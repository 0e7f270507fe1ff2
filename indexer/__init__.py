"""indexer: everything that stores and retrieves.

SQL store (SQLAlchemy), FAISS vector index and the query engine (search by image, trajectories,
co-occurrence contacts). Depends on ``reid`` only; never on ``api``, ``ui`` or torch.
Its contents arrive with the ingestion and query issues.
"""
