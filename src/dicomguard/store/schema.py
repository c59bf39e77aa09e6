"""The database schema (SQLAlchemy 2.0 typed ORM), portable between SQLite and PostgreSQL.

    meta      key/value pairs; `schema_version` says which version of this schema a database has
    scans     one row a scan: id, times, targets, options, stats, interrupted
    services  what was identified on each endpoint, with its PHI-free facts (JSON)
    findings  one row a check result, with its evidence (JSON)

Times are stored as the ISO 8601 text the models carry (UTC, so text order is time order) to
round-trip exactly. Free-form mappings use SQLAlchemy's generic JSON type (TEXT with JSON in
SQLite, `json` in PostgreSQL). Rows of services and findings keep the order they were added in
through their autoincrement ids. Deleting a scan deletes its services and findings.

Bump SCHEMA_VERSION for any change to these tables; `Store` refuses a database whose version is
newer than the one it knows.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

SCHEMA_VERSION = 1


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[str]: JSON,
    }


class Meta(Base):
    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class ScanRow(Base):
    __tablename__ = "scans"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[str] = mapped_column(String(40), index=True)
    finished_at: Mapped[str | None] = mapped_column(String(40))
    interrupted: Mapped[bool] = mapped_column(Boolean, default=False)
    targets: Mapped[list[str]]
    options: Mapped[dict[str, Any]]
    stats: Mapped[dict[str, Any]]
    tool_version: Mapped[str] = mapped_column(String(32))

    services: Mapped[list[ServiceRow]] = relationship(
        back_populates="scan", cascade="all, delete-orphan", passive_deletes=True,
        order_by="ServiceRow.id")
    findings: Mapped[list[FindingRow]] = relationship(
        back_populates="scan", cascade="all, delete-orphan", passive_deletes=True,
        order_by="FindingRow.id")


class ServiceRow(Base):
    __tablename__ = "services"
    __table_args__ = (Index("ix_services_endpoint", "address", "port"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scan_id: Mapped[str] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(64))
    port: Mapped[int] = mapped_column(Integer)
    protocol: Mapped[str] = mapped_column(String(32))
    hostname: Mapped[str | None] = mapped_column(String(255))
    product: Mapped[str | None] = mapped_column(Text)     # text from the peer: any length
    version: Mapped[str | None] = mapped_column(Text)
    facts: Mapped[dict[str, Any]]

    scan: Mapped[ScanRow] = relationship(back_populates="services")


class FindingRow(Base):
    __tablename__ = "findings"
    __table_args__ = (Index("ix_findings_endpoint", "address", "port"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scan_id: Mapped[str] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"), index=True)
    check_id: Mapped[str] = mapped_column(String(32), index=True)
    title: Mapped[str] = mapped_column(Text)
    address: Mapped[str] = mapped_column(String(64))
    port: Mapped[int] = mapped_column(Integer)
    protocol: Mapped[str] = mapped_column(String(32))
    hostname: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), index=True)
    severity: Mapped[int] = mapped_column(Integer)
    intrusive: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]]

    scan: Mapped[ScanRow] = relationship(back_populates="findings")
