#!/usr/bin/env bash
# Start all loopback storage services (idempotent: running ones are kept):
#   xrootd  root:// + XrdHttp https/davs  127.0.0.1:1094 (adler32)
#   nginx   WebDAV http 127.0.0.1:18480, https/davs 127.0.0.1:18443 (no checksums)
#   rucio   REST http://127.0.0.1:18580, SQLite, RSEs PILOT_POSIX PILOT_XRD PILOT_DAVS
# Each start script waits until its port answers.
# usage: ci/storage/start-all.sh
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=ci/storage/env.sh
. "$HERE/env.sh"

t0=$(snow)
storage_require_installed
make_pki
prepare_data_dir
"$HERE/start-xrootd.sh"
"$HERE/start-http.sh"
"$HERE/start-rucio.sh"
slog "start-all: done in $(selapsed "$t0")s"
