#!/usr/bin/env bash
# Install everything the tests need and run them: flake8, pytest (unit, integration with the real
# storage servers, end-to-end pilot runs against the dev server) and the Sphinx docs with -W.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${VENV:-$ROOT/.venv}
export PIP_DISABLE_PIP_VERSION_CHECK=1

start=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q -r requirements-test.txt
bash scripts/install-test-deps.sh
bash scripts/hpc/install.sh
echo "== python test dependencies ready ($(( $(date +%s) - start )) s)"

# real storage servers (XRootD, nginx WebDAV, Rucio) on 127.0.0.1, and their client tools
if [ "${SKIP_STORAGE:-0}" != "1" ]; then
  bash ci/storage/setup-all.sh "$VENV"
  # stop the servers at the end only if this run started them (a developer's may be in use)
  if ! bash ci/storage/status.sh >/dev/null 2>&1; then
    trap 'bash ci/storage/stop-all.sh >/dev/null 2>&1 || true' EXIT
  fi
  bash ci/storage/start-all.sh
  # shellcheck disable=SC1091
  . ci/storage/client-env.sh "$VENV"
  echo "== storage servers up ($(( $(date +%s) - start )) s)"
fi
export PATH="$VENV/bin:$PATH"

echo "== flake8"
"$VENV/bin/python" -m flake8 pilot pilot.py tests bench

echo "== pytest"
set +e
"$VENV/bin/python" -m pytest -q -p no:cacheprovider --timeout=600 "$@"
rc=$?
set -e
if [ "$rc" -ne 0 ]; then
  echo "pytest failed (exit $rc)"
  exit "$rc"
fi

# nodes run old interpreters: whole-pilot jobs again with the pilot on Python 3.9 (EL9's python3)
echo "== pytest: whole-pilot jobs with the pilot on Python 3.9"
PY39=$(bash scripts/python39.sh "$VENV/bin/python")
set +e
PILOT_TEST_PYTHON="$PY39" "$VENV/bin/python" -m pytest -q -p no:cacheprovider --timeout=600 \
  tests/e2e/test_generic_job.py tests/e2e/test_pilot_lifecycle.py tests/e2e/data/test_copytool_jobs.py \
  -k "not rucio and not s3"  # those copytools need the optional rucio-clients/boto3, absent from a bare 3.9
rc=$?
set -e
if [ "$rc" -ne 0 ]; then
  echo "pytest with the pilot on Python 3.9 failed (exit $rc)"
  exit "$rc"
fi

echo "== sphinx"
"$VENV/bin/python" -m sphinx -W -q -b html doc/source doc/build/html
echo "== all checks passed in $(( $(date +%s) - start )) s"
