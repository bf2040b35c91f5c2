#!/usr/bin/env bash
# Installs paysys into an install base, or removes what it installed. Run by
# `make install` / `make install-files` / `make uninstall`; see INSTALL, section 2.
#
#   scripts/install.sh install      copy the files (the executables must be built)
#   scripts/install.sh uninstall    remove exactly the files an install put there
#
# Environment (the Makefile passes its variables of the same names):
#   PREFIX      the install base, absolute (default /usr/local/paysys; ABillS: /usr/abills)
#   DESTDIR     staging root for packagers: files go to $DESTDIR$PREFIX, but every path
#               written into a file names $PREFIX
#   OSMP_BIN    the osmp executable to install as cgi-bin/osmp.cgi (default: what `make`
#               builds, target/<host>/release/osmp)
#   PAYSYS_CHECK_BIN  the paysys_check executable to install as cgi-bin/paysys_check.cgi
#               (target/<host>/release/paysys_check)
#   PAYSYS_BIN  the admin tool to install as bin/paysys (target/<host>/release/paysys)
#   RUNDIR      the directory of osmp.cgi's FastCGI socket in persistent mode, absolute,
#               written into the nginx and systemd files (default /run/paysys)
#
# Layout under PREFIX:
#   cgi-bin/osmp.cgi                 0755
#   cgi-bin/paysys_check.cgi         0755; an existing one that is not ours (ABillS's Perl
#                                      script) is kept as paysys_check.cgi.abills first, and
#                                      put back by uninstall
#   bin/paysys                       0755
#   etc/paysys.toml.example          0644, always replaced
#   etc/paysys.toml                  0640 root:www-data, only when it does not exist yet
#   etc/apache/paysys.conf           osmp.cgi as a CGI: Apache; nginx + fcgiwrap
#   etc/nginx/paysys.conf
#   etc/apache/paysys-fcgid.conf     osmp.cgi persistent (FastCGI): Apache mod_fcgid;
#   etc/nginx/paysys-fastcgi.conf      nginx + the systemd socket and service
#   etc/systemd/paysys-osmp.socket
#   etc/systemd/paysys-osmp.service
#   etc/systemd/paysys-check.socket  paysys_check.cgi persistent, the same way
#   etc/systemd/paysys-check.service
#   etc/systemd/paysys-sweep.service the card sweeper (paysys sweep), every minute
#   etc/systemd/paysys-sweep.timer
#   etc/systemd/paysys-statement.service  bank statements (paysys statement pull), every
#   etc/systemd/paysys-statement.timer    10 minutes
#   etc/systemd/paysys-requests-purge.service  the request history's old rows deleted
#   etc/systemd/paysys-requests-purge.timer    (paysys requests --purge), daily
#   etc/systemd/paysys-audit.service  the daily audit (paysys audit), every morning
#   etc/systemd/paysys-audit.timer
#   etc/logrotate.d/paysys           these thirteen with @PREFIX@ and @RUNDIR@ filled in, 0644,
#                                      always replaced: copy them into /etc, do not edit
#                                      them here
#   var/log/                         0750 www-data:adm (when root and www-data exists)
#   var/cache/                       0750 www-data:adm likewise: Monobank's webhook key,
#                                      fetched and cached when the config names none
#   sql/*.sql                        0644
#   share/paysys/installed-files     what was installed, one PREFIX-relative path a line
#
# Uninstall removes the files listed in the manifest (or, without one, the files an install
# from this tree would put there), except etc/paysys.toml when it differs from the example
# or was there before the install; it never touches var/log's contents, and removes a
# directory only when it is empty.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

PREFIX=${PREFIX:-/usr/local/paysys}
DESTDIR=${DESTDIR:-}
host=$(rustc -vV 2>/dev/null | sed -n 's/^host: //p') || true
release=target/${host:-$(uname -m)-unknown-linux-gnu}/release # the Makefile's static build
OSMP_BIN=${OSMP_BIN:-$release/osmp}
PAYSYS_BIN=${PAYSYS_BIN:-$release/paysys}
PAYSYS_CHECK_BIN=${PAYSYS_CHECK_BIN:-$release/paysys_check}
RUNDIR=${RUNDIR:-/run/paysys}

say() { printf 'install.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

case "$PREFIX" in
/*) ;;
*) die "PREFIX must be an absolute path, not '$PREFIX'" ;;
esac
PREFIX=${PREFIX%/}
[ -n "$PREFIX" ] || die "PREFIX=/ is not an install base"
case "$RUNDIR" in
/?*) ;;
*) die "RUNDIR must be an absolute path, not '$RUNDIR'" ;;
esac
RUNDIR=${RUNDIR%/}
root="$DESTDIR$PREFIX"
manifest_rel=share/paysys/installed-files
manifest="$root/$manifest_rel"

# The directories an install may create, deepest first (the order uninstall removes them in).
dirs=(cgi-bin bin etc/apache etc/nginx etc/logrotate.d etc/systemd etc sql share/paysys share var/log var/cache var)

# The web-server, logrotate and systemd files: source in this tree -> PREFIX-relative target.
snippets=(
    "etc/apache/paysys.conf:etc/apache/paysys.conf"
    "etc/apache/paysys-fcgid.conf:etc/apache/paysys-fcgid.conf"
    "etc/nginx/paysys.conf:etc/nginx/paysys.conf"
    "etc/nginx/paysys-fastcgi.conf:etc/nginx/paysys-fastcgi.conf"
    "etc/logrotate.d/paysys:etc/logrotate.d/paysys"
    "etc/systemd/paysys-osmp.socket:etc/systemd/paysys-osmp.socket"
    "etc/systemd/paysys-osmp.service:etc/systemd/paysys-osmp.service"
    "etc/systemd/paysys-check.socket:etc/systemd/paysys-check.socket"
    "etc/systemd/paysys-check.service:etc/systemd/paysys-check.service"
    "etc/systemd/paysys-sweep.service:etc/systemd/paysys-sweep.service"
    "etc/systemd/paysys-sweep.timer:etc/systemd/paysys-sweep.timer"
    "etc/systemd/paysys-statement.service:etc/systemd/paysys-statement.service"
    "etc/systemd/paysys-statement.timer:etc/systemd/paysys-statement.timer"
    "etc/systemd/paysys-requests-purge.service:etc/systemd/paysys-requests-purge.service"
    "etc/systemd/paysys-requests-purge.timer:etc/systemd/paysys-requests-purge.timer"
    "etc/systemd/paysys-audit.service:etc/systemd/paysys-audit.service"
    "etc/systemd/paysys-audit.timer:etc/systemd/paysys-audit.timer"
)

is_root() { [ "$(id -u)" = 0 ]; }
have_user() { getent passwd "$1" >/dev/null 2>&1; }
have_group() { getent group "$1" >/dev/null 2>&1; }

# Every file an install from this tree puts under PREFIX except etc/paysys.toml.
shipped_files() {
    echo cgi-bin/osmp.cgi
    echo cgi-bin/paysys_check.cgi
    echo bin/paysys
    echo etc/paysys.toml.example
    local s
    for s in "${snippets[@]}"; do echo "${s#*:}"; done
    for s in sql/*.sql; do echo "sql/${s##*/}"; done
}

do_install() {
    local f
    for f in "$OSMP_BIN" "$PAYSYS_CHECK_BIN" "$PAYSYS_BIN"; do
        [ -x "$f" ] || die "$f is missing: build first (make install does)"
    done
    say "installing into $root"
    local d
    install -d -m 0755 "$root"
    for d in "${dirs[@]}"; do
        [ "$d" = var/log ] || [ "$d" = var/cache ] || install -d -m 0755 "$root/$d"
    done

    install -m 0755 "$OSMP_BIN" "$root/cgi-bin/osmp.cgi"
    # Under an ABillS tree, cgi-bin/paysys_check.cgi is ABillS's own script: keep it, so
    # that going back is a rename (and uninstall puts it back). Ours is listed in the
    # manifest; anything else there is somebody else's.
    local check="$root/cgi-bin/paysys_check.cgi" backup="$root/cgi-bin/paysys_check.cgi.abills"
    if [ -e "$check" ] && ! { [ -f "$manifest" ] && grep -qx 'cgi-bin/paysys_check.cgi' "$manifest"; }; then
        if [ -e "$backup" ]; then
            die "$PREFIX/cgi-bin/paysys_check.cgi is not ours and $PREFIX/cgi-bin/paysys_check.cgi.abills exists already: move one of them away first"
        fi
        mv "$check" "$backup"
        say "kept the existing $PREFIX/cgi-bin/paysys_check.cgi as paysys_check.cgi.abills"
    fi
    install -m 0755 "$PAYSYS_CHECK_BIN" "$check"
    install -m 0755 "$PAYSYS_BIN" "$root/bin/paysys"
    install -m 0644 etc/paysys.toml.example "$root/etc/paysys.toml.example"

    # @PREFIX@ -> PREFIX, @RUNDIR@ -> RUNDIR (escaped for sed's replacement text).
    local repl rrepl s made_for
    repl=$(printf '%s' "$PREFIX" | sed -e 's/[\\|&]/\\&/g')
    rrepl=$(printf '%s' "$RUNDIR" | sed -e 's/[\\|&]/\\&/g')
    for s in "${snippets[@]}"; do
        made_for="PREFIX=$PREFIX"
        ! grep -q '@RUNDIR@' "${s%%:*}" || made_for="$made_for RUNDIR=$RUNDIR"
        {
            echo "# Written by paysys's make install for $made_for, and again by every"
            echo "# install: copy it into place (see INSTALL), do not edit it here."
            sed -e "s|@PREFIX@|$repl|g" -e "s|@RUNDIR@|$rrepl|g" "${s%%:*}"
        } >"$root/${s#*:}.tmp"
        chmod 0644 "$root/${s#*:}.tmp"
        mv -f "$root/${s#*:}.tmp" "$root/${s#*:}"
    done

    for s in sql/*.sql; do install -m 0644 "$s" "$root/sql/"; done

    # The config: never overwrite one. It holds the database password: 0640, group www-data.
    local new_config=
    if [ -e "$root/etc/paysys.toml" ] || [ -L "$root/etc/paysys.toml" ]; then
        say "kept the existing $PREFIX/etc/paysys.toml (the new example is paysys.toml.example)"
    else
        install -m 0640 etc/paysys.toml.example "$root/etc/paysys.toml"
        new_config=etc/paysys.toml
        if have_group www-data && is_root; then
            chgrp www-data "$root/etc/paysys.toml"
        else
            say "$PREFIX/etc/paysys.toml is 0640 and not group www-data (not root, or no such group):" \
                "chgrp it to the web server's group"
        fi
        say "wrote $PREFIX/etc/paysys.toml from the example: edit it, then $PREFIX/bin/paysys check-config"
    fi

    # The log directory and the cache (Monobank's webhook key), writable by the web
    # server's user only.
    install -d -m 0750 "$root/var/log" "$root/var/cache"
    if is_root && have_user www-data; then
        local group=www-data
        have_group adm && group=adm
        chown "www-data:$group" "$root/var/log" "$root/var/cache"
    else
        say "$PREFIX/var/log and var/cache must be writable by the web server's user: chown www-data them"
    fi

    # The manifest: this install's files plus what earlier installs listed (an earlier one
    # may have created etc/paysys.toml).
    {
        shipped_files
        [ -z "$new_config" ] || echo "$new_config"
        [ ! -f "$manifest" ] || cat "$manifest"
    } | sort -u >"$manifest.tmp"
    chmod 0644 "$manifest.tmp"
    mv -f "$manifest.tmp" "$manifest"
    say "done; the list of installed files is $PREFIX/$manifest_rel"
}

do_uninstall() {
    [ -d "$root" ] || { say "$root does not exist: nothing to remove"; return 0; }
    local list
    if [ -f "$manifest" ]; then
        list=$(cat "$manifest")
    else
        say "no $PREFIX/$manifest_rel: removing the files an install from this tree installs"
        list=$(shipped_files)
    fi
    say "removing paysys from $root"

    # The config goes only if it is an untouched copy of the example that we installed.
    local example="$root/etc/paysys.toml.example"
    [ -f "$example" ] || example=etc/paysys.toml.example
    local f
    while IFS= read -r f; do
        [ -n "$f" ] || continue
        case "$f" in
        /* | *..*) say "skipping a strange manifest entry: $f"; continue ;;
        etc/paysys.toml.example) continue ;; # removed last: the config is compared with it
        etc/paysys.toml)
            if [ -f "$root/$f" ] && ! cmp -s "$root/$f" "$example"; then
                say "kept $PREFIX/etc/paysys.toml: it differs from the example"
                continue
            fi
            ;;
        esac
        rm -f "$root/$f"
    done <<<"$list"
    rm -f "$root/etc/paysys.toml.example" "$manifest"
    # ABillS's own script, kept by the install: back in its place.
    if [ -e "$root/cgi-bin/paysys_check.cgi.abills" ] && [ ! -e "$root/cgi-bin/paysys_check.cgi" ]; then
        mv "$root/cgi-bin/paysys_check.cgi.abills" "$root/cgi-bin/paysys_check.cgi"
        say "put ABillS's paysys_check.cgi back in $PREFIX/cgi-bin"
    fi

    local d
    for d in "${dirs[@]}"; do
        [ -d "$root/$d" ] && rmdir "$root/$d" 2>/dev/null || true
    done
    rmdir "$root" 2>/dev/null || true
    if [ -d "$root" ]; then
        say "left in $root (not ours, or changed):"
        (cd "$root" && find . -mindepth 1 | sed -e 's|^\./|    |' | sort) >&2
    fi
}

case "${1:-}" in
install) do_install ;;
uninstall) do_uninstall ;;
*) echo "usage: $0 install|uninstall" >&2; exit 2 ;;
esac
