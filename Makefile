# paysys — build, test, demo.
#
#   make            release executables in cgi-bin/ (osmp.cgi) and target/release/paysys
#   make test       every test (unit, integration against MariaDB); see README
#   make demo       a real check and pay end to end, with the answers and the log lines
#   make clean

CARGO ?= cargo
CGI    = cgi-bin/osmp.cgi

.PHONY: all build test demo clean

all: build

build:
	$(CARGO) build --release --locked --bins
	install -m 0755 target/release/osmp cgi-bin/osmp.cgi

test:
	PAYSYS_TEST_DB_URL="$$(scripts/mariadb.sh url)" $(CARGO) test --locked --all-targets

demo:
	scripts/demo.sh

clean:
	$(CARGO) clean
	rm -f $(CGI)
