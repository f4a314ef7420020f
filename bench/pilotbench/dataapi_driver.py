"""Run by each pilot's own interpreter: the Data API called the way Harvester's pilotmover preparators call it.

    <pilot venv python> dataapi_driver.py SPEC.json RESULT.json

SPEC: ``{"queue", "threads", "files": [{"scope", "name", "dataset", "ddmendpoint", "guid", "workdir"}]}``. As in
Harvester's ``pilotmover_mt_preparator``: ``infosys.init(queue, infosys.confinfo, infosys.extinfo)``, direct
access off, the files split into ``threads`` slices, each slice in its own thread through its own
``data.StageInClient(infosys, acopytools={"default": ["rucio"]}, default_copytools="rucio")`` and
``transfer(files, use_vp=False)`` on ``FileSpec(type="input", ...)`` objects. RESULT: the wall time of the
transfers (from the first client made to the last thread done), of the imports, and every file's status code.
Only the stdlib and the pilot under test are imported; the bench runs this inside ``measure.launch``.
"""

import json
import sys
import threading
import time


def main(spec_path: str, result_path: str) -> int:
    started = time.monotonic()
    from pilot.api import data
    from pilot.info import infosys
    from pilot.info.filespec import FileSpec

    imported = time.monotonic()
    with open(spec_path) as handle:
        spec = json.load(handle)
    infosys.init(spec["queue"], infosys.confinfo, infosys.extinfo)
    infosys.queuedata.direct_access_lan = False
    infosys.queuedata.direct_access_wan = False
    initialised = time.monotonic()
    files = [FileSpec(type="input", scope=f["scope"], dataset=f.get("dataset"), lfn=f["name"],
                      ddmendpoint=f.get("ddmendpoint"), guid=f.get("guid"), workdir=f["workdir"])
             for f in spec["files"]]
    errors = []

    def stage_in(part: list) -> None:
        try:
            client = data.StageInClient(infosys, acopytools={"default": ["rucio"]}, default_copytools="rucio")
            client.transfer(part, use_vp=False)
        except Exception as exc:  # noqa: BLE001 - reported, as Harvester does
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = max(1, int(spec.get("threads", 3)))
    per = (len(files) + threads - 1) // threads
    workers = [threading.Thread(target=stage_in, args=(files[i:i + per],)) for i in range(0, len(files), per)]
    start = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    end = time.monotonic()
    result = {"import_s": imported - started, "init_s": initialised - imported, "transfer_s": end - start,
              "codes": {f.lfn: getattr(f, "status_code", None) for f in files}, "errors": errors[:10]}
    with open(result_path, "w") as handle:
        json.dump(result, handle)
    return 0 if not errors and all(code == 0 for code in result["codes"].values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
