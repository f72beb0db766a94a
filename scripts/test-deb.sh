#!/usr/bin/env bash
# `make test-deb`: proves the Debian package installs, works and leaves
# nothing behind. As root, on the machine itself:
#
#   1. builds build/deb/libapache2-mod-wsbridge_<VERSION>_<arch>.deb if it is
#      missing or older than its sources (DEB=/path/to.deb tests that file
#      and builds nothing),
#   2. records every file, link and directory under /etc/apache2 (type, mode,
#      owner, link target, sha256 of the contents),
#   3. apt-get install ./the.deb; the module must be enabled by the package
#      (Apache's packaging policy: modules are enabled on install), else
#      a2enmod; apache2ctl configtest and -M with the system configuration,
#   4. starts a throw-away Apache (scripts/instance.sh, temp dir, free
#      loopback port) with the PACKAGED module and the packaged example
#      configuration; fetches the packaged demo page; one WebSocket echo
#      round trip on /ws/echo and one chat round trip on /ws/chat; stops it,
#   5. apt-get purge: nothing dpkg -L listed is left (directories that
#      existed before the install stay), dpkg -s says not installed, no
#      apache2-maintscript-helper state is left, and /etc/apache2 is exactly
#      as recorded in 2.
#
# On any failure or interrupt the trap stops that Apache and purges the
# package. The system Apache is never started or restarted: if there is no
# /usr/sbin/policy-rc.d, one that refuses (exit 101) is put there for the
# run. Last line: "N passed, N failed"; the exit status is non-zero on any
# failure.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${BUILD:-build}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
pkg=libapache2-mod-wsbridge
version=$(tr -d '[:space:]' < VERSION)
arch=$(dpkg --print-architecture)
deb=${DEB:-$build/deb/${pkg}_${version}_${arch}.deb}
case "$deb" in /*) ;; *) deb="$PWD/$deb" ;; esac
modpath=/usr/lib/apache2/modules/mod_wsbridge.so
PY=/usr/bin/python3
t_start=$(date +%s)

passed=0 failed=0
ok()   { echo "ok   - $1"; passed=$((passed + 1)); }
bad()  { echo "FAIL - $1"; failed=$((failed + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
finish() { echo "$passed passed, $failed failed"; [ "$failed" = 0 ]; exit $?; }

if [ "$(id -u)" != 0 ]; then
  echo "test-deb installs a package: run it as root" >&2; bad "running as root"; finish
fi

# ---- preconditions: never test over something the admin installed ----------
if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -qv "not-installed"; then
  echo "$pkg is already installed (or its config files are): this test would purge it." >&2
  echo "Remove it first: apt-get purge $pkg" >&2
  bad "package not installed before the test"; finish
fi
for f in "$modpath" /etc/apache2/mods-available/wsbridge.load /etc/apache2/mods-available/wsbridge.conf; do
  if [ -e "$f" ]; then
    echo "$f exists (from 'make install'?): the package would take it over and purge it." >&2
    echo "Remove it first (a2dismod wsbridge; rm $modpath /etc/apache2/mods-available/wsbridge.*)" >&2
    bad "no unpackaged mod_wsbridge on the system"; finish
  fi
done

# ---- build if needed ------------------------------------------------------
if [ -z "${DEB:-}" ]; then
  newer=""
  [ -f "$deb" ] && newer=$(find Makefile VERSION mod_wsbridge.cpp src conf htdocs debian \
                             -type f -newer "$deb" -print -quit 2>/dev/null)
  if [ ! -f "$deb" ] || [ -n "$newer" ]; then
    echo "building the package${newer:+ ($newer changed)}"
    if ! BUILD="$build" timeout 900 debian/build-deb.sh; then
      bad "make deb"; finish
    fi
  fi
fi
[ -f "$deb" ] || { bad "package file $deb exists"; finish; }
echo "testing $deb"

tmp=$(mktemp -d /tmp/wsb-test-deb.XXXXXX)
inst="$tmp/apache"
mkdir -p "$inst"
installed_by_us=""
made_prc=""
prc=/usr/sbin/policy-rc.d

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -f "$inst/httpd.pid" ]; then
    timeout 30 scripts/instance.sh stop "$inst" >/dev/null 2>&1 || true
  fi
  if [ -n "$installed_by_us" ] && dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -qv "not-installed"; then
    echo "cleanup: purging $pkg"
    DEBIAN_FRONTEND=noninteractive timeout 300 apt-get purge -y -q "$pkg" >/dev/null 2>&1 || true
  fi
  [ -n "$made_prc" ] && rm -f "$prc"
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'bad "interrupted"; finish' INT TERM

if [ ! -e "$prc" ]; then printf '#!/bin/sh\nexit 101\n' > "$prc"; chmod 755 "$prc"; made_prc=1; fi

# Every entry under /etc/apache2: type, mode, owner, link target / hash.
snapshot() {
  (cd /etc/apache2 && find . -printf '%y %m %u:%g %p\n' | LC_ALL=C sort -k4 | while read -r t m o p; do
     case "$t" in
       f) echo "$t $m $o $p $(sha256sum < "$p" | cut -c1-64)" ;;
       l) echo "$t $m $o $p -> $(readlink "$p")" ;;
       *) echo "$t $m $o $p" ;;
     esac
   done)
}
snapshot > "$tmp/etc.before"
# Which of the package's paths exist already (shared directories such as
# /usr/share/doc): those must still be there after the purge.
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's#^\./#/#; s#/$##; /^$/d' | sort -u > "$tmp/deb.paths"
while read -r p; do [ -e "$p" ] && echo "$p"; done < "$tmp/deb.paths" > "$tmp/preexisting"

# ---- install ----------------------------------------------------------------
t0=$(date +%s)
if DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -q "$deb" > "$tmp/install.log" 2>&1; then
  installed_by_us=1; ok "apt-get install ./$(basename "$deb") ($(( $(date +%s) - t0 ))s)"
else
  installed_by_us=1; tail -20 "$tmp/install.log"; bad "apt-get install ./$(basename "$deb")"; finish
fi
check "dpkg -s: installed, version $version" \
  test "$(dpkg-query -W -f='${Status} ${Version}' "$pkg" 2>/dev/null)" = "install ok installed $version"
dpkg -L "$pkg" | sort -u > "$tmp/files"
check "module at $modpath" test -f "$modpath"
check "wsbridge.load loads $modpath" \
  grep -qx "LoadModule wsbridge_module $modpath" /etc/apache2/mods-available/wsbridge.load
check "wsbridge.load and wsbridge.conf are conffiles" \
  test "$(dpkg-query -W -f='${Conffiles}' "$pkg" | awk '{print $1}' | grep -c '^/etc/apache2/mods-available/wsbridge\.\(load\|conf\)$')" = 2
check "demo page in /usr/share/$pkg/htdocs" test -f "/usr/share/$pkg/htdocs/index.html"
check "example vhost snippet in /usr/share/$pkg/examples" test -f "/usr/share/$pkg/examples/wsbridge-demo.conf"

if a2query -q -m wsbridge; then
  ok "module enabled by the package (apache2-maintscript-helper)"
else
  bad "module enabled by the package (a2query -m wsbridge: $(a2query -m wsbridge 2>&1))"
  a2enmod -q wsbridge >/dev/null 2>&1 || true
fi
check "apache2ctl configtest (system config with the module)" \
  bash -c 'apache2ctl configtest > "$1/configtest.log" 2>&1 || { cat "$1/configtest.log"; exit 1; }' _ "$tmp"
check "apache2ctl -M lists wsbridge_module" bash -c 'apache2ctl -M 2>/dev/null | grep -q "wsbridge_module (shared)"'

# ---- run the packaged module in a private Apache ----------------------------
port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$tmp/extra.conf" <<EOF
LoadModule alias_module /usr/lib/apache2/modules/mod_alias.so
Include /usr/share/$pkg/examples/wsbridge-demo.conf
EOF
if MODULE="$modpath" PORT="$port" QUIET=1 EXTRA_CONF="$tmp/extra.conf" \
     timeout 60 scripts/instance.sh start "$inst" > "$tmp/start.log" 2>&1; then
  ok "private Apache with the packaged module on 127.0.0.1:$port"
  body=$(curl -sS --max-time 5 "http://127.0.0.1:$port/wsbridge-demo/" 2>&1)
  check "packaged demo page /wsbridge-demo/ (example config)" grep -q 'type="module"' <<< "$body"
  check "packaged demo script /wsbridge-demo/js/main.js" \
    test "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port/wsbridge-demo/js/main.js")" = 200
  status=$(curl -sS --max-time 5 "http://127.0.0.1:$port/ws/status" 2>&1)
  check "/ws/status answers JSON (version $version if it reports one)" $PY - "$status" "$version" <<'EOF'
import json, sys
s = json.loads(sys.argv[1])
sys.exit(0 if s.get("version", sys.argv[2]) == sys.argv[2] else 1)
EOF
  check "WebSocket echo round trip on /ws/echo" timeout 20 $PY - "$port" <<'EOF'
import asyncio, os, sys, websockets
async def main(port):
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/echo", open_timeout=5, close_timeout=2) as ws:
        text, data = f"hello from test-deb {os.getpid()} ✓", os.urandom(300)
        await ws.send(text)
        assert await asyncio.wait_for(ws.recv(), 5) == text, "text echo differs"
        await ws.send(data)
        assert await asyncio.wait_for(ws.recv(), 5) == data, "binary echo differs"
asyncio.run(asyncio.wait_for(main(int(sys.argv[1])), 15))
EOF
  check "chat round trip on /ws/chat (join, message, own message back)" timeout 20 $PY - "$port" <<'EOF'
import asyncio, json, os, sys, websockets
async def main(port):
    room, text = f"test-deb-{os.getpid()}", f"hi from the package {os.getpid()}"
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/chat?name=debtest", open_timeout=5, close_timeout=2) as ws:
        async def until(pred, what):
            while True:
                ev = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if ev.get("type") == "error":
                    raise AssertionError(f"error frame while waiting for {what}: {ev}")
                if pred(ev):
                    return ev
        await until(lambda e: e.get("type") == "welcome", "welcome")
        await ws.send(json.dumps({"type": "join", "room": room}))
        await until(lambda e: e.get("type") == "presence" and e.get("room") == room, "presence")
        await ws.send(json.dumps({"type": "message", "room": room, "text": text}))
        ev = await until(lambda e: e.get("type") == "message" and e.get("room") == room, "message")
        assert ev.get("text") == text and ev.get("from") == "debtest" and isinstance(ev.get("seq"), int), ev
asyncio.run(asyncio.wait_for(main(int(sys.argv[1])), 15))
EOF
  pid=$(cat "$inst/httpd.pid" 2>/dev/null || echo 0)
  timeout 30 scripts/instance.sh stop "$inst" >/dev/null 2>&1
  check "private Apache stopped" bash -c "! kill -0 $pid 2>/dev/null"
  if grep -E "\[(emerg|alert|crit)\]|AH00052" "$inst/logs/error.log" >/dev/null 2>&1; then
    grep -E "\[(emerg|alert|crit)\]|AH00052" "$inst/logs/error.log" | tail -5
    bad "private Apache's error log has no crash or emergency"
  else
    ok "private Apache's error log has no crash or emergency"
  fi
else
  cat "$tmp/start.log"; tail -20 "$inst/logs/error.log" 2>/dev/null
  bad "private Apache with the packaged module on 127.0.0.1:$port"
fi

# ---- purge -------------------------------------------------------------------
t0=$(date +%s)
if DEBIAN_FRONTEND=noninteractive timeout 300 apt-get purge -y -q "$pkg" > "$tmp/purge.log" 2>&1; then
  ok "apt-get purge $pkg ($(( $(date +%s) - t0 ))s)"
else
  tail -20 "$tmp/purge.log"; bad "apt-get purge $pkg"
fi
check "dpkg -s: not installed" bash -c "! dpkg -s $pkg >/dev/null 2>&1"
left=$(while read -r p; do
         [ -z "$p" ] || [ "$p" = "/." ] && continue
         if grep -qxF "$p" "$tmp/preexisting"; then
           [ -e "$p" ] || echo "gone (existed before): $p"
         elif [ -e "$p" ] || [ -L "$p" ]; then
           echo "left: $p"
         fi
       done < "$tmp/files")
check "nothing of dpkg -L $pkg is left ($(wc -l < "$tmp/files") paths)" test -z "$left"
[ -n "$left" ] && echo "$left" | head -20
check "no apache2-maintscript-helper state left for wsbridge" \
  bash -c '! ls /var/lib/apache2/module/*/wsbridge >/dev/null 2>&1'
snapshot > "$tmp/etc.after"
if diff -u "$tmp/etc.before" "$tmp/etc.after" > "$tmp/etc.diff"; then
  ok "/etc/apache2 exactly as before ($(wc -l < "$tmp/etc.before") entries, contents hashed)"
else
  head -30 "$tmp/etc.diff"; bad "/etc/apache2 exactly as before"
fi
installed_by_us=""
echo "test-deb took $(( $(date +%s) - t_start ))s"
finish
