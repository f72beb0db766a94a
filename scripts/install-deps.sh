#!/usr/bin/env bash
# Installs what the build, the tests and `make run` need, if missing
# (Debian 12, as root). Idempotent and quiet when everything is there.
set -euo pipefail
pkgs=(apache2 apache2-dev libapr1-dev libaprutil1-dev libssl-dev libcpputest-dev rapidjson-dev
      zlib1g-dev libhiredis-dev redis-server python3-websockets g++ make openssl curl
      clang libclang-rt-14-dev ${EXTRA_PKGS:-})
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts the system services on install; this project runs its own
# private instances, so leave the system ones as the admin had them.
