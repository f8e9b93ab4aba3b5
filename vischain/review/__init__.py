"""The human quality-control stage (`vischain review`, docs/review.md): VisChainBench's three steps over a run.

    store.py       review.sqlite: the append-only event log and the state derived from it
    catalog.py     the run as the server sees it: queue order, verify's evidence, images by hash
    views.py       what the pages show: a task as the models see it, the queue's rows
    edits.py       revisions of task.json, validated before they are saved, never half applied
    candidates.py  pool images a reviewer may swap in, the slot's own first
    metrics.py     models beside people per task and kind; the figures a dataset card reports
    app.py         the Starlette app (pages, htmx actions, access rules); serving.py runs it
"""
