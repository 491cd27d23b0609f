"""Report jobs: a client asks for a report, a worker writes its file.

    lookups.py      the lookup values every enum field is checked against (schemas/report_lookups.json)
    models.py       the job and its request on the wire (report seed 003, ReportJob)
    jobs.py         the lifecycle: statuses, legal transitions, checks of a new job
    visibility.py   who may read and who may manage a job, as SQL and checks
    ledger.py       jobs in Redis (status, progress) and ClickHouse (every state: the history)
    submit.py       a new job stored and queued
    queue.py        Redis Streams: a stream per priority, a consumer group, delayed jobs
    definitions.py  the report types: one query over the read models each
    rows.py         a report's rows staged in ClickHouse and read back in chunks
    writers/        CSV, JSON, XLSX, Parquet, PDF, chunk by chunk
    storage.py      files under the data dir
    generate.py     one job's file: stage, write, store
    worker.py       the loop: claim, reclaim, run, retry, expire
    published.py    ReportGenerated on analytics.events
    handlers.py     the HTTP API;  app.py: its routes and resources (`add_reports`)

Templates, schedules and metadata (report seed API-ISS-027, 028, 031-033):

    plan_models.py      templates and schedules on the wire;  plan_store.py  versioned documents in ClickHouse
    templates.py        saved definitions and the system ones (schemas/report_templates.json)
    schedules.py        a schedule's checks and storage;  recurrence.py  its instants (cron, timezone, DST)
    schedule_runs.py    each run of a schedule;  scheduler.py  the single active scheduler (Redis lock)
    delivery.py         a scheduled report's recipients: notification record, ReportGenerated
    metadata.py         report types, formats, lookups, event types, filter options in scope
    *_handlers.py       their HTTP APIs;  plan_app.py: routes and resources (`add_plans`)
"""
