"""Input replica lookup through Rucio ``list_replicas`` (one call for all files), LAN before WAN.

A replica is LAN when its storage is one of the queue's read storages (``astorages['read_lan']``,
else ``astorages['pr']``) or one of the file's ``inputddms``; everything else is WAN. Only DISK
replicas are used. Within the LAN group, schemes usable for direct access come first when the queue
allows direct access. WAN replicas follow when the file or queue allows WAN access, or when there is
no LAN replica at all. Size and checksum missing from the job are back-filled from Rucio.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING, Any, Optional

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException

if TYPE_CHECKING:
    from pilot.info.queuedata import QueueData
    from pilot.info.filespec import FileSpec

logger = logging.getLogger(__name__)

SCHEMES = ["srm", "root", "davs", "gsiftp", "https", "storm", "file"]
SIGNED_URL_LIFETIME = 24 * 3600
#: from this many files on, a lookup first asks Rucio without a scheme list (see :func:`lookup`)
TWO_STEP_MIN_FILES = 10


def rucio_client() -> Any:
    """A Rucio client (:func:`pilot.copytool.rucio.new_client`), or None when there can be none here.

    Replica lookup without Rucio is not an error: deterministic inputs on the queue's storages need no
    lookup, so the reason is logged and the caller goes on without one.
    """
    from pilot.copytool.rucio import new_client

    try:
        return new_client("replica lookup")
    except PilotException as exc:
        logger.warning("cannot use Rucio: %s", exc.diag)
        return None


def client_location() -> dict:
    """Where this worker is, for Rucio's geoip sort."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("10.255.255.255", 1))  # no packet is sent for UDP connect
            ip = sock.getsockname()[0]
    except OSError:
        ip = "127.0.0.1"
    return {"ip": ip, "fqdn": socket.getfqdn(), "site": os.environ.get("PILOT_RUCIO_SITENAME", "unknown")}


def query_schemes(allowed_schemas: Optional[list], use_vp: bool = False) -> list:
    """The schemes to ask Rucio for: the tool's allowed ones, all of ``SCHEMES`` when any goes.

    Allowed schemes outside ``SCHEMES`` (``s3`` of the objectstore tool) are asked for too.

    Asking only for what the tool can use keeps the answer small: the server builds one PFN per file and
    matching protocol (a test Rucio on SQLite takes ~3x longer for 200 files with all seven schemes than
    with ``root`` alone).
    """
    if use_vp:
        return ["root"]
    wanted = [s for s in SCHEMES if not allowed_schemas or s in allowed_schemas]
    wanted += [s for s in allowed_schemas or [] if s not in SCHEMES and s not in wanted]
    return wanted or list(SCHEMES)


def list_replicas(client: Any, files: list, use_vp: bool = False, allowed_schemas: Optional[list] = None,
                  any_scheme: bool = False) -> list:
    """Raw ``list_replicas`` answers for ``files`` (1322 RUCIOLISTREPLICASFAILED on error).

    ``any_scheme``: no scheme list, so Rucio gives one PFN per storage (its first read protocol).
    """
    query: dict = {"dids": [{"scope": f.scope, "name": f.lfn} for f in files],
                   "signature_lifetime": SIGNED_URL_LIFETIME}
    if not any_scheme:
        query["schemes"] = query_schemes(allowed_schemas, use_vp)
    try:
        try:
            return list(client.list_replicas(sort="geoip", client_location=client_location(), **query))
        except Exception as exc:  # geoip sorting is optional: ask again unsorted
            logger.info("geoip-sorted list_replicas failed (%s), retrying unsorted", exc)
            return list(client.list_replicas(**query))
    except Exception as exc:
        raise PilotException(f"Rucio list_replicas failed: {exc}", code=ErrorCodes.RUCIOLISTREPLICASFAILED,
                             state="LIST_REPLICAS_FAILED") from None


def resolve_replicas(files: list, staging_client: Any, allowed_schemas: Optional[list], use_vp: bool = False,
                     client: Any = None) -> bool:
    """Fill ``fspec.replicas`` of files without replicas; False when Rucio is not available."""
    todo = [f for f in files if not f.replicas]
    if not todo:
        return True
    client = client or rucio_client()
    if client is None:
        logger.warning("Rucio is not available: replicas come from the storage protocols")
        return False
    if getattr(staging_client, "rucio", "") is None:
        staging_client.rucio = client  # reused by the client's next transfers
    queuedata = getattr(staging_client, "queuedata", None)
    direct_schemas = staging_client.direct_localinput_allowed_schemas
    answers = lookup(client, todo, use_vp, allowed_schemas, queuedata, direct_schemas)
    for fspec in todo:
        answer = answers.get((fspec.scope, fspec.lfn))
        if not answer:
            continue
        fspec.replicas = order_replicas(answer, fspec, queuedata, allowed_schemas, direct_schemas)
        backfill(fspec, answer)
    return True


def _by_did(answers: list) -> dict:
    return {(r.get("scope"), r.get("name")): r for r in answers}


def lookup(client: Any, files: list, use_vp: bool, allowed_schemas: Optional[list], queuedata: Optional[QueueData],
           direct_schemas: list) -> dict:
    """``{(scope, name): answer}`` for ``files``, each answer holding the PFN :func:`order_replicas` picks.

    Rucio builds one PFN per file, storage and protocol asked for, and that is what a lookup costs (the test
    Rucio took ~2.1 s for 100 files with the seven schemes of the ``rucio`` tool, ~0.8 s without a scheme
    list). So from ``TWO_STEP_MIN_FILES`` files on, Rucio is first asked without schemes (one PFN per storage,
    that of its first read protocol); a file keeps that answer when, for each of its storages, the PFN is of
    the scheme the pilot would choose among the storage's read protocols (:func:`storage_schemes`); the
    others, and all files when a storage's protocols are unknown, are asked again with the schemes.
    """
    if use_vp or not allowed_schemas or len(files) < TWO_STEP_MIN_FILES:
        return _by_did(list_replicas(client, files, use_vp, allowed_schemas))
    answers = _by_did(list_replicas(client, files, use_vp, allowed_schemas, any_scheme=True))
    schemes_of: dict = {}
    again = []
    for fspec in files:
        answer = answers.get((fspec.scope, fspec.lfn))
        rses = (answer or {}).get("rses") or {}
        if not rses or not all(_has_choice(client, schemes_of, rse, pfns, fspec, queuedata, allowed_schemas,
                                           direct_schemas) for rse, pfns in rses.items()):
            again.append(fspec)
    if again:
        logger.info("replica lookup: %d of %d file(s) asked again with schemes %s", len(again), len(files),
                    query_schemes(allowed_schemas))
        for fspec in again:
            answers.pop((fspec.scope, fspec.lfn), None)
        answers.update(_by_did(list_replicas(client, again, use_vp, allowed_schemas)))
    return answers


def _has_choice(client: Any, schemes_of: dict, rse: str, pfns: list, fspec: FileSpec, queuedata: Optional[QueueData],
                allowed_schemas: list, direct_schemas: list) -> bool:
    """Whether ``pfns`` (of a lookup without schemes) hold the scheme the pilot picks on ``rse``."""
    if rse not in schemes_of:
        schemes_of[rse] = storage_schemes(client, rse)
    schemes = schemes_of[rse]
    if not schemes:
        return False
    direct = bool(queuedata is not None and queuedata.direct_access_lan)
    prefer = direct_schemas if direct and rse in lan_storages(fspec, queuedata) else None
    best = _best_pfn([f"{s}://" for s in schemes], allowed_schemas, prefer)
    return best is not None and any(str(p).startswith(best) for p in pfns or [])


def storage_schemes(client: Any, rse: str) -> list:
    """The schemes of ``rse``'s Rucio protocols that read (LAN or WAN); [] when they cannot be had."""
    try:
        info = client.get_protocols(rse)
    except Exception as exc:  # an old client, Rucio unreachable: the caller asks with schemes
        logger.debug("protocols of %s unknown: %s", rse, exc)
        return []
    protocols = info.get("protocols", []) if isinstance(info, dict) else info  # the RSE record, or a list
    found: list = []
    for protocol in protocols or []:
        if not isinstance(protocol, dict) or not isinstance(protocol.get("scheme"), str):
            continue
        domains = protocol.get("domains") or {}
        if any(isinstance(d, dict) and (d.get("read") or 0) > 0 for d in domains.values()) \
                and protocol["scheme"] not in found:
            found.append(protocol["scheme"])
    return found


def lookup_mode() -> str:
    """``[Rucio] replica_lookup``: ``auto`` (default) or ``always`` (every input through list_replicas)."""
    try:
        from pilot.util.config import config

        mode = str(config.Rucio.get("replica_lookup", "auto") or "auto").strip().lower()
    except Exception:  # no configuration (a bare Data API user): the default
        mode = "auto"
    return mode if mode in ("auto", "always") else "auto"


def needs_no_lookup(fspec: FileSpec, ddmconf: dict, queuedata: QueueData) -> bool:
    """Whether the job already says where the file is well enough to read it without asking Rucio.

    True for an input whose storage (the job's ``ddmEndPointIn``) is one of the queue's LAN read
    storages and deterministic (so its path follows from scope and name), and whose size and adler32
    the job gives (so what arrives is still verified). Rucio is asked only if that copy fails.
    """
    storage = ddmconf.get(fspec.ddmendpoint) if fspec.ddmendpoint else None
    if storage is None or not getattr(storage, "is_deterministic", False):
        return False
    if fspec.ddmendpoint not in lan_storages(fspec, queuedata) or not storage.get_protocols("read_lan"):
        return False
    return bool(fspec.filesize) and bool((fspec.checksum or {}).get("adler32"))


def lan_storages(fspec: FileSpec, queuedata: Optional[QueueData]) -> set:
    """Storages counted as local for this file."""
    names = set(fspec.inputddms or [])
    if queuedata is not None:
        names |= set(queuedata.astorages.get("read_lan") or queuedata.astorages.get("pr") or [])
    return names


def order_replicas(answer: dict, fspec: FileSpec, queuedata: Optional[QueueData], allowed_schemas: Optional[list],
                   direct_schemas: list) -> list:
    """One replica per storage (its best allowed scheme), LAN storages first."""
    pfn_info = answer.get("pfns") or {}
    lan = lan_storages(fspec, queuedata)
    direct = bool(queuedata is not None and queuedata.direct_access_lan)
    local: list = []
    remote: list = []
    for rse, pfns in (answer.get("rses") or {}).items():
        disk = [p for p in pfns if (pfn_info.get(p) or {}).get("type", "DISK") == "DISK"]
        best = _best_pfn(disk, allowed_schemas, direct_schemas if direct and rse in lan else None)
        if best and best.startswith("file://localhost/"):
            best = "file:///" + best[len("file://localhost/"):]  # gfal2 and the mv tool want file:///path
        if best:
            (local if rse in lan else remote).append({"ddmendpoint": rse, "pfn": best,
                                                      "domain": "lan" if rse in lan else "wan"})
    allow_wan = bool(fspec.allow_wan or (queuedata is not None and queuedata.allow_wan) or not local)
    return local + (remote if allow_wan else [])


def _best_pfn(pfns: list, allowed: Optional[list], prefer: Optional[list]) -> Optional[str]:
    def scheme(pfn: str) -> str:
        return pfn.split("://", 1)[0] if "://" in pfn else ""
    usable = [p for p in pfns if not allowed or scheme(p) in allowed]
    if not usable:
        return None
    order = list(prefer or []) + list(allowed or [])
    return sorted(usable, key=lambda p: order.index(scheme(p)) if scheme(p) in order else len(order))[0]


def backfill(fspec: FileSpec, answer: dict) -> None:
    """Size and checksums from Rucio where the job gave none (a disagreement is only logged)."""
    size = answer.get("bytes")
    if size and not fspec.filesize:
        fspec.filesize = int(size)
    elif size and int(size) != int(fspec.filesize):
        logger.warning("size of %s: job %s, Rucio %s", fspec.lfn, fspec.filesize, size)
    for kind in ("adler32", "md5"):
        value = answer.get(kind)
        if value and not fspec.checksum.get(kind):
            fspec.checksum[kind] = value
        elif value and fspec.checksum.get(kind) != value:
            logger.warning("%s of %s: job %s, Rucio %s", kind, fspec.lfn, fspec.checksum.get(kind), value)
