#!/usr/bin/env bash
# `make deb`: builds build/deb/libapache2-mod-wsbridge_<VERSION>_<arch>.deb
# out of tree, then checks it with lintian.
#
# The sources the package needs (Makefile, VERSION, mod_wsbridge.cpp, src/,
# conf/, htdocs/, scripts/install-deps.sh, debian/, the docs) are copied
# from the working tree into build/deb/src: the files git tracks plus new
# ones it does not ignore, as they are on disk now, so a build sees exactly
# what `make module` sees. dpkg-buildpackage runs there and writes the .deb
# next to it; the checkout gets no debian/ build outputs.
#
# The package version is VERSION. When debian/changelog does not have an
# entry for it yet, the staged copy gets one (the checkout's changelog is not
# touched) and a note says so.
#
# Environment: BUILD (build), LINTIAN=0 skips lintian.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${BUILD:-build}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
out="$build/deb"
stage="$out/src"
pkg=libapache2-mod-wsbridge
version=$(tr -d '[:space:]' < VERSION)
arch=$(dpkg --print-architecture)
deb="$out/${pkg}_${version}_${arch}.deb"

paths=(Makefile VERSION mod_wsbridge.cpp src conf htdocs scripts/install-deps.sh debian README.md docs)

mkdir -p "$out"
rm -rf "$stage"
rm -f "$out"/*.deb "$out"/*.ddeb "$out"/*.changes "$out"/*.buildinfo
mkdir -p "$stage"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # Tracked + untracked-but-not-ignored, minus files deleted on disk.
  git -C "$root" ls-files -z --cached --others --exclude-standard -- "${paths[@]}" |
    while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
    tar --null -T - -cf - | tar -xf - -C "$stage"
else
  tar -cf - "${paths[@]}" | tar -xf - -C "$stage"
fi
# Build outputs of an in-tree dpkg-buildpackage must not leak into the stage.
rm -rf "$stage/debian/.debhelper" "$stage/debian/$pkg" "$stage/debian/wsb-build" \
       "$stage/debian/files" "$stage/debian/debhelper-build-stamp" "$stage"/debian/*.substvars

cl_version=$(dpkg-parsechangelog -l debian/changelog -S Version)
if [ "$cl_version" != "$version" ]; then
  echo "note: debian/changelog's newest entry is $cl_version, VERSION is $version:" \
       "the package gets an automatic entry (add a real one to debian/changelog)" >&2
  maint=$(sed -n 's/^Maintainer: //p' debian/control)
  when=$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)
  { printf '%s (%s) unstable; urgency=medium\n\n' "$pkg" "$version"
    printf '  * Upstream version %s (automatic entry made by make deb).\n\n' "$version"
    printf ' -- %s  %s\n\n' "$maint" "$(LC_ALL=C date -u -R -d "@$when")"
    cat debian/changelog; } > "$stage/debian/changelog"
fi

echo "building $deb (log: $out/build.log)"
t0=$(date +%s)
if ! (cd "$stage" && dpkg-buildpackage -b -us -uc) > "$out/build.log" 2>&1; then
  tail -40 "$out/build.log" >&2
  echo "dpkg-buildpackage failed; full log: $out/build.log" >&2
  exit 1
fi
[ -f "$deb" ] || { echo "dpkg-buildpackage did not make $deb" >&2; exit 1; }
echo "built $deb in $(( $(date +%s) - t0 ))s"
dpkg-deb -I "$deb" | sed -n '/Package:/,$p' | grep -E '^ (Package|Version|Architecture|Depends|Breaks):'

if [ "${LINTIAN:-1}" != 0 ]; then
  echo "lintian $deb"
  # Fails on errors and warnings; info/pedantic tags are shown, not fatal.
  lintian --fail-on error,warning --display-info "$deb" 2> >(grep -v "running with root privileges" >&2)
  echo "lintian: no errors, no warnings"
fi
