"""Alembic environment: runs on the connection :meth:`CallStore.migrate` hands over.

``CallStore.migrate()`` opens an async connection and calls Alembic inside
``connection.run_sync``, passing the sync connection in ``config.attributes["connection"]``
(Alembic cookbook, "Programmatic API use (connection sharing) with asyncio"). Offline mode
(``alembic upgrade --sql``) renders SQL for the URL in ``sqlalchemy.url``.
"""

from __future__ import annotations

from alembic import context

from switchboard.errors import StoreError
from switchboard.store.models import Base

config = context.config
connection = config.attributes.get("connection")

if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=Base.metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
elif connection is None:
    raise StoreError("run migrations through CallStore.migrate(), which supplies the connection")
else:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
