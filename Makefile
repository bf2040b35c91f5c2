# paysys — build, test, demo, install.
#
#   make            release executables in cgi-bin/ (osmp.cgi) and target/release/paysys
#   make test       every test (unit, integration against MariaDB, end to end behind nginx
#                   and Apache), then a bounded fuzz run (FUZZ_SECONDS per target; 0 skips)
#   make demo       a real check and pay end to end, with the answers and the log lines
#   make install    build, then install into PREFIX (default /usr/local/paysys;
#                   PREFIX=/usr/abills drops into ABillS); DESTDIR=… stages for packagers
#   make uninstall  remove what `make install` put into PREFIX (keeps a changed config, logs)
#   make clean
#
# `make install-files` is `make install` without the build (OSMP_BIN and PAYSYS_BIN name
# the executables to copy). The work is done by scripts/install.sh; see INSTALL.

CARGO      ?= cargo
CGI         = cgi-bin/osmp.cgi
PREFIX      = /usr/local/paysys
DESTDIR    ?=
FUZZ_SECONDS ?= 60
OSMP_BIN   ?= target/release/osmp
PAYSYS_BIN ?= target/release/paysys

INSTALL_ENV = PREFIX="$(PREFIX)" DESTDIR="$(DESTDIR)" OSMP_BIN="$(OSMP_BIN)" PAYSYS_BIN="$(PAYSYS_BIN)"

.PHONY: all build test demo install install-files uninstall clean

all: build

build:
	$(CARGO) build --release --locked --bins
	install -m 0755 target/release/osmp cgi-bin/osmp.cgi

# Every test, then each fuzz target for FUZZ_SECONDS (0 skips fuzzing).
test:
	PAYSYS_TEST_DB_URL="$$(scripts/mariadb.sh url)" $(CARGO) test --locked --all-targets
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

clean:
	$(CARGO) clean
	rm -f $(CGI)
