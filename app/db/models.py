"""Typed SQLAlchemy models. Only embeddings and metadata are stored, never images or crops."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    REAL,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

EMBEDDING_DIM = 512


class Base(DeclarativeBase):
    pass


class Collection(Base):
    """A gallery: identify searches one collection at a time."""

    __tablename__ = "collections"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    retention_days: Mapped[int | None] = mapped_column(Integer)
    # The cosine similarity a match needs in this collection; null: FACEREC_MATCH_THRESHOLD.
    match_threshold: Mapped[float | None] = mapped_column(REAL)


class Subject(Base):
    """A person, named uniquely within a collection."""

    __tablename__ = "subjects"
    __table_args__ = (UniqueConstraint("collection_id", "name", name="uq_subjects_collection_name"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Face(Base):
    """One enrolled face: its embedding and where it was found, never its pixels."""

    __tablename__ = "faces"
    __table_args__ = (
        UniqueConstraint("subject_id", "model_id", "image_sha256", name="uq_faces_subject_model_image"),
        Index(
            "ix_faces_embedding_hnsw",
            "embedding",
            postgresql_using="hnsw",
            postgresql_with={"m": 16, "ef_construction": 64},
            postgresql_ops={"embedding": "vector_cosine_ops"},
        ),
        Index("ix_faces_collection_model", "collection_id", "model_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    subject_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"), index=True)
    # Denormalised from the subject so that 1:N search filters without a join.
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    embedding: Mapped[Any] = mapped_column(Vector(EMBEDDING_DIM))
    box: Mapped[list[float]] = mapped_column(ARRAY(REAL))
    landmarks: Mapped[list[float]] = mapped_column(ARRAY(REAL))
    detection_probability: Mapped[float] = mapped_column(REAL)
    model_id: Mapped[str] = mapped_column(String(100))
    image_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class IdempotencyKey(Base):
    """The answer to a POST /enroll sent with an Idempotency-Key, kept for retries (24 h)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ApiKey(Base):
    """An API key: only its SHA-256 is stored; the secret is shown once, at creation."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(20)))
    collections: Mapped[list[str] | None] = mapped_column(ARRAY(String(100)))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RateLimitBucket(Base):
    """One key's rate-limit state in one scope, shared by every replica (app.db.repository.ratelimits).

    UNLOGGED: written on every request, and not worth a WAL write; a crash only forgets it.
    """

    __tablename__ = "rate_limit_buckets"
    __table_args__ = {"prefixes": ["UNLOGGED"]}  # noqa: RUF012 - SQLAlchemy's declarative form

    key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True)
    scope: Mapped[str] = mapped_column(String(20), primary_key=True)
    # The theoretical arrival time: when the bucket is full again. At or before now: nothing to keep.
    tat: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Whether the last take was admitted: what the UPSERT returns, as its SET sees only the old row.
    admitted: Mapped[bool] = mapped_column(Boolean)


class AuditEntry(Base):
    """Who did what, when, to which collection and subjects, with what outcome. Append-only."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_action_at", "action", "at"),
        Index("ix_audit_log_subject_ids", "subject_ids", postgresql_using="gin"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    key_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    action: Mapped[str] = mapped_column(String(40))
    collection: Mapped[str | None] = mapped_column(String(100))
    subject_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)))
    outcome: Mapped[str] = mapped_column(String(40))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB)
