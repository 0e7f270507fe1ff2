"""The query side of the store: search by photo, cross-camera persons, trajectories, contacts.

Reads what ingestion wrote (SQL rows through ``indexer.store``, vectors through a
``VectorIndex``); never writes detections or sightings. One module per question:
``search`` (photo -> tracks), ``persons`` (tracks -> cross-camera persons), ``trajectory``
(person -> visits), ``contacts`` (person -> who was close, for how long), ``report`` (a trace as
a self-contained HTML page).
"""
