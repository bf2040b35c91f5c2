#!/usr/bin/env bash
# Builds the Debian package paysys_<version>-<revision>_<arch>.deb from executables already
# built, with dpkg-deb. Run by `make deb` (after the release build) and `make deb-files`
# (without it, like install-files); see INSTALL, section 18.
#
# Environment (the Makefile passes its variables of the same names):
#   OSMP_BIN, PAYSYS_CHECK_BIN, PAYSYS_BIN
#               the executables to package (default: what `make` builds); they are
#               stripped on the way in, and `paysys` is run for the man pages
#   DEB_OUT     the directory the .deb is written to (default target/debian)
#   DEB_REVISION  the Debian revision (default 1): version <Cargo.toml's>-<revision>
#   DEB_MAINTAINER  the Maintainer field (default "paysys maintainers <dev@paysys.invalid>":
#               set your own for packages you hand out)
#   DEB_COMPRESS  dpkg-deb's compressor: xz (default), gzip or zstd (lintian refuses none)
#   DEB_COMPRESS_LEVEL  its level, 0-9 (default: dpkg-deb's)
#   LINTIAN     1 (default): run lintian on the package when it is installed, and fail on
#               any error it reports; 0: do not
#   SOURCE_DATE_EPOCH  the date of the changelog entry, the man pages and the files in the
#               package (default: the last commit's, else now)
#
# The layout: /usr/lib/paysys is an install base as `make install PREFIX=/usr/lib/paysys`
# lays it out (cgi-bin/, bin/), except that its etc, var/log, var/cache and sql are links to
# /etc/paysys, /var/log/paysys, /var/cache/paysys and /usr/share/paysys/sql. So the
# executables find /etc/paysys/paysys.toml as ../etc/paysys.toml, and the config's relative
# paths (log.file = "var/log/paysys_check.log") land in the FHS places, with no path built
# into the executables: the package is made from any build, debug ones too.
#   /usr/lib/cgi-bin/{osmp,paysys_check}.cgi   links to /usr/lib/paysys/cgi-bin/
#   /usr/bin/paysys                            link to /usr/lib/paysys/bin/paysys
#   /etc/paysys/paysys.toml, /etc/logrotate.d/paysys   conffiles; paysys.d/ for overlays
#   /usr/lib/systemd/system/paysys-*           every etc/systemd/*.{service,socket,timer}
#   /usr/share/doc/paysys/examples/            the nginx and Apache files, the config example
#   /usr/share/man/man1/paysys*.1.gz           from the --help texts (scripts/manpages.sh)
# The maintainer scripts are pkg/deb/{postinst,prerm,postrm}; the control file and the
# copyright are pkg/deb/control.in and pkg/deb/copyright.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
umask 022

host=$(rustc -vV 2>/dev/null | sed -n 's/^host: //p') || true
release=target/${host:-$(uname -m)-unknown-linux-gnu}/release # the Makefile's static build
OSMP_BIN=${OSMP_BIN:-$release/osmp}
PAYSYS_BIN=${PAYSYS_BIN:-$release/paysys}
PAYSYS_CHECK_BIN=${PAYSYS_CHECK_BIN:-$release/paysys_check}
DEB_OUT=${DEB_OUT:-target/debian}
DEB_REVISION=${DEB_REVISION:-1}
DEB_MAINTAINER=${DEB_MAINTAINER:-paysys maintainers <dev@paysys.invalid>}
DEB_COMPRESS=${DEB_COMPRESS:-xz}
DEB_COMPRESS_LEVEL=${DEB_COMPRESS_LEVEL:-}
LINTIAN=${LINTIAN:-1}

say() { printf 'deb.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

base=/usr/lib/paysys
for tool in dpkg-deb dpkg strip readelf gzip md5sum; do
    command -v "$tool" >/dev/null || die "$tool is needed (Debian: dpkg, binutils, gzip, coreutils)"
done
for f in "$OSMP_BIN" "$PAYSYS_CHECK_BIN" "$PAYSYS_BIN"; do
    [ -x "$f" ] || die "$f is missing: build first (make deb does)"
done
case "$DEB_REVISION" in
'' | *[!0-9A-Za-z.+~]*) die "DEB_REVISION must be letters, digits and . + ~, not '$DEB_REVISION'" ;;
esac

upstream=$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml)
[ -n "$upstream" ] || die "no version in Cargo.toml's [package]"
version="$upstream-$DEB_REVISION"
arch=$(dpkg --print-architecture)
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null) || SOURCE_DATE_EPOCH=$(date +%s)
fi
export SOURCE_DATE_EPOCH

mkdir -p "$DEB_OUT"
deb="$DEB_OUT/paysys_${version}_${arch}.deb"
stage=$(mktemp -d "$DEB_OUT/.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root="$stage/root"
mkdir -m 0755 "$root"

# The web-server, logrotate and systemd files name the install base as @PREFIX@ and the
# socket directory as @RUNDIR@. The package's: the log and the cache by their real
# directories (logrotate and systemd's ReadWritePaths want those), the CGIs where Debian's
# web servers look, the rest (the config: /usr/lib/paysys/etc/paysys.toml) under the base.
fill() {
    sed -e "s|@PREFIX@/var/log|/var/log/paysys|g" \
        -e "s|@PREFIX@/var/cache|/var/cache/paysys|g" \
        -e "s|@PREFIX@\\\$fastcgi_script_name|/usr/lib\$fastcgi_script_name|g" \
        -e "s|@PREFIX@/cgi-bin|/usr/lib/cgi-bin|g" \
        -e "s|@PREFIX@|$base|g" \
        -e "s|@RUNDIR@|/run/paysys|g" "$@"
}
# A file must have come out with a line: a check that the snippets still look as fill()
# and the nginx narrowing below expect.
expect() {
    grep -qF -- "$2" "$1" || die "packaged ${1#"$root"} lacks '$2': scripts/deb.sh no longer fits the file it came from"
}

# Executables, stripped of their symbols as debhelper's dh_strip does.
install -d "$root$base/cgi-bin" "$root$base/bin" "$root$base/var"
install -m 0755 "$OSMP_BIN" "$root$base/cgi-bin/osmp.cgi"
install -m 0755 "$PAYSYS_CHECK_BIN" "$root$base/cgi-bin/paysys_check.cgi"
install -m 0755 "$PAYSYS_BIN" "$root$base/bin/paysys"
for f in "$root$base/cgi-bin/osmp.cgi" "$root$base/cgi-bin/paysys_check.cgi" "$root$base/bin/paysys"; do
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$f"
done
ln -s /etc/paysys "$root$base/etc"
ln -s /var/log/paysys "$root$base/var/log"
ln -s /var/cache/paysys "$root$base/var/cache"
ln -s ../../share/paysys/sql "$root$base/sql"
install -d "$root/usr/lib/cgi-bin" "$root/usr/bin"
ln -s ../paysys/cgi-bin/osmp.cgi "$root/usr/lib/cgi-bin/osmp.cgi"
ln -s ../paysys/cgi-bin/paysys_check.cgi "$root/usr/lib/cgi-bin/paysys_check.cgi"
ln -s ../lib/paysys/bin/paysys "$root/usr/bin/paysys"

# The config: the example, 0640 (root:www-data by postinst's stat override).
install -d "$root/etc/paysys/paysys.d"
{
    echo "# /etc/paysys/paysys.toml, from the paysys Debian package (INSTALL, section 18)."
    echo "# The executables read it as $base/etc/paysys.toml ($base/etc is a link to"
    echo "# /etc/paysys), so relative paths below hang off $base, whose var/log and var/cache"
    echo "# are links to /var/log/paysys and /var/cache/paysys. Set [database] url, then"
    echo "#     paysys check-config && paysys check-db"
    echo "# Local changes may also go in /etc/paysys/paysys.d/*.toml. The whole example stays in"
    echo "# /usr/share/doc/paysys/examples/paysys.toml.example."
    echo "#"
    cat etc/paysys.toml.example
} >"$root/etc/paysys/paysys.toml"
chmod 0640 "$root/etc/paysys/paysys.toml"

install -d "$root/etc/logrotate.d"
{
    echo "# From the paysys Debian package: /var/log/paysys/ is the log directory of $base."
    fill etc/logrotate.d/paysys
} >"$root/etc/logrotate.d/paysys"
expect "$root/etc/logrotate.d/paysys" "/var/log/paysys/paysys_check.log {"

# Every systemd unit the tree has: a unit added to etc/systemd/ is packaged with the rest.
units=()
install -d "$root/usr/lib/systemd/system"
for f in etc/systemd/*.service etc/systemd/*.socket etc/systemd/*.timer; do
    [ -e "$f" ] || continue
    name=${f##*/}
    units+=("$name")
    {
        echo "# From the paysys Debian package: installed, not enabled. Enable it (or its .socket"
        echo "# or .timer) with systemctl enable --now UNIT; the install steps below are for"
        echo "# make install. See INSTALL, section 18."
        fill "$f"
    } >"$root/usr/lib/systemd/system/$name"
done
[ "${#units[@]}" -gt 0 ] || die "no systemd units in etc/systemd/"

# The web-server files, as examples. Under /usr/lib/cgi-bin other packages' CGIs may lie:
# the nginx locations are narrowed to paysys's two (in a PREFIX's own cgi-bin/ every *.cgi
# is paysys's).
ex="$root/usr/share/doc/paysys/examples"
install -d "$ex/nginx" "$ex/apache"
for f in etc/nginx/*.conf etc/apache/*.conf; do
    kind=${f#etc/}
    kind=${kind%%/*}
    {
        echo "# From the paysys Debian package: etc/$kind/${f##*/} with the package's paths filled"
        echo "# in (the CGIs in /usr/lib/cgi-bin, the config $base/etc/paysys.toml, that is"
        echo "# /etc/paysys/paysys.toml). Copy it into place (INSTALL, sections 5 and 17)."
        fill "$f" | sed \
            -e 's#^location ~ \^/cgi-bin/\[^/]+\\\.cgi(/|\$) {$#location ~ ^/cgi-bin/(osmp|paysys_check)\\.cgi(/|$) {#' \
            -e 's#fastcgi_split_path_info \^(/cgi-bin/\[^/]+\\\.cgi)#fastcgi_split_path_info ^(/cgi-bin/(?:osmp|paysys_check)\\.cgi)#'
    } >"$ex/$kind/${f##*/}"
    chmod 0644 "$ex/$kind/${f##*/}"
done
for f in "$ex"/nginx/*.conf; do
    expect "$f" 'location ~ ^/cgi-bin/(osmp|paysys_check)\.cgi(/|$) {'
    expect "$f" 'fastcgi_param SCRIPT_FILENAME /usr/lib$fastcgi_script_name;'
    ! grep -qF '[^/]+\.cgi' "$f" || die "${f#"$root"} still serves every CGI in /usr/lib/cgi-bin"
done
expect "$ex/apache/paysys.conf" 'ScriptAlias /cgi-bin/ "/usr/lib/cgi-bin/"'
install -m 0644 etc/paysys.toml.example "$ex/paysys.toml.example"
for f in "$root/etc/logrotate.d/paysys" "$root"/usr/lib/systemd/system/* "$ex"/*/*; do
    ! grep -q '@PREFIX@\|@RUNDIR@' "$f" || die "${f#"$root"} still has a placeholder"
done

# SQL: our table, the grants, the fixtures (INSTALL, section 3).
install -d "$root/usr/share/paysys/sql"
install -m 0644 sql/*.sql "$root/usr/share/paysys/sql/"

# Documentation: copyright, changelog, README and INSTALL.
doc="$root/usr/share/doc/paysys"
install -m 0644 pkg/deb/copyright "$doc/copyright"
date_r=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
{
    echo "paysys ($version) unstable; urgency=medium"
    echo
    echo "  * Built from the paysys source tree by make deb; the changes are in its"
    echo "    git history."
    echo
    echo " -- $DEB_MAINTAINER  $date_r"
} | gzip -9n >"$doc/changelog.Debian.gz"
gzip -9nc README.md >"$doc/README.md.gz"
gzip -9nc INSTALL >"$doc/INSTALL.gz"
chmod 0644 "$doc"/*.gz

# Man pages from the packaged paysys's own --help texts.
PAYSYS_VERSION=$upstream scripts/manpages.sh "$root$base/bin/paysys" "$stage/man" "$(
    printf '%s\n' \
        '.TP' '.I /etc/paysys/paysys.toml' \
        "the config, read as $base/etc/paysys.toml (a link to /etc/paysys)" \
        '.TP' '.I /etc/paysys/paysys.d/*.toml' 'local overlays, read after it in name order' \
        '.TP' '.I /var/log/paysys/paysys_check.log' 'the log: one line per request' \
        '.TP' '.I /usr/lib/cgi-bin/osmp.cgi, /usr/lib/cgi-bin/paysys_check.cgi' \
        'the endpoints' \
        '.TP' '.I /usr/share/doc/paysys/' 'INSTALL, README and the nginx and Apache examples'
)"
install -d "$root/usr/share/man/man1"
for f in "$stage"/man/*.1; do
    gzip -9nc "$f" >"$root/usr/share/man/man1/${f##*/}.gz"
done
chmod 0644 "$root"/usr/share/man/man1/*.gz

# Control files.
install -d -m 0755 "$root/DEBIAN"
depends=
dynamic=()
for f in "$root$base/cgi-bin/osmp.cgi" "$root$base/cgi-bin/paysys_check.cgi" "$root$base/bin/paysys"; do
    case "$(readelf -d "$f" 2>/dev/null)" in
    *'(NEEDED)'*) dynamic+=("$f") ;;
    esac
done
if [ "${#dynamic[@]}" -gt 0 ]; then
    # Dynamically linked (make STATIC=0, or cargo's debug build): the libraries' packages,
    # as dpkg-shlibdeps finds them (it wants a debian/control to read).
    command -v dpkg-shlibdeps >/dev/null ||
        die "dynamically linked executables need dpkg-shlibdeps (apt-get install dpkg-dev), or build them static (make deb)"
    mkdir -p "$stage/src/debian"
    printf 'Source: paysys\n\nPackage: paysys\nArchitecture: any\n' >"$stage/src/debian/control"
    depends=$(cd "$stage/src" && dpkg-shlibdeps -O "${dynamic[@]}" | sed -n 's/^shlibs:Depends=//p')
fi
# Installed-Size as dpkg-gencontrol counts it: KiB per file, rounded up, 1 per other entry.
size=$(cd "$root" && find . -path ./DEBIAN -prune -o -mindepth 1 -printf '%y %s\n' |
    awk '$1 == "f" { s += int(($2 + 1023) / 1024); next } { s += 1 } END { print s }')
control=$(<pkg/deb/control.in)
control=${control//@VERSION@/$version}
control=${control//@ARCH@/$arch}
control=${control//@MAINTAINER@/$DEB_MAINTAINER}
control=${control//@SIZE@/$size}
control=${control//@DEPENDS@/${depends:+Depends: $depends
}}
printf '%s\n' "$control" >"$root/DEBIAN/control"
printf '%s\n' /etc/logrotate.d/paysys /etc/paysys/paysys.toml >"$root/DEBIAN/conffiles"
for s in postinst prerm postrm; do
    sed -e "s|@UNITS@|${units[*]}|g" "pkg/deb/$s" >"$root/DEBIAN/$s"
    chmod 0755 "$root/DEBIAN/$s"
done
# md5sums of every file but the conffiles (dpkg keeps theirs itself), as dh_md5sums writes.
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort |
    grep -vxF -e etc/logrotate.d/paysys -e etc/paysys/paysys.toml |
    xargs -d '\n' md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root"/DEBIAN/control "$root"/DEBIAN/conffiles "$root"/DEBIAN/md5sums

rm -f "$deb"
dpkg-deb --root-owner-group -Z"$DEB_COMPRESS" ${DEB_COMPRESS_LEVEL:+-z"$DEB_COMPRESS_LEVEL"} \
    --build "$root" "$deb" >/dev/null
say "built $deb"

if [ "$LINTIAN" != 0 ]; then
    if command -v lintian >/dev/null; then
        # Errors fail the build; warnings and notes are printed (INSTALL lists the known ones).
        lintian --fail-on error "$deb" || die "lintian reports errors in $deb"
        say "lintian: no errors"
    else
        say "lintian is not installed: not checked (apt-get install lintian)"
    fi
fi
echo "$deb"
