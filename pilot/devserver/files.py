"""Plain files served by the dev server: ``GET /files/<path>`` from ``<state dir>/files``.

Used for what a grid job downloads over HTTP(S) besides its inputs, e.g. a user analysis
transformation (``transformation: <server>/files/trf/user/runGen-00-00-02``). Only regular files
inside the directory are served (no directory listings, no links out of it).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .routing import Reply, Request, Route, error

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .app import App

#: largest file served (the dev server reads it whole)
MAX_FILE_SIZE = 64 * 1024 * 1024


def files_dir(state_dir: str) -> str:
    """Where the served files live for a server whose state is in ``state_dir``."""
    return os.path.join(state_dir, "files")


def _serve(app: "App", request: Request) -> Reply:
    root = os.path.realpath(str(app.settings.get("files_dir") or ""))
    if not root or not os.path.isdir(root):
        return error(404, "no files directory")
    path = os.path.realpath(os.path.join(root, request.groups["path"]))
    if not path.startswith(root + os.sep) or not os.path.isfile(path):
        return error(404, f"no such file: {request.groups['path']}")
    if os.path.getsize(path) > MAX_FILE_SIZE:
        return error(413, "file too large for the dev server")
    with open(path, "rb") as handle:
        return Reply(200, handle.read(), "application/octet-stream")


ROUTES = [Route(("GET",), r"/files/(?P<path>[A-Za-z0-9_.\-/+]+)", _serve, name="files", record=True)]
