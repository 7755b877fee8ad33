#!/usr/bin/env bash
# build-debs.sh OUTDIR: build libmadvisev's Debian packages from debian/
# (libmadvisev0, libmadvisev-dev, madvisev-tools, their -dbgsym packages
# and the native source package madvisev) and check them with lintian.
#
# The build runs out of tree: the files git knows in this working tree
# (tracked ones as they are now, and untracked ones that are not ignored,
# so uncommitted changes are built) are copied into a temporary directory
# and dpkg-buildpackage -us -uc runs there.  It builds the source package
# too, not only the binaries (-b), so that lintian also checks debian/
# itself (copyright, control, rules).  The .deb, .dsc, .tar.xz, .buildinfo
# and .changes files are moved to OUTDIR (replacing earlier madvisev ones
# there), with the build's log as OUTDIR/build.log.  Then lintian checks
# the .changes, with info and pedantic tags shown, into OUTDIR/lintian.txt;
# the script fails if lintian reports an error (E:).  Nothing is written in
# the source tree.
#
# Needs the packages scripts/install-deps.sh installs (debhelper,
# dpkg-dev, lintian, and the Build-Depends of debian/control).
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
out=$(realpath -m -- "$1")
src=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
start=$(date +%s)
# OUTDIR in the tree must be one git ignores (build/debs, say): else the
# next build would copy this one's results into its source package.
case $out/ in
"$src"/*)
    if [ "$out" = "$src" ] || ! git -C "$src" check-ignore -q "${out#"$src"/}"; then
        echo "build-debs: $out is in the source tree and not ignored by git (try build/debs)" >&2
        exit 2
    fi ;;
esac
mkdir -p "$out"

for tool in dpkg-buildpackage dh lintian; do
    command -v "$tool" > /dev/null ||
        { echo "build-debs: $tool not found (scripts/install-deps.sh installs it)" >&2; exit 1; }
done

# A native package's version is the project's: the two must agree.
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
project_version=$(sed -n 's/^project(madvisev VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
if [ "$version" != "$project_version" ]; then
    echo "build-debs: debian/changelog says $version, CMakeLists.txt $project_version" >&2
    exit 1
fi

status_before=$(git -C "$src" status --porcelain)
if [ -n "$status_before" ]; then
    echo "build-debs: note: the working tree has uncommitted changes; they are built"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tree=$tmp/madvisev-$version
mkdir "$tree"
# Files deleted in the working tree but still tracked are left out.
(cd "$src" && git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do
        if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
    done |
    tar --null -T - -cf -) | tar -C "$tree" -xf -

echo "build-debs: dpkg-buildpackage in $tree (log: $out/build.log)"
if ! (cd "$tree" && dpkg-buildpackage -us -uc --jobs-try=auto) > "$out/build.log" 2>&1; then
    tail -n 40 "$out/build.log" >&2
    echo "build-debs: dpkg-buildpackage failed; the whole log is $out/build.log" >&2
    exit 1
fi

for pkg in madvisev libmadvisev0 libmadvisev0-dbgsym libmadvisev-dev madvisev-tools madvisev-tools-dbgsym; do
    rm -f "$out/${pkg}_"*
done
shopt -s nullglob
results=("$tmp"/*.deb "$tmp"/*.dsc "$tmp"/*.tar.* "$tmp"/*.buildinfo "$tmp"/*.changes)
shopt -u nullglob
mv "${results[@]}" "$out/"
changes=$out/madvisev_${version}_$(dpkg-architecture -qDEB_HOST_ARCH).changes
[ -f "$changes" ] || { echo "build-debs: no $changes" >&2; exit 1; }

# --fail-on error: exit status 2 for an error, 1 if lintian itself failed;
# warnings, info and pedantic tags are listed but do not fail, and so are
# the overridden ones (O:, with the override's comment).
# The tags (standard output) go to lintian.txt; lintian's own messages
# (standard error, such as its notice when run as root) to the terminal.
echo "build-debs: lintian (output: $out/lintian.txt)"
lintian_rc=0
lintian --fail-on error --display-info --pedantic --show-overrides --tag-display-limit 0 \
    --color never \
    "$changes" > "$out/lintian.txt" || lintian_rc=$?
cat "$out/lintian.txt"

if [ "$(git -C "$src" status --porcelain)" != "$status_before" ]; then
    echo "build-debs: the source tree changed during the build" >&2
    exit 1
fi
(cd "$out" && ls -1 -- *"_${version}"*)
echo "build-debs: done in $(( $(date +%s) - start )) s"
if [ "$lintian_rc" -ne 0 ] || grep -q '^E: ' "$out/lintian.txt"; then
    if [ "$lintian_rc" -eq 1 ]; then
        echo "build-debs: lintian failed to run" >&2
    else
        echo "build-debs: lintian reported errors (E:)" >&2
    fi
    exit 1
fi
