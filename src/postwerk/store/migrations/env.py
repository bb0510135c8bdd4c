"""Alembic environment: always run with the engine Postwerk hands over (see `store.db.upgrade`)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from postwerk.store.tables import metadata

engine = context.config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError("run migrations through `postwerk db upgrade`")

with engine.connect() as connection:
    context.configure(
        connection=connection, target_metadata=metadata, render_as_batch=engine.dialect.name == "sqlite"
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
