FROM python:3.12-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md alembic.ini ./
COPY worker ./worker
COPY classifiers ./classifiers
COPY migrations ./migrations
RUN pip install --no-cache-dir '.[postgres]' && useradd --create-home newsclass
USER newsclass
ENTRYPOINT ["newsclass"]
CMD ["--help"]
