"""newsclass: ingest news articles from Redis, classify them by topic, store them with SQLModel."""

__version__ = "0.1.0"
