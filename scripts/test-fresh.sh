#!/usr/bin/env bash
# `make test-fresh`: proves that `make run` on a bare Debian 12 installs
# everything it needs by itself. As root:
#
#   1. bootstrap: mmdebstrap builds a minimal bookworm root (variant apt:
#      dpkg, apt, bash, coreutils; plus make, nothing else) from the archive
#      this machine's apt uses (/etc/apt/sources.list.d/debian.sources),
#   2. copy: the files git tracks, as they are in the working tree now, go to
#      /root/mod_wsbridge inside it (FRESH_SRC=head: the HEAD commit instead;
#      FRESH_SRC=all: also untracked files git does not ignore),
#   3. make run PORT=<free port> in a chroot (apt-get installs the deps,
#      the module is built, the private Apache starts),
#   4. curl from inside: / (the chat page) and /ws/status (JSON), both 200,
#   5. make stop.
#
# The chroot runs in its own mount and PID namespaces (unshare): /proc, /dev,
# /sys are mounted there only and vanish with it, and every process still in
# it when it ends (an Apache that did not stop) is killed by the kernel.
# mmdebstrap runs in a private mount namespace too. Afterwards the script
# checks that nothing is mounted under the root and no process runs in it,
# then deletes the root (KEEP=1 keeps it in build/fresh/root).
# Every phase has a time limit; the time of each is printed. Last line:
# "N passed, N failed"; the exit status is non-zero on any failure.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${BUILD:-build}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
work="$build/fresh"
r="$work/root"
sources=${FRESH_SOURCES:-/etc/apt/sources.list.d/debian.sources}
suite=bookworm
T_BOOTSTRAP=${T_BOOTSTRAP:-900}
T_RUN=${T_RUN:-2400}

passed=0 failed=0
ok()   { echo "ok   - $1"; passed=$((passed + 1)); }
bad()  { echo "FAIL - $1"; failed=$((failed + 1)); }
times=()
timed() { times+=("$(printf '%-34s %5ss' "$1" "$2")"); }
finish() {
  if [ ${#times[@]} -gt 0 ]; then echo "timings:"; printf '  %s\n' "${times[@]}"; fi
  echo "$passed passed, $failed failed"
  [ "$failed" = 0 ]; exit $?
}

[ "$(id -u)" = 0 ] || { echo "test-fresh builds a chroot: run it as root" >&2; bad "running as root"; finish; }
command -v mmdebstrap >/dev/null || { echo "mmdebstrap missing: scripts/install-deps.sh fresh" >&2; bad "mmdebstrap installed"; finish; }
[ -f "$sources" ] || { echo "no $sources (set FRESH_SOURCES to a .sources or .list file)" >&2; bad "apt sources"; finish; }

mounts_under() { awk -v p="$1" '$5 == p || index($5, p "/") == 1 {print $5}' /proc/self/mountinfo; }
procs_in() {   # pids whose root directory is the chroot
  local d pid; for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    [ "$(readlink "$d/root" 2>/dev/null)" = "$1" ] && echo "$pid"
  done
}
remove_root() {
  [ -d "$r" ] || return 0
  if [ -n "$(mounts_under "$r")" ]; then
    echo "still mounted under $r, not deleting it:" >&2; mounts_under "$r" >&2; return 1
  fi
  rm -rf --one-file-system "$r"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # The namespaces normally took everything with them; this is the net.
  local pids; pids=$(procs_in "$r")
  if [ -n "$pids" ]; then echo "cleanup: killing $pids (left in the chroot)" >&2; kill -9 $pids 2>/dev/null; fi
  local m; for m in $(mounts_under "$r" | sort -r); do umount -l "$m" 2>/dev/null; done
  [ -z "${KEEP:-}" ] && remove_root
  exit "$rc"
}
trap cleanup EXIT
trap 'bad "interrupted"; finish' INT TERM

# A root left by an earlier run (KEEP=1, or a killed run) is replaced.
if [ -d "$r" ]; then remove_root || { bad "old root $r could be removed"; finish; }; fi
mkdir -p "$work"

# ---- 1. bootstrap -------------------------------------------------------------
echo "bootstrapping Debian $suite into $r (log: $work/mmdebstrap.log)"
t0=$(date +%s)
if unshare --mount --propagation private timeout "$T_BOOTSTRAP" \
     mmdebstrap --mode=root --variant=apt --include=make "$suite" "$r" "$sources" \
     > "$work/mmdebstrap.log" 2>&1; then
  ok "mmdebstrap --variant=apt --include=make $suite"
else
  tail -20 "$work/mmdebstrap.log"; bad "mmdebstrap --variant=apt --include=make $suite"
  timed bootstrap $(( $(date +%s) - t0 )); finish
fi
timed "bootstrap (mmdebstrap)" $(( $(date +%s) - t0 ))
echo "  root: $(du -sh --one-file-system "$r" | cut -f1), $(chroot "$r" dpkg-query -W | wc -l) packages"
# Name resolution for apt inside (mmdebstrap leaves the root without it).
cp -L /etc/resolv.conf "$r/etc/resolv.conf"

# ---- 2. copy the tree ---------------------------------------------------------
t0=$(date +%s)
dest="$r/root/mod_wsbridge"
mkdir -p "$dest"
case "${FRESH_SRC:-tracked}" in
  head)    git archive HEAD | tar -xf - -C "$dest"; what="HEAD $(git rev-parse --short HEAD)" ;;
  all)     git ls-files -z --cached --others --exclude-standard |
             while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
             tar --null -T - -cf - | tar -xf - -C "$dest"; what="tracked + untracked files" ;;
  tracked) git ls-files -z |
             while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
             tar --null -T - -cf - | tar -xf - -C "$dest"; what="tracked files, working tree" ;;
  *) echo "FRESH_SRC is tracked, all or head" >&2; bad "FRESH_SRC"; finish ;;
esac
ok "copied the tree ($what, $(find "$dest" -type f | wc -l) files) to /root/mod_wsbridge"
timed "copy tree" $(( $(date +%s) - t0 ))

# ---- 3.-5. make run, curl, make stop, inside the chroot -----------------------
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$r/root/fresh-run.sh" <<'EOF'
#!/bin/bash
# Runs inside the fresh root. Prints "ok|FAIL - ..." and "time <phase> <s>".
set -u
port=$1 t_run=$2
cd /root/mod_wsbridge
stamp() { while IFS= read -r l; do printf '%(%s)T %s\n' -1 "$l"; done; }
t0=$(date +%s)
timeout "$t_run" make run PORT="$port" 2>&1 | stamp > /root/make-run.log
rc=${PIPESTATUS[0]}
t1=$(date +%s)
echo "time make-run $((t1 - t0))"
# Phases of make run from its output: deps until the first compile starts,
# build until the instance is started.
c=$(awk '/ -c .*\.cpp/ {print $1; exit}' /root/make-run.log)
[ -n "$c" ] && echo "time make-run:deps $((c - t0))" && echo "time make-run:build+start $((t1 - c))"
if [ "$rc" = 0 ]; then
  echo "ok   - make run PORT=$port"
else
  echo "FAIL - make run PORT=$port (exit $rc; last lines:)"; tail -25 /root/make-run.log | sed 's/^/    /'
  exit 0
fi
grep -h '^[0-9]* installing:' /root/make-run.log | cut -d' ' -f2- | sed 's/^/    /'
code=$(curl -sS -o /root/index.out -w '%{http_code}' --max-time 10 "http://127.0.0.1:$port/" 2>&1)
if [ "$code" = 200 ] && grep -q 'js/main.js' /root/index.out; then
  echo "ok   - GET / : 200, the chat page"
else
  echo "FAIL - GET / : $code, $(head -c 200 /root/index.out 2>/dev/null)"
fi
code=$(curl -sS -o /root/status.out -w '%{http_code}' --max-time 10 "http://127.0.0.1:$port/ws/status" 2>&1)
if [ "$code" = 200 ] && python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if isinstance(d, dict) else 1)' /root/status.out 2>/dev/null; then
  echo "ok   - GET /ws/status : 200, a JSON object ($(head -c 120 /root/status.out)...)"
else
  echo "FAIL - GET /ws/status : $code, $(head -c 200 /root/status.out 2>/dev/null)"
fi
t0=$(date +%s)
if timeout 60 make stop >/root/make-stop.log 2>&1 && ! pgrep -x apache2 >/dev/null; then
  echo "ok   - make stop (no apache2 left)"
else
  echo "FAIL - make stop: $(tail -3 /root/make-stop.log) $(pgrep -a apache2)"
fi
echo "time make-stop $(( $(date +%s) - t0 ))"
EOF
chmod 755 "$r/root/fresh-run.sh"

echo "make run PORT=$port inside the chroot (log: $r/root/make-run.log; up to ${T_RUN}s)"
# Own mount + PID namespace: mounts and leftover processes end with it.
# timeout and --kill-child bound the whole session.
timeout $((T_RUN + 180)) unshare --mount --propagation private --pid --fork --kill-child \
  /bin/bash -c '
    r=$1; shift
    mount -t proc proc "$r/proc" &&
    mount --rbind /dev "$r/dev" && mount --make-rslave "$r/dev" &&
    mount --rbind /sys "$r/sys" && mount --make-rslave "$r/sys" || exit 97
    chroot "$r" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      /root/fresh-run.sh "$@"
    rc=$?
    umount -R "$r/sys" "$r/dev" "$r/proc" 2>/dev/null
    exit $rc' _ "$r" "$port" "$T_RUN" > "$work/fresh-run.out" 2>&1
rc=$?
while IFS= read -r l; do
  case "$l" in
    "ok   - "*) ok "${l#ok   - }" ;;
    "FAIL - "*) bad "${l#FAIL - }" ;;
    "time make-run "*)  timed "make run (total)" "${l##* }" ;;
    "time make-run:deps "*) timed "  install deps (apt)" "${l##* }" ;;
    "time make-run:build+start "*) timed "  build module + start Apache" "${l##* }" ;;
    "time make-stop "*) timed "make stop" "${l##* }" ;;
    *) echo "$l" ;;
  esac
done < "$work/fresh-run.out"
[ "$rc" = 0 ] || bad "chroot session ended with exit $rc (124: time limit)"
cp "$r/root/make-run.log" "$work/make-run.log" 2>/dev/null

# ---- nothing left -------------------------------------------------------------
left=$(mounts_under "$r")
if [ -z "$left" ]; then ok "nothing mounted under the root"; else bad "still mounted: $left"; fi
left=$(procs_in "$r")
if [ -z "$left" ]; then ok "no process left in the root"; else bad "processes left in the root: $left"; fi
if [ -z "${KEEP:-}" ]; then
  t0=$(date +%s)
  if remove_root; then ok "root removed"; else bad "root removed"; fi
  timed "remove root" $(( $(date +%s) - t0 ))
else
  echo "kept: $r"
fi
finish
