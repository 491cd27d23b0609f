# The production image: one image, the role is the command (gateway | worker | migrate).
FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY lms_events ./lms_events
COPY ingest ./ingest
COPY streams ./streams
COPY schemas ./schemas
COPY sql ./sql
RUN pip install --no-cache-dir .
USER nobody
ENV LMS_EVENTS_ENV=production LMS_EVENTS_DATA_DIR=/tmp/lms-events
ENTRYPOINT ["lms-events"]
