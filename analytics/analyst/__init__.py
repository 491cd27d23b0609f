"""Analyst SQL: one read-only SELECT over the documented tables, confined to the caller's organization.

    catalog.py   which tables and functions an analyst may use; the data dictionary (column COMMENTs)
    guard.py     parse with ClickHouse's own parser (parseQueryToJSON), check the tree, print it back
                 wrapped with the engine settings that enforce the organization and the limits
    run.py       run the printed query in the asked format; engine errors -> 4xx naming the limit
    audit.py     one `analyst_queries` row per query, refused ones included
    slots.py     concurrent queries per organization
    service.py   one query through all of the above, whichever door it came in by
    handlers.py  POST /api/v1/query, GET /api/v1/query/schema
    clickhouse_http.py  the ClickHouse HTTP interface at /clickhouse (clickhouse-connect, curl)
    server_users.py     `lms-events analysts`: ClickHouse users confined by the server itself
    app.py       add_query_api: the routes and resources, next to analytics.app.add_api
"""
