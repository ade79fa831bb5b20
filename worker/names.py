"""Task and queue names: the one home, imported by producers and workers alike (arq's constants.py).

A producer in another language reads the same table in the README ("Producers in any language").
"""

from __future__ import annotations

# Ingest jobs use Celery's default queue, so any client's plain send_task reaches the workers.
INGEST_QUEUE = "celery"
FETCH_QUEUE = "fetch"

INGEST_TASK = "newsclass.ingest_article"
RECLASSIFY_TASK = "newsclass.reclassify_articles"
SCHEDULE_TASK = "newsclass.schedule_polls"
POLL_TASK = "newsclass.poll_source"
FETCH_TASK = "newsclass.fetch_page"

# The tasks the fetch workers run (the rest run on the ingest queue).
FETCH_TASKS = (SCHEDULE_TASK, POLL_TASK, FETCH_TASK)
