"""``python -m bench.pilotbench``: install the references, run the scenarios, write the report.

    python -m bench.pilotbench [--runs 3] [--runs-long 1] [--scenarios a,b,c,x,d] [--python39 PATH]
    python -m bench.pilotbench --report-only bench/work/results/<stamp>.json [<later stamp>.json ...]
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Optional

from . import RESULTS, WORK
from .install import install
from .report import machine_info, merge_documents, write_report
from .scenarios import SCENARIOS, run_scenario
from .xrdstorage import XrdStorage

logger = logging.getLogger("pilotbench")
LONG = ("b", "d")


def expand(selected: list) -> list:
    """Scenario keys to run, in order ('c' and 'x' are their sub-scenarios; c's one-input baseline is 'a' when
    run)."""
    keys = []
    for key in selected:
        if key in ("c", "x", "o", "w", "u"):
            keys += [f"{key}-base", f"{key}-small", f"{key}-large"]
        elif key in SCENARIOS:
            keys.append(key)
        else:
            raise SystemExit(f"unknown scenario {key!r} (use a, b, c, x, d, o, w, u)")
    return keys


def run_all(args: argparse.Namespace, raw: Path) -> dict:
    """Run the selected scenarios against one dev server; returns the raw results document."""
    keys = expand(args.scenarios.split(","))
    xrd = XrdStorage() if any(SCENARIOS[k].storage == "xrd" or SCENARIOS[k].out_storage for k in keys) else None
    installed = install(args.python39)
    document = {"started": time.time(), "machine": machine_info(), "install": installed,
                "private_hosts": os.environ.get("BENCH_PRIVATE_HOSTS") == "1",
                "runs": args.runs, "runs_long": args.runs_long, "scenarios": keys, "results": []}
    if xrd is not None:
        xrd.start()
    try:
        run_scenarios(args, keys, document, raw, xrd)
    finally:
        if xrd is not None:
            xrd.stop()
    document["finished"] = time.time()
    save(document, raw)
    return document


def run_scenarios(args: argparse.Namespace, keys: list, document: dict, raw: Path, xrd: Optional[XrdStorage]
                  ) -> None:
    """Every selected scenario against one dev server; results go into ``document`` (saved as they come)."""
    from pilot.devserver.control import DevServer

    from .jobs import Storage

    with DevServer(WORK / "server", https=True) as server:
        storage = Storage(server.storage_dir)
        for key in keys:
            scenario = SCENARIOS[key]
            pilots = scenario.pilots
            if key == "c-base" and "a" in keys:
                pilots = ("ours-link",)  # the stage-in baseline (one input) of the others is scenario a
            if args.pilots:
                pilots = tuple(p for p in pilots if p in args.pilots.split(","))
            runs = args.runs_long if key in LONG else args.runs
            logger.info("scenario %s (%s): %d run(s)", key, scenario.title, runs)
            document["results"] += run_scenario(server, storage, scenario, runs, pilots, xrd)
            save(document, raw)  # partial results survive an interrupted bench


def save(document: dict, path: Path) -> None:
    """Write the raw results document."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1))


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of scenarios a, c and x (default 3)")
    parser.add_argument("--runs-long", type=int, default=1, help="runs of scenarios b and d (default 1)")
    parser.add_argument("--scenarios", default="a,b,c,x,d", help="comma-separated subset of a,b,c,x,d")
    parser.add_argument("--pilots", help="only these pilots (pilot2,pilot3,ours,ours-link; default all)")
    parser.add_argument("--python39", help="Python 3.9 for Pilot 2 (default: find or fetch one)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes in the stage-out scenarios (o, w, u): proves they run, no figure counts")
    parser.add_argument("--private-hosts", action="store_true",
                        help="run in a mount namespace whose /etc/hosts maps this machine's addresses: xrdcp "
                             "processes otherwise stall ~5 s now and then on dropped reverse DNS queries here")
    parser.add_argument("--install-only", action="store_true", help="only install the reference pilots")
    parser.add_argument("--report-only", metavar="JSON", nargs="+",
                        help="regenerate the report from a results file, or from the parts of one bench run "
                             "(a later file's scenarios replace the earlier files' results for them)")
    parser.add_argument("--out", help="report base name (default bench/results/<date>-<machine>)")
    args = parser.parse_args(argv)
    if args.private_hosts and not os.environ.get("BENCH_PRIVATE_HOSTS"):
        from .curves import reexec_with_private_hosts
        return reexec_with_private_hosts("bench.pilotbench")
    if args.smoke:
        os.environ["PILOTBENCH_SMOKE"] = "1"
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.install_only:
        print(json.dumps(install(args.python39), indent=1))
        return 0
    if args.report_only:
        document = merge_documents([json.loads(Path(name).read_text()) for name in args.report_only])
    else:
        raw = WORK / "results" / f"{datetime.datetime.now():%Y%m%d-%H%M%S}.json"
        document = run_all(args, raw)
        logger.info("raw results: %s", raw)
    day = datetime.date.fromtimestamp(document["started"]).isoformat()
    base = Path(args.out) if args.out else RESULTS / f"{day}-{platform.machine()}-{document['machine']['cores']}cpu"
    md, png = write_report(document, base)
    print(f"report: {md}\nchart:  {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
