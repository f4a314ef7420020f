"""WSGI entry point of the loopback Rucio server (used by ci/storage/start-rucio.sh).

It is Rucio's own application, rucio.web.rest.flaskapi.v1.main:application, with one
change for SQLite: every transaction starts with BEGIN IMMEDIATE and waits on a busy
timeout.  Rucio's sessions begin deferred transactions that read first and write later;
with two clients writing at once (several developers or test processes sharing the
server), SQLite then fails the second writer at once with "database is locked"
(SQLITE_BUSY on the read->write upgrade, which no busy timeout retries), and the client
gets "DatabaseException: An unknown Database Exception has occurred".  Taking the write
lock at BEGIN serialises the transactions instead; they are short, so this costs little.
"""

import os

from sqlalchemy import event

from rucio.db.sqla.session import get_engine

_ENGINE = get_engine()

if _ENGINE.dialect.name == "sqlite":
    _BUSY_MS = int(os.environ.get("STORAGE_RUCIO_SQLITE_BUSY_MS", "60000"))

    @event.listens_for(_ENGINE, "connect")
    def _sqlite_connect(dbapi_connection, connection_record):
        # let SQLAlchemy (the "begin" hook below) open the transactions, not pysqlite
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA busy_timeout=%d" % _BUSY_MS)

    @event.listens_for(_ENGINE, "begin")
    def _sqlite_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

from rucio.web.rest.flaskapi.v1.main import application  # noqa: E402,F401  (after the hooks)
