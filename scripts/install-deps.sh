#!/usr/bin/env bash
# Installs what the build, the tests and `make run` need, if missing
# (Debian 12, as root). Idempotent and quiet when everything is there.
#
#   scripts/install-deps.sh [GROUP...]
#
# Groups: base (default: build, every test, make run: Apache, PHP-FPM,
# Pushpin, Redis, Chromium's needs come from tests/browser/setup.sh),
# deb (make deb: debhelper, lintian), fresh (make test-fresh: mmdebstrap).
# EXTRA_PKGS adds packages to any call.
set -euo pipefail
# WSB_SKIP_DEPS=1: do nothing (package builds: dpkg-buildpackage checks the
# Build-Depends itself and must never run apt).
[ "${WSB_SKIP_DEPS:-}" = 1 ] && exit 0
groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(base)
pkgs=(${EXTRA_PKGS:-})
for g in "${groups[@]}"; do
  case "$g" in
    base) pkgs+=(apache2 apache2-dev libapr1-dev libaprutil1-dev libssl-dev libcpputest-dev rapidjson-dev
                 zlib1g-dev libhiredis-dev redis-server python3-websockets python3-h2 g++ make openssl curl
                 clang libclang-rt-14-dev php-fpm php-cli pushpin nodejs) ;;
    deb) pkgs+=(debhelper dpkg-dev lintian fakeroot apache2-dev) ;;
    fresh) pkgs+=(mmdebstrap) ;;
    *) echo "install-deps.sh: unknown group $g (base, deb, fresh)" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing packages: ${missing[*]}" >&2
  echo "run this as root, or first: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# policy-rc.d: Debian starts the system services (apache2, redis, php-fpm,
# pushpin) on install; this project runs its own private instances on
# loopback, so the system ones stay as the admin had them (not started).
prc=/usr/sbin/policy-rc.d
made_prc=""
if [ ! -e "$prc" ]; then printf '#!/bin/sh\nexit 101\n' > "$prc"; chmod 755 "$prc"; made_prc=1; fi
trap '[ -n "$made_prc" ] && rm -f "$prc"' EXIT
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
