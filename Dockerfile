# The Kaoping image: one image for the API, the projection worker and the one-shot migrate job.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY service ./service
COPY projections ./projections
COPY api ./api
COPY migrations ./migrations
RUN pip install --no-cache-dir . && useradd --system --uid 10001 kaoping \
    && mkdir -p /keys && chown kaoping /keys
USER kaoping
EXPOSE 8000
CMD ["kaoping", "serve", "--host", "0.0.0.0"]
