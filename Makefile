# paysys — build, test, demo, install.
#
#   make            release executables: cgi-bin/osmp.cgi, cgi-bin/paysys_check.cgi and
#                   target/<host>/release/paysys
#   make test       every test (unit, integration against MariaDB, end to end behind nginx
#                   and Apache), then a bounded fuzz run (FUZZ_SECONDS per target; 0 skips)
#   make demo       a real check and pay end to end, with the answers and the log lines
#   make install    build, then install into PREFIX (default /usr/local/paysys;
#                   PREFIX=/usr/abills drops into ABillS); DESTDIR=… stages for packagers
#   make uninstall  remove what `make install` put into PREFIX (keeps a changed config, logs)
#   make deb        build, then the Debian package target/debian/paysys_<version>-1_<arch>.deb
#                   (scripts/deb.sh, dpkg-deb; lintian checks it when installed)
#   make clean
#
# The release executables are static (static-pie, glibc linked in: no dynamic loader and no
# shared libraries to load per request, which makes a CGI's start markedly cheaper):
#   RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --bins --target <host>
# The explicit --target keeps RUSTFLAGS off build scripts and proc-macros; the executables
# land in target/<host>/release/ (<host>: from `rustc -vV`, e.g. x86_64-unknown-linux-gnu).
# `make STATIC=0` (also with install, demo) builds ordinary dynamically linked executables in
# target/release/ instead. `cargo test` and `make test` use cargo's own debug build.
#
# `make install-files` is `make install` without the build (OSMP_BIN, PAYSYS_CHECK_BIN and PAYSYS_BIN name
# the executables to copy; by default the ones `make` builds). The work is done by
# scripts/install.sh; see INSTALL.
#
# `make deb-files` is `make deb` without the build, from the same three executables (tests/deb.rs
# packages cargo's debug ones). DEB_OUT is where the package goes; DEB_REVISION,
# DEB_MAINTAINER, DEB_COMPRESS (xz) and LINTIAN=0 reach scripts/deb.sh from the command line
# or the environment; see INSTALL, section 18.

CARGO      ?= cargo
CGI         = cgi-bin/osmp.cgi
CHECK_CGI   = cgi-bin/paysys_check.cgi
PREFIX      = /usr/local/paysys
DESTDIR    ?=
FUZZ_SECONDS ?= 28
STATIC     ?= 1
# The host triple; without rustc (root running `make install-files` after a user's `make`)
# the usual one for this machine.
HOST       := $(or $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p'),$(shell uname -m)-unknown-linux-gnu)

ifeq ($(STATIC),0)
RELEASE     = target/release
BUILD       = $(CARGO) build --release --locked --bins
else
RELEASE     = target/$(HOST)/release
BUILD       = RUSTFLAGS="$(strip -C target-feature=+crt-static $(RUSTFLAGS))" \
              $(CARGO) build --release --locked --bins --target $(HOST)
endif
OSMP_BIN   ?= $(RELEASE)/osmp
PAYSYS_BIN ?= $(RELEASE)/paysys
PAYSYS_CHECK_BIN ?= $(RELEASE)/paysys_check
DEB_OUT    ?= target/debian

INSTALL_ENV = PREFIX="$(PREFIX)" DESTDIR="$(DESTDIR)" OSMP_BIN="$(OSMP_BIN)" PAYSYS_BIN="$(PAYSYS_BIN)" \
              PAYSYS_CHECK_BIN="$(PAYSYS_CHECK_BIN)"

.PHONY: all build test demo install install-files uninstall deb deb-files clean

all: build

build:
	$(BUILD)
	install -m 0755 $(RELEASE)/osmp $(CGI)
	install -m 0755 $(RELEASE)/paysys_check $(CHECK_CGI)

# Every test, then each fuzz target for FUZZ_SECONDS (0 skips fuzzing).
test:
	PAYSYS_TEST_DB_URL="$$(scripts/mariadb.sh url)" $(CARGO) test --locked --all-targets
	# ABillS's suites again, every pay offered to its stored procedure (sql/abills-pay.sql).
	PAYSYS_TEST_DB_URL="$$(scripts/mariadb.sh url)" PAYSYS_TEST_ABILLS_PROCEDURE=1 \
	    $(CARGO) test --locked --test abills --test abills_switch --test e2e_paysys_check \
	    --test card_callback --test card_sweep --test card_merchants --test statement \
	    --test requests --test audit --test terminal --test hooks
	@if [ "$(FUZZ_SECONDS)" -gt 0 ]; then fuzz/run.sh $(FUZZ_SECONDS); fi

demo:
	scripts/demo.sh

# Build first, then copy: a sub-make, so that `make -j install` cannot copy before building.
install: build
	@$(MAKE) --no-print-directory install-files

install-files:
	$(INSTALL_ENV) scripts/install.sh install

uninstall:
	$(INSTALL_ENV) scripts/install.sh uninstall

# Build first, then package (a sub-make, as for install).
deb: build
	@$(MAKE) --no-print-directory deb-files

deb-files:
	OSMP_BIN="$(OSMP_BIN)" PAYSYS_CHECK_BIN="$(PAYSYS_CHECK_BIN)" PAYSYS_BIN="$(PAYSYS_BIN)" \
	    DEB_OUT="$(DEB_OUT)" scripts/deb.sh

clean:
	$(CARGO) clean
	rm -f $(CGI) $(CHECK_CGI)
