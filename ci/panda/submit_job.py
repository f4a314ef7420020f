"""Submit generic jobs to the real PanDA server (run with the server's venv python).

Reads a JSON list of job descriptions on stdin, builds each as the server's own ``JobSpec`` with a
log ``FileSpec`` (and output ``FileSpec`` s), serialises them with ``JobUtils.dump_jobs_json`` and
POSTs them to ``/api/v1/job/submit``. Prints the JSON list of PandaIDs.

A description: ``{"name", "transformation", "parameters", "site", "outputs": [lfn...],
"log": lfn, "dataset", "ddm", "label"}`` (label: prodSourceLabel, default ``managed``).
usage: python submit_job.py URL < jobs.json
"""

import json
import sys
import time
import urllib.request

from pandaserver.taskbuffer import JobUtils
from pandaserver.taskbuffer.FileSpec import FileSpec
from pandaserver.taskbuffer.JobSpec import JobSpec


def file_spec(lfn, kind, desc):
    spec = FileSpec()
    spec.lfn = lfn
    spec.type = kind
    spec.dataset = desc["dataset"]
    spec.destinationDBlock = desc["dataset"]
    spec.destinationSE = desc["ddm"]
    spec.destinationDBlockToken = desc["ddm"]
    spec.scope = desc.get("scope", "pilotci")
    return spec


def job_spec(desc):
    job = JobSpec()
    job.jobDefinitionID = int(time.time()) % 10000
    job.jobName = desc["name"]
    job.transformation = desc["transformation"]
    job.jobParameters = desc["parameters"]
    job.destinationDBlock = desc["dataset"]
    job.destinationSE = desc["ddm"]
    job.computingSite = desc["site"]
    job.prodSourceLabel = desc.get("label", "managed")
    job.currentPriority = 1000
    job.assignedPriority = 1000
    job.VO = "local"
    job.coreCount = 1
    job.maxAttempt = 1
    job.cmtConfig = ""
    job.AtlasRelease = ""
    job.homepackage = ""
    for lfn in desc.get("outputs", []):
        job.addFile(file_spec(lfn, "output", desc))
    job.addFile(file_spec(desc["log"], "log", desc))
    return job


def main():
    url = sys.argv[1].rstrip("/") + "/api/v1/job/submit"
    jobs = [job_spec(desc) for desc in json.load(sys.stdin)]
    body = json.dumps({"jobs": JobUtils.dump_jobs_json(jobs)}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json", "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        reply = json.loads(response.read().decode())
    if not reply.get("success"):
        sys.exit(f"submit failed: {reply.get('message')}")
    ids = [int(entry[0]) if isinstance(entry, (list, tuple)) else int(entry) for entry in reply["data"]]
    print(json.dumps(ids))


if __name__ == "__main__":
    main()
