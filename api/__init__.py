"""api: the FastAPI service (auth, audit, jobs) over ``indexer``.

Never imports torch or ``compression``: the serving image stays small. Its contents arrive with
the API issue.
"""
