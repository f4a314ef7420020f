"""Building the pilot's one HTTP client: the bearer token, the options, the [Pilot] http_* settings.

:func:`client_from_args` is what ``pilot.main`` calls at start-up (before it changes directory):
``--cacert``/``--capath`` become absolute paths (a missing one is an :class:`HttpSetupError`), the
proxy variables are read, and the token (as Pilot 2/3 name it) is bound to the PanDA server's host.
"""

from __future__ import annotations

import logging
import os
import threading
import urllib.parse
from typing import Any, Iterable, Mapping, Optional

from pilot.util import httpconn as hc

logger = logging.getLogger(__name__)

#: defaults of the [Pilot] http_* settings (default.cfg)
DEFAULT_MAX_REPLY_SIZE = 128 * 1024 * 1024
DEFAULT_MAX_DECODED_SIZE = 256 * 1024 * 1024
DEFAULT_STOP_MAXTIME = 10.0


class HttpSetupError(ValueError):
    """The client cannot be built as asked (a missing --cacert file, an unusable proxy variable)."""


class BearerToken:
    """``Authorization: Bearer`` (and PanDA's ``Origin``) for the hosts it belongs to.

    The token is a value, or a file read again whenever it changes (tokens are renewed on disk).
    """

    def __init__(self, value: str = "", path: str = "", origin: str = "",
                 hosts: Optional[Iterable[str]] = None) -> None:
        self.value = value.strip()
        self.path = path
        self.origin = origin.strip()
        self.hosts = {h.lower() for h in hosts} if hosts is not None else None
        self._stamp: Optional[tuple] = None
        self._lock = threading.Lock()

    def headers(self, host: str) -> dict:
        """The headers for a request to ``host`` (none for other hosts)."""
        if self.hosts is not None and host.lower() not in self.hosts:
            return {}
        value = self._current()
        if not value:
            return {}
        out = {"Authorization": f"Bearer {value}"}
        if self.origin:
            out["Origin"] = self.origin
        return out

    def _current(self) -> str:
        if not self.path:
            return self.value
        with self._lock:
            try:
                info = os.stat(self.path)
                stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
                if stamp != self._stamp:
                    with open(self.path, "rb") as handle:
                        text = handle.read(65536).decode("ascii", errors="replace").strip()
                    if any(c in text for c in "\r\n\0 ") or not text:
                        logger.warning("token file %s does not hold one token: not used", self.path)
                        text = ""
                    self.value, self._stamp = text, stamp
            except OSError as exc:
                logger.warning("cannot read the token file %s: %s", self.path, exc)
                self.value, self._stamp = "", None
            return self.value

    @classmethod
    def from_environ(cls, environ: Optional[Mapping[str, str]] = None, launch_dir: str = "",
                     hosts: Optional[Iterable[str]] = None) -> Optional["BearerToken"]:
        """The pilot's token as Pilot 2/3 name it, or None.

        ``BEARER_TOKEN`` (the value), else the file of ``BEARER_TOKEN_FILE``,
        ``OIDC_REFRESHED_AUTH_TOKEN``, ``$PANDA_AUTH_DIR/$PANDA_AUTH_TOKEN`` (``OIDC_AUTH_*``), or
        ``OIDC_AUTH_TOKEN``/``PANDA_AUTH_TOKEN`` as a file name in the launch directory or ``$HOME``.
        The origin comes from ``OIDC_AUTH_ORIGIN``/``PANDA_AUTH_ORIGIN``.
        """
        from pilot.util.proxy import token_path

        env = os.environ if environ is None else environ
        origin = env.get("OIDC_AUTH_ORIGIN") or env.get("PANDA_AUTH_ORIGIN") or ""
        if env.get("BEARER_TOKEN"):
            return cls(value=env["BEARER_TOKEN"], origin=origin, hosts=hosts)
        path = env.get("OIDC_REFRESHED_AUTH_TOKEN", "")
        if not (path and os.path.isfile(path)):
            path = token_path(env)
        if not path:
            name = env.get("OIDC_AUTH_TOKEN") or env.get("PANDA_AUTH_TOKEN") or ""
            candidates = [os.path.join(d, name) for d in (launch_dir or os.getcwd(), env.get("HOME", "")) if d]
            path = next((p for p in candidates if name and os.path.isfile(p)), "")
        if not path:
            return None
        return cls(path=os.path.abspath(path), origin=origin, hosts=hosts)


def _setting(cfg: Any, name: str, default: float) -> float:
    try:
        value = cfg.Pilot.get(name, default)
    except Exception:  # noqa: BLE001 - a config object without the key or the section
        value = default
    try:
        return float(value) if value not in (None, "") else float(default)
    except (TypeError, ValueError):
        raise HttpSetupError(f"[Pilot] {name} must be a number, not {value!r}") from None


def client_from_config(cacert: Optional[str] = None, capath: Optional[str] = None,
                       bearer: Optional[BearerToken] = None, environ: Optional[Mapping[str, str]] = None,
                       cfg: Any = None) -> Any:
    """A client with the [Pilot] http_* settings and the proxy variables of ``environ``."""
    from pilot.util.https import HttpClient

    if cfg is None:
        from pilot.util.config import config as cfg
    proxies = hc.ProxySettings.from_environ(environ, strict=False)
    for name, proxy in (("http_proxy", proxies.http), ("https_proxy", proxies.https)):
        if proxy is not None and proxy.error:  # a site setting the pilot may not need: said, not fatal
            logger.warning("%s: %s; requests that would use it will fail", name, proxy.error)
    return HttpClient(cacert=cacert, capath=capath,
                      connect_timeout=_setting(cfg, "http_connect_timeout", 100),
                      timeout=_setting(cfg, "http_maxtime", 120),
                      retries=3, backoff=_setting(cfg, "http_backoff", 1) or 1,
                      max_reply_size=int(_setting(cfg, "http_max_reply_size", DEFAULT_MAX_REPLY_SIZE)),
                      max_decoded_size=int(_setting(cfg, "http_max_decoded_size", DEFAULT_MAX_DECODED_SIZE)),
                      stop_maxtime=_setting(cfg, "http_stop_maxtime", DEFAULT_STOP_MAXTIME),
                      proxies=proxies, bearer=bearer)


def client_from_args(args: Any, environ: Optional[Mapping[str, str]] = None, cfg: Any = None) -> Any:
    """The pilot's client from ``--cacert``/``--capath`` (made absolute now, before any chdir), the
    proxy variables and the token; raises HttpSetupError for a missing file or a bad setting."""
    env = os.environ if environ is None else environ
    cacert = getattr(args, "cacert", None) or env.get("PILOT_CACERT") or None
    capath = getattr(args, "capath", None) or None
    if cacert:
        cacert = os.path.abspath(cacert)
        if not os.path.isfile(cacert):
            raise HttpSetupError(f"--cacert {cacert}: no such file")
    if capath:
        capath = os.path.abspath(capath)
        if not os.path.isdir(capath):
            raise HttpSetupError(f"--capath {capath}: no such directory")
    hosts = set()
    try:
        from pilot.util.parameters import get_server_url

        hosts.add(urllib.parse.urlsplit(get_server_url(args, cfg)).hostname or "")
    except Exception:  # noqa: BLE001 - an odd URL: the token goes nowhere rather than everywhere
        pass
    bearer = BearerToken.from_environ(env, launch_dir=os.getcwd(), hosts=hosts - {""})
    return client_from_config(cacert, capath, bearer, environ=env, cfg=cfg)
