#!/usr/bin/env bash
# Installs what the Pusher tests need, only when it is missing: the pinned
# node packages of package-lock.json (pusher-js, laravel-echo, pusher, ws and,
# for the reference server only, @soketi/soketi). Prints nothing when all is
# installed already.
#
# PUSHER_NO_SOKETI=1 skips soketi (an optional dependency, the largest part):
# enough to run the suite against mod_wsbridge.
#
# soketi 1.6.1 depends on uWebSockets.js from GitHub, which is not reachable
# here; package.json's "overrides" maps it to the registry republish
# @trufflesuite/uws-js-unofficial (same API, prebuilt for node 16/18/20).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

# Debian's nodejs comes without npm (NodeSource's includes it).
if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q npm >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -q npm >/dev/null 2>&1; } || true
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "setup: node and npm are needed (Node.js 20.19+)" >&2
  exit 1
fi

want_soketi=1
[ "${PUSHER_NO_SOKETI:-0}" = 1 ] && want_soketi=0

# Up to date when npm's own record of the tree is newer than the manifests and
# every package the suite imports is there.
installed() {
  local stamp=node_modules/.package-lock.json m
  [ -f "$stamp" ] && [ "$stamp" -nt package.json ] && [ "$stamp" -nt package-lock.json ] || return 1
  for m in pusher-js laravel-echo pusher ws; do
    [ -f "node_modules/$m/package.json" ] || return 1
  done
  if [ "$want_soketi" = 1 ]; then
    [ -f node_modules/@soketi/soketi/package.json ] && [ -f node_modules/uWebSockets.js/package.json ] || return 1
  fi
  return 0
}

installed && exit 0

args=(--no-audit --no-fund --loglevel=error)
[ "$want_soketi" = 0 ] && args+=(--omit=optional)
if [ -f package-lock.json ]; then
  npm ci "${args[@]}"
else
  npm install "${args[@]}"
fi
# npm ci does not always touch the stamp when nothing changed; make it current.
touch node_modules/.package-lock.json
v() { node -p "require('./node_modules/$1/package.json').version" 2>/dev/null || echo none; }
echo "setup: pusher-js $(v pusher-js), laravel-echo $(v laravel-echo), pusher $(v pusher), ws $(v ws), soketi $(v @soketi/soketi)"
