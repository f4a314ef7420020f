"""Command line of the dev server: ``python -m pilot.devserver <command> ...``.

Commands: ``serve``, ``submit``, ``show``, ``jobs``, ``wait``, ``command``, ``inject``, ``reset``.
Client commands find the server through ``--url``, or ``--state-dir`` (its devserver.json), or the
``PILOT_DEVSERVER_DIR`` environment variable, defaulting to ``./devserver-state``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from .admin import job_record
from .control import AdminClient, DevServerError
from .injection import parse_rule_spec
from .samples import sample_job
from .server import STATE_FILE, ServerConfig, serve
from .store import Store

DEFAULT_STATE_DIR = "devserver-state"
SHOWN_FINAL_FIELDS = ("pilotErrorCode", "pilotErrorDiag", "transExitCode", "exeErrorCode", "exeErrorDiag",
                      "pilotTiming", "cpuConsumptionTime", "cpuConsumptionUnit", "cpuConversionFactor",
                      "coreCount", "nEvents", "startTime", "endTime", "jobMetrics", "xml", "pilotID", "node",
                      "batchID", "timestamp")


class _Client(AdminClient):
    """Admin client bound to a URL found on the command line or in devserver.json."""

    def __init__(self, url: str, info: Optional[dict[str, Any]] = None) -> None:
        """Remember the base URL."""
        self.url = url.rstrip("/")
        self.info = info or {}


def _state_dir(args: argparse.Namespace) -> Path:
    """The state directory from the options or the environment."""
    return Path(args.state_dir or os.environ.get("PILOT_DEVSERVER_DIR") or DEFAULT_STATE_DIR)


def _client(args: argparse.Namespace) -> _Client:
    """Build an admin client from --url or the state directory's devserver.json."""
    if args.url:
        return _Client(args.url)
    path = _state_dir(args) / STATE_FILE
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SystemExit(f"no running dev server: cannot read {path} ({exc.strerror}); use --url or --state-dir")
    return _Client(info["http_url"], info)


def _add_target(parser: argparse.ArgumentParser) -> None:
    """Options that locate a running server."""
    parser.add_argument("--url", help="base URL of the server's HTTP port")
    parser.add_argument("--state-dir", help="state directory of the server (reads devserver.json)")


def _cmd_serve(args: argparse.Namespace) -> int:
    """Run the server in the foreground."""
    try:
        rules = [parse_rule_spec(spec) for spec in args.inject]
    except ValueError as exc:
        raise SystemExit(f"bad --inject rule: {exc}")
    config = ServerConfig(state_dir=str(_state_dir(args)), host=args.host, port=args.port,
                          https_port=args.https_port, db=args.db, storage_dir=args.storage_dir, tls_dir=args.tls_dir,
                          queue=args.queue, queuedata=args.queuedata, storagedata=args.storagedata,
                          proxy_file=args.proxy_file, inject=rules)
    return serve(config)


def _cmd_submit(args: argparse.Namespace) -> int:
    """Submit a job file (or the sample job with real input files) and print the PandaID(s)."""
    client = _client(args)
    if args.sample:
        storage = client.status().get("storage_dir")
        if not storage:
            raise SystemExit("the server did not report its storage directory")
        ids = [client.submit(sample_job(storage, queue=args.queue)) for _ in range(args.count)]
    else:
        if not args.jobfile:
            raise SystemExit("give a JOBFILE or --sample")
        job = json.loads(Path(args.jobfile).read_text(encoding="utf-8"))
        if args.queue:
            job["_queue"] = args.queue
        ids = client.submit_many(job, args.count)
    for pandaid in ids:
        print(pandaid)
    return 0


def _format_value(value: Any) -> str:
    """One value for the human-readable job view."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, indent=2, sort_keys=True).replace("\n", "\n      ")
    return str(value)


def _when(stamp: float) -> str:
    """Local time of an epoch stamp with milliseconds."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) + f".{int(stamp * 1000) % 1000:03d}"


def format_record(record: dict[str, Any]) -> str:
    """Render a job record for people."""
    lines = [f"PandaID {record['pandaid']}  state={record['state']}  final={record.get('final_state') or '-'}  "
             f"queue={record.get('queue') or '(any)'}  updates={record['n_updates']} "
             f"(duplicate finals={record['n_duplicates']})"]
    final = record.get("final_update")
    if final:
        lines.append("final update:")
        for key in SHOWN_FINAL_FIELDS:
            if key in final:
                lines.append(f"  {key}: {_format_value(final[key])}")
    else:
        lines.append("no final update yet")
    lines.append("updates:")
    for item in record.get("updates", []):
        flags = f"  [{item['note']}]" if item.get("note") else ""
        reply = item.get("reply_command")
        cmd = f"  -> {reply}" if reply and reply != "NULL" else ""
        lines.append(f"  #{item['id']} {_when(item['time'])} {item['state']}{flags}{cmd}")
    ranges = record.get("eventranges") or []
    if ranges:
        lines.append("event ranges:")
        lines.extend(f"  {item['range_id']}: {item['status']}" for item in ranges)
    return "\n".join(lines)


def _cmd_show(args: argparse.Namespace) -> int:
    """Print one job's record (from the server, or straight from a database with --db)."""
    if args.db:
        store = Store(args.db)
        try:
            record = job_record(store, args.pandaid)
        finally:
            store.close()
        if record is None:
            raise SystemExit(f"unknown PandaID {args.pandaid}")
    else:
        try:
            record = _client(args).job(args.pandaid)
        except DevServerError as exc:
            raise SystemExit(str(exc))
    print(json.dumps(record, indent=2, sort_keys=True) if args.json else format_record(record))
    return 0


def _cmd_jobs(args: argparse.Namespace) -> int:
    """List jobs."""
    jobs = _client(args).jobs()
    if args.json:
        print(json.dumps(jobs, indent=2))
    for job in [] if args.json else jobs:
        print(f"{job['pandaid']}  {job['state']:<12} final={job['final_state'] or '-':<9} "
              f"updates={job['n_updates']}  queue={job['queue'] or '(any)'}")
    return 0


def _cmd_wait(args: argparse.Namespace) -> int:
    """Wait until a job is final (exit 1 on timeout) and show it."""
    try:
        record = _client(args).wait_state(args.pandaid, args.until, args.timeout)
    except TimeoutError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(format_record(record))
    return 0


def _cmd_command(args: argparse.Namespace) -> int:
    """Queue a command for a job's next updateJob reply."""
    _client(args).set_command(args.pandaid, args.command)
    return 0


def _cmd_inject(args: argparse.Namespace) -> int:
    """Add, list or clear injection rules."""
    client = _client(args)
    if args.clear:
        client.clear_injections()
    try:
        for spec in args.rules:
            client.inject(**parse_rule_spec(spec))
    except ValueError as exc:
        raise SystemExit(f"bad rule: {exc}")
    print(json.dumps(client.injections(), indent=2))
    return 0


def _cmd_reset(args: argparse.Namespace) -> int:
    """Reset the server."""
    _client(args).reset(args.scope)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = argparse.ArgumentParser(prog="python -m pilot.devserver", description="PanDA-protocol dev server")
    parser.add_argument("--log-level", default="INFO", help="log level of the server/commands (default INFO)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the server in the foreground")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="HTTP port (0: pick a free one)")
    p.add_argument("--https-port", type=int, default=None, help="HTTPS port (0: pick a free one; omit: no HTTPS)")
    p.add_argument("--state-dir", help=f"state directory (default $PILOT_DEVSERVER_DIR or ./{DEFAULT_STATE_DIR})")
    p.add_argument("--db", help="SQLite file (default <state-dir>/devserver.db)")
    p.add_argument("--storage-dir", help="root of the LOCAL_DISK storage (default <state-dir>/storage)")
    p.add_argument("--tls-dir", help="TLS material directory (default <state-dir>/tls)")
    p.add_argument("--queue", help="name of the default queue (default DEV_QUEUE)")
    p.add_argument("--queuedata", help="JSON file with queue data (one queue or name -> queue)")
    p.add_argument("--storagedata", help="JSON file with storage data (name -> storage); @STORAGE_DIR@ expands")
    p.add_argument("--proxy-file", help="file whose text getProxy returns")
    p.add_argument("--inject", action="append", default=[], metavar="RULE",
                   help="failure rule, JSON or METHOD:ACTION[:key=value,...] (repeatable)")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("submit", help="submit a job definition, print the PandaID(s)")
    p.add_argument("jobfile", nargs="?", help="JSON file with the getJob field set")
    p.add_argument("--sample", action="store_true", help="submit the sample job, creating its input files")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--queue", help="only hand the job to this queue")
    _add_target(p)
    p.set_defaults(func=_cmd_submit)

    p = sub.add_parser("show", help="print a job's record")
    p.add_argument("pandaid", type=int)
    p.add_argument("--json", action="store_true")
    p.add_argument("--db", help="read this database directly (no server needed)")
    _add_target(p)
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser("jobs", help="list jobs")
    p.add_argument("--json", action="store_true")
    _add_target(p)
    p.set_defaults(func=_cmd_jobs)

    p = sub.add_parser("wait", help="wait until a job is final")
    p.add_argument("pandaid", type=int)
    p.add_argument("--until", default="final", help="state to wait for (default: final)")
    p.add_argument("--timeout", type=float, default=600.0)
    _add_target(p)
    p.set_defaults(func=_cmd_wait)

    p = sub.add_parser("command", help="deliver a command in a job's next updateJob reply")
    p.add_argument("pandaid", type=int)
    p.add_argument("command")
    _add_target(p)
    p.set_defaults(func=_cmd_command)

    p = sub.add_parser("inject", help="add failure-injection rules to a running server")
    p.add_argument("rules", nargs="*", metavar="RULE", help="JSON or METHOD:ACTION[:key=value,...]")
    p.add_argument("--clear", action="store_true", help="remove existing rules first")
    _add_target(p)
    p.set_defaults(func=_cmd_inject)

    p = sub.add_parser("reset", help="reset a running server")
    p.add_argument("--scope", choices=("all", "rules", "data"), default="all")
    _add_target(p)
    p.set_defaults(func=_cmd_reset)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m pilot.devserver``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except DevServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
