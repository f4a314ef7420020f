#!/usr/bin/env bash
# Build the pilot tarball that sites run with a bare python3 (3.9 or newer, nothing installed):
#
#   tar xzf pilot.tar.gz && python3 pilot.py -q <queue> ...
#
# Usage: scripts/make-dist.sh [--bump] [--out DIR]
#   --bump     add one to the build number in PILOTVERSION first (release.version.revision.build);
#              commit the changed PILOTVERSION with the release
#   --out DIR  where to write (default: dist/)
# Writes DIR/pilot-<version>.tar.gz and DIR/pilot.tar.gz (the same bytes), and prints the path.
# The archive is reproducible: sorted members, owner 0, modification time of the last commit.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=dist
BUMP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --bump) BUMP=1 ;;
    --out) OUT=$2; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "make-dist: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
VERSION=$(tr -d '[:space:]' < PILOTVERSION)
if ! [[ $VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  echo "make-dist: PILOTVERSION must be release.version.revision.build, got '$VERSION'" >&2
  exit 2
fi
if [ "$BUMP" = 1 ]; then
  VERSION="${VERSION%.*}.$(( ${VERSION##*.} + 1 ))"
  echo "$VERSION" > PILOTVERSION
  echo "make-dist: PILOTVERSION is now $VERSION (commit it with the release)" >&2
fi
STAMP=$(git log -1 --format=%ct 2>/dev/null || date +%s)
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/pilot-src"
cp pilot.py PILOTVERSION README.md "$STAGE/pilot-src/"
cp scripts/pilot-wrapper.sh "$STAGE/pilot-src/"
(tar cf - --exclude=__pycache__ --exclude='*.pyc' pilot) | tar xf - -C "$STAGE/pilot-src"
mkdir -p "$OUT"
TARBALL="$OUT/pilot-$VERSION.tar.gz"
(cd "$STAGE/pilot-src" && tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$STAMP" -cf - .) \
  | gzip -n -9 > "$TARBALL"
cp "$TARBALL" "$OUT/pilot.tar.gz"
# the archive must start with a bare python3: unpack it and ask it its version
CHECK="$STAGE/check"
mkdir "$CHECK"
tar xzf "$TARBALL" -C "$CHECK"
PY=${PYTHON:-python3}
GOT=$(cd "$CHECK" && env -i PATH=/usr/bin:/bin "$PY" -s pilot.py --version)
if [ "$GOT" != "PanDA pilot $VERSION" ]; then
  echo "make-dist: the unpacked tarball says '$GOT', expected 'PanDA pilot $VERSION'" >&2
  exit 1
fi
echo "$TARBALL"
