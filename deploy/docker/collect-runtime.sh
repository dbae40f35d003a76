#!/bin/sh
# Collects what BINARY needs at run time into OUT_DIR, for the runtime image:
#   OUT_DIR/bin/BINARY       the binary, stripped
#   OUT_DIR/lib/*.so         shared libraries built by the project (e.g. libtrellis_proto.so)
#   OUT_DIR/packages.txt     Debian packages of every other library it links, one a line
# Only direct DT_NEEDED entries (of the binary and of the project's libraries) are listed; apt
# installs the rest as their dependencies. Runs where the binary was built (the build stage).
#
#   collect-runtime.sh BINARY OUT_DIR
set -eu

binary=${1:-}
out=${2:-}
if [ -z "$binary" ] || [ -z "$out" ]; then
  echo "usage: collect-runtime.sh BINARY OUT_DIR" >&2
  exit 64
fi
[ -x "$binary" ] || { echo "collect-runtime.sh: $binary is not an executable" >&2; exit 1; }

# ldd resolves the whole closure at once: "soname => path (address)".
resolved=$(ldd "$binary")
if printf '%s\n' "$resolved" | grep -q 'not found'; then
  echo "collect-runtime.sh: unresolved libraries:" >&2
  printf '%s\n' "$resolved" | grep 'not found' >&2
  exit 1
fi

# "soname path package" for each direct dependency of the ELF file $1; package is "-" when no
# package ships the file (a library built by the project). dpkg knows a file by the path its
# package ships, with merged /usr either the /lib or the /usr/lib spelling of what ldd prints, so
# both are looked up; one grep over dpkg's file lists (what `dpkg-query -S` reads, but that rereads
# them for every file asked about, seconds each).
dependencies() {
  readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\].*/\1/p' > "$work/needed"
  printf '%s\n' "$resolved" | awk 'NR == FNR { needed[$1] = 1; next }
    $2 == "=>" && ($1 in needed) { print $1, $3 }' "$work/needed" - > "$work/paths"
  awk '{ print $2; if ($2 ~ /^\/usr\//) print substr($2, 5); else print "/usr" $2 }' \
    "$work/paths" > "$work/patterns"
  { grep -Fx -f "$work/patterns" /var/lib/dpkg/info/*.list || true; } > "$work/owners"
  # owners lines: /var/lib/dpkg/info/<package>[:arch].list:<file>
  awk 'NR == FNR {
         split($0, part, ".list:"); n = split(part[1], dirs, "/"); sub(/:.*/, "", dirs[n])
         owner[part[2]] = dirs[n]; next
       }
       {
         alias = ($2 ~ /^\/usr\//) ? substr($2, 5) : "/usr" $2
         package = ($2 in owner) ? owner[$2] : (alias in owner) ? owner[alias] : "-"
         print $1, $2, package
       }' "$work/owners" "$work/paths"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out/bin" "$out/lib"
: > "$work/packages"
# Work list in the positional parameters: the binary, then each project library found, whose own
# direct dependencies count too.
set -- "$binary"
while [ $# -gt 0 ]; do
  elf=$1
  shift
  dependencies "$elf" > "$work/dependencies"
  while read -r soname path package; do
    if [ "$package" != "-" ]; then
      echo "$package" >> "$work/packages"
    elif [ ! -e "$out/lib/$soname" ]; then
      cp -L "$path" "$out/lib/$soname"
      set -- "$@" "$path"
    fi
  done < "$work/dependencies"
done

cp "$binary" "$out/bin/"
for file in "$out/bin/"* "$out/lib/"*; do
  [ -f "$file" ] && strip --strip-unneeded "$file"
done
sort -u "$work/packages" > "$out/packages.txt"
echo "runtime packages: $(tr '\n' ' ' < "$out/packages.txt")"
echo "project libraries: $(cd "$out/lib" && echo *)"
