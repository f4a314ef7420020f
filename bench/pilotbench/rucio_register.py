"""Register bench files as replicas on one RSE of the loopback Rucio (run with the Rucio venv's python).

    python rucio_register.py RSE < [{"scope": ..., "name": ..., "bytes": ..., "adler32": ...}, ...]

Idempotent: the scope is added when missing, files that already have a replica there are skipped.
Needs ``RUCIO_CONFIG`` pointing at the client configuration (``ci/storage/client-env.sh``).
"""

import json
import sys

from rucio.client import Client
from rucio.common.exception import Duplicate


def main() -> int:
    rse = sys.argv[1]
    files = json.load(sys.stdin)
    client = Client()
    account = client.whoami()["account"]
    for scope in sorted({f["scope"] for f in files}):
        try:
            client.add_scope(account, scope)
        except Duplicate:
            pass
    known = {(r["scope"], r["name"]) for r in client.list_replicas(
        [{"scope": f["scope"], "name": f["name"]} for f in files], rse_expression=rse)}
    todo = [f for f in files if (f["scope"], f["name"]) not in known]
    for start in range(0, len(todo), 100):
        client.add_replicas(rse=rse, files=todo[start:start + 100])
    print(f"{len(todo)} replica(s) registered on {rse}, {len(files) - len(todo)} already there")
    return 0


if __name__ == "__main__":
    sys.exit(main())
