#!/usr/bin/env bash
# System packages the tests need beyond Python: bubblewrap (a container runtime that really runs here,
# used by the container and credential-isolation tests). Idempotent: does nothing when bwrap is there.
# Usage: bash scripts/install-test-deps.sh
set -euo pipefail

# the unprivileged account the security tests run a pilot as (tests/security/harness.py creates it too)
if [ "$(id -u)" -eq 0 ] && ! id pilottest >/dev/null 2>&1; then
  useradd --system --no-create-home --shell /usr/sbin/nologin --user-group pilottest
  echo "== test user pilottest created"
fi

# tinyproxy: the real forwarding HTTP proxy of tests/faults/test_http_proxy.py (started by the test on a
# free port; the packaged service is not started: policy-rc.d forbids it during the install)
if ! [ -x /usr/bin/tinyproxy ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  added_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && added_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y tinyproxy >/dev/null 2>&1 || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y tinyproxy >/dev/null
  } || echo "tinyproxy could not be installed: the proxy tests will fail" >&2
  [ -n "$added_policy" ] && rm -f /usr/sbin/policy-rc.d
  [ -x /usr/bin/tinyproxy ] && echo "== tinyproxy installed: $(/usr/bin/tinyproxy -v 2>&1 | head -1)"
fi

if command -v bwrap >/dev/null 2>&1; then
  echo "== bubblewrap present: $(bwrap --version 2>/dev/null || echo bwrap)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo -n"
  else
    echo "bubblewrap is missing and this user cannot install packages (need root or sudo)" >&2
    exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "bubblewrap is missing and apt-get is not available: install the 'bubblewrap' package by hand" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y bubblewrap >/dev/null 2>&1 || {
  $SUDO apt-get update -qq
  $SUDO apt-get install -y bubblewrap
}
command -v bwrap >/dev/null 2>&1 || { echo "bubblewrap installation failed" >&2; exit 1; }
echo "== bubblewrap installed: $(bwrap --version)"
