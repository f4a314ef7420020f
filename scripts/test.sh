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

# servers this run started are stopped at the end (a developer's may be in use)
STOP_STORAGE=0
STOP_PANDA=0
on_exit() {
  if [ "$STOP_STORAGE" = 1 ]; then bash ci/storage/stop-all.sh >/dev/null 2>&1 || true; fi
  if [ "$STOP_PANDA" = 1 ]; then bash ci/panda/stop.sh >/dev/null 2>&1 || true; fi
}
trap on_exit EXIT

# real storage servers (XRootD, nginx WebDAV, Rucio) on 127.0.0.1, and their client tools
if [ "${SKIP_STORAGE:-0}" != "1" ]; then
  bash ci/storage/setup-all.sh "$VENV"
  # stop the servers at the end only if this run started them (a developer's may be in use)
  if ! bash ci/storage/status.sh >/dev/null 2>&1; then
    STOP_STORAGE=1
  fi
  bash ci/storage/start-all.sh
  # shellcheck disable=SC1091
  . ci/storage/client-env.sh "$VENV"
  echo "== storage servers up ($(( $(date +%s) - start )) s)"
fi

# the real PanDA server (panda-server from PyPI on PostgreSQL) for tests/e2e/realserver; its database
# schema is on no registry: without a copy beside the repo those tests skip and say so
PANDA_DB_SCHEMA=${PANDA_DB_SCHEMA:-$ROOT/../shared/vendor/panda-database-0.1.6}
export PANDA_DB_SCHEMA
if [ "${SKIP_PANDA:-0}" != "1" ] && [ -f "$PANDA_DB_SCHEMA/postgres/sqls/init_step.sql" ]; then
  panda_start=$(date +%s)
  bash ci/panda/install.sh
  if ! bash ci/panda/status.sh >/dev/null 2>&1; then
    STOP_PANDA=1
  fi
  bash ci/panda/start.sh
  echo "== PanDA server up (install + start $(( $(date +%s) - panda_start )) s)"
elif [ "${SKIP_PANDA:-0}" != "1" ]; then
  echo "== no PanDA database schema at $PANDA_DB_SCHEMA: the real-server tests will skip"
fi
export PATH="$VENV/bin:$PATH"

echo "== flake8"
"$VENV/bin/python" -m flake8 pilot pilot.py tests bench
bash scripts/typecheck.sh "$VENV/bin/python"

echo "== pytest"
# coverage of this pass, merged over the test process and every Python process it starts (pilots, also
# as the test user): each writes its own data file into PILOT_COVERAGE_DIR (doc/source/coverage.rst).
# PILOT_COVERAGE=0 turns it off; the floors are checked on a whole run only (no pytest arguments).
COVERAGE_ENV=()
if [ "${PILOT_COVERAGE:-1}" != "0" ]; then
  export PILOT_COVERAGE_DIR="$ROOT/.coverage-data"
  rm -rf "$PILOT_COVERAGE_DIR"
  mkdir -p "$PILOT_COVERAGE_DIR"
  chmod 1777 "$PILOT_COVERAGE_DIR"
  COVERAGE_ENV=("COVERAGE_PROCESS_START=$ROOT/.coveragerc")
fi
pytest_start=$(date +%s)
set +e
env ${COVERAGE_ENV[@]+"${COVERAGE_ENV[@]}"} "$VENV/bin/python" -m pytest -q -p no:cacheprovider --timeout=600 "$@"
rc=$?
set -e
echo "== pytest took $(( $(date +%s) - pytest_start )) s"
if [ "${#COVERAGE_ENV[@]}" -gt 0 ]; then
  echo "== coverage of the main pytest pass (per package; per suite alone)"
  check=()
  if [ "$#" -eq 0 ] && [ "$rc" -eq 0 ]; then check=(--check); fi
  cov_rc=0
  "$VENV/bin/python" scripts/coverage_report.py ${check[@]+"${check[@]}"} || cov_rc=$?
fi
if [ "$rc" -ne 0 ]; then
  echo "pytest failed (exit $rc)"
  exit "$rc"
fi
if [ "${cov_rc:-0}" -ne 0 ]; then
  echo "coverage under its floor or without a reason in doc/source/coverage.rst (exit $cov_rc)"
  exit "$cov_rc"
fi

# nodes run old interpreters: whole-pilot jobs again with the pilot on Python 3.9 (EL9's python3)
# (not measured: the main pass above ran the same code)
echo "== pytest: whole-pilot jobs with the pilot on Python 3.9"
PY39=$(bash scripts/python39.sh "$VENV/bin/python")
set +e
PILOT_TEST_PYTHON="$PY39" "$VENV/bin/python" -m pytest -q -p no:cacheprovider --timeout=600 \
  tests/e2e/test_generic_job.py tests/e2e/test_pilot_lifecycle.py tests/e2e/data/test_copytool_jobs.py \
  tests/e2e/eventservice/test_es_athenamp.py \
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
