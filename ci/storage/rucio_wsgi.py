"""WSGI entry point of the loopback Rucio server (used by ci/storage/start-rucio.sh).

It is Rucio's own application, rucio.web.rest.flaskapi.v1.main:application, with the
requests serialised (one at a time) when the database is SQLite.

Why: Rucio's sessions begin deferred transactions that read first and write later.  When
two clients write at once (several developers, benchmarks or test processes share the
server), SQLite fails the second writer at once with "database is locked" (SQLITE_BUSY on
the read->write upgrade, which no busy timeout retries) and the client sees
"DatabaseException: An unknown Database Exception has occurred".  Making every SQLite
transaction BEGIN IMMEDIATE is no cure: Rucio opens nested sessions inside one request,
which then wait on themselves until the busy timeout.  One request at a time avoids both;
the requests are short (milliseconds), so a loopback test server loses little.  For real
concurrency, point [database] default at PostgreSQL instead (the lock is then off).

STORAGE_RUCIO_SERIALIZE=0 turns the lock off; STORAGE_RUCIO_LOCK_TIMEOUT (seconds, default
120) bounds the wait for it (the request then gets 503).
"""

import os
import threading

from rucio.db.sqla.session import get_engine
from rucio.web.rest.flaskapi.v1.main import application as rucio_application


class _ReleaseOnClose:
    """Response iterable that releases the lock when the server closes the response
    (PEP 3333: close() is always called, also when the client went away)."""

    def __init__(self, result, lock):
        self._result = result
        self._lock = lock
        self._released = False

    def __iter__(self):
        return iter(self._result)

    def close(self):
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            if not self._released:
                self._released = True
                self._lock.release()


class SerializedApp:
    def __init__(self, app, timeout):
        self.app = app
        self.timeout = timeout
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if not self.lock.acquire(timeout=self.timeout):
            start_response("503 Service Unavailable", [("Content-Type", "text/plain"), ("Retry-After", "5")])
            return [b"loopback rucio server busy\n"]
        try:
            result = self.app(environ, start_response)
        except BaseException:
            self.lock.release()
            raise
        return _ReleaseOnClose(result, self.lock)


def _make_application():
    serialize = os.environ.get("STORAGE_RUCIO_SERIALIZE", "1") != "0"
    if serialize and get_engine().dialect.name == "sqlite":
        timeout = float(os.environ.get("STORAGE_RUCIO_LOCK_TIMEOUT", "120"))
        return SerializedApp(rucio_application, timeout)
    return rucio_application


application = _make_application()
