# Bedside developer commands. The README's two commands are `make simulate` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages the tests use (installed when missing; CI runs as root).
# gcc, libc6-dev: the storage-fault shim (tools/faultfs.c); e2fsprogs: ext4 for the journal's torture and benchmark.
# socat, picocom: the serial link's tests (two ptys joined back to back; a terminal program typing).
# strace: the shipped unit's syncs and writes per file, counted from outside (benchmarks/shipped.py).
# sysbench: the single-core CPU figure the Pi Zero 2 W estimate is checked against (benchmarks/scaling.py).
# nodejs (its npm with it): the real FHIR engine the FHIR tests post to (tests/fhir_engine, installed with npm ci).
# dosfstools, fusefat, fuse3: real FAT sticks in user space; udev: `udevadm test` of the stick rule; mount, util-linux: loop devices, setpriv.
# libreoffice-calc-nogui: every CSV opened in a real spreadsheet; pipx: the laptop install exactly as docs/install.md gives it.
APT_PACKAGES := sysbench chromium libreoffice-calc-nogui pipx poppler-utils fonts-dejavu-core systemd shellcheck gcc libc6-dev e2fsprogs socat picocom strace \
	dosfstools fusefat fuse3 udev mount util-linux nodejs
# `make vm-test` only (not `make test`): QEMU, debootstrap and the tools that make and read
# the guest's disks (tools/vm_test.py, docs/install.md "What the VM proves").
VM_APT_PACKAGES := qemu-system-x86 qemu-utils debootstrap e2fsprogs dosfstools mtools util-linux socat

.PHONY: fhir-engine simulate test lint typecheck setup apt vm-apt vm-test bench clean help gallery golden install arm64-smoke bench-journal torture tamper fuzz fuzz-serial

help:
	@echo "make simulate   set up and run the unit on simulated hardware (interactive, in this terminal)"
	@echo "make test       set up and run every check: lint, types and the test suite"
	@echo "make bench      run the benchmarks and write docs/performance.md"
	@echo "make gallery    draw every screen into docs/gallery and the README"
	@echo "make golden     also rewrite the golden images the screen tests compare with (look before committing)"
	@echo "make install    on a Raspberry Pi: install the unit (docs/install.md; ARGS=--rtc etc.)"
	@echo "make arm64-smoke  install, smoke-test and run a simulated day on arm64 Debian Bookworm under qemu (slow, root)"
	@echo "make vm-test    the unit as installed on Debian Bookworm under QEMU: install, systemd, gpio-sim, serial, power cuts (root; ~10-11 min cached, ~18 cold, on 2 quiet cores)"
	@echo "make torture    kill -9 the daemon 1000 times, every storage fault, 1000 damaged data directories, 1000 tamperings (about 45 min, root)"
	@echo "make fhir-engine  install the FHIR engine the FHIR tests post to (npm ci; make test does it)"
	@echo "make fuzz       every property test and hostile-file fuzzer with fresh random examples, twenty times as many (long)"
	@echo "make fuzz-serial  the serial link's long fuzz and property run (FUZZ_SECONDS=600 by default)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# The real FHIR engine the FHIR tests post to (tests/fhir_engine: Medplum's FHIR router in memory),
# installed from the npm registry exactly as its lock file says; node_modules is not committed.
ENGINE := tests/fhir_engine
ENGINE_STAMP := $(ENGINE)/node_modules/.installed
$(ENGINE_STAMP): $(ENGINE)/package.json $(ENGINE)/package-lock.json
	cd $(ENGINE) && npm ci --no-audit --no-fund --loglevel=error
	touch $(ENGINE_STAMP)

fhir-engine: $(ENGINE_STAMP)

# A fresh simulated unit each time, starting two minutes before the 07:00 prompt today.
# Keys: space = press, h = hold (snooze), n = nurse screen, + / - = speed, q = quit.
simulate: $(STAMP)
	rm -rf var/sim
	$(BIN)/bedside simulate --data var/sim --start "$$(date +%Y-%m-%d)T06:58:00" $(ARGS)

# Installs only what is missing; serialised with flock so parallel checkouts do not fight over dpkg's lock.
apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		echo "Installing Debian packages the tests use:$$missing"; \
		$$sudo flock /tmp/bedside-apt.lock sh -c "apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 $$missing >/dev/null"; \
	fi

# The same, for `make vm-test`'s list.
vm-apt:
	@$(MAKE) --no-print-directory apt APT_PACKAGES="$(VM_APT_PACKAGES)"

# The unit as installed, on a real kernel, systemd and block device: builds (once, cached in
# var/vm/) a Debian Bookworm image with Debian's kernel, boots it under QEMU and runs the
# scenarios; one line each and an `N passed, N failed` summary. docs/install.md says what it proves.
vm-test: vm-apt $(STAMP)
	nice $(BIN)/python tools/vm_test.py $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check device tests benchmarks tools

typecheck: $(STAMP)
	$(BIN)/mypy

# The suite on two workers (pytest-xdist; each test file stays on one worker, so a file's
# fixtures are made once), then the few tests that count wake-ups or pings over real time
# (marked serial) alone, so a busy neighbour cannot disturb them. `.venv/bin/pytest` alone
# runs everything in one process, in order.
TEST_WORKERS ?= 2
test: apt $(STAMP) $(ENGINE_STAMP) lint typecheck
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile -m 'not slow and not serial'
	$(BIN)/pytest -q -m 'serial and not slow'

bench: apt $(STAMP)
	$(BIN)/python benchmarks/outside.py
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/download.py
	$(BIN)/python benchmarks/stick.py
	$(BIN)/python benchmarks/display.py
	$(BIN)/python benchmarks/scaling.py
	$(BIN)/python benchmarks/ward.py
	$(BIN)/python benchmarks/realtime.py
	$(BIN)/python benchmarks/hostile.py

# Every screen, drawn by the unit's own renderer, into docs/gallery/, docs/screens.md and the README.
gallery: $(STAMP)
	$(BIN)/python tools/gallery.py

golden: $(STAMP)
	$(BIN)/python tools/gallery.py --golden

# The journal's costs on a loop ext4 and a year's verification (root, a C compiler): docs/performance.md.
bench-journal: apt $(STAMP)
	$(BIN)/python benchmarks/journal.py

# The long proofs of the journal (docs/journal.md, "Proof"); the test suite runs short versions.
torture: apt $(STAMP)
	$(BIN)/python tools/torture.py kill --count 1000
	$(BIN)/python tools/torture.py faults
	$(BIN)/python tools/torture.py damage --count 1000
	$(BIN)/python tools/tamper.py --count 1000

tamper: $(STAMP)
	$(BIN)/python tools/tamper.py --count 1000

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis

# On the Raspberry Pi itself, as root: see docs/install.md for ARGS (--rtc, --gadget-serial, --apply-boot-config).
install:
	tools/install.sh $(ARGS)

# Not part of `make test`: debootstraps arm64 Bookworm and runs the install, a test subset and one
# simulated day with the installed service's settings under qemu.
arm64-smoke:
	tools/arm64-smoke.sh
# The random exploration: the default test run draws the same examples every time (the "ci"
# hypothesis profile); this runs every property test (`-m hypothesis`) with fresh random
# examples and many more of them, the structure-aware fuzzers of hostile segments, WALs,
# reserves, answer frames, exports, ward stick files and key files among them (docs/journal.md,
# "Hostile files"; docs/stick.md, "Hostile sticks"). A
# failure prints the example and a blob to reproduce it.
fuzz: apt $(STAMP)
	HYPOTHESIS_PROFILE=long $(BIN)/pytest -q -m hypothesis

# The serial link's long run: random bytes, long lines and damaged frames into the unit's
# link for FUZZ_SECONDS (default ten minutes), then the link's property tests with twenty
# times their usual examples (a bad cable: dropped, flipped, duplicated bytes, unplugging).
fuzz-serial: apt $(STAMP)
	FUZZ_SECONDS=$${FUZZ_SECONDS:-600} $(BIN)/pytest -q -s -m slow tests/link/test_link_fuzz.py
	HYPOTHESIS_PROFILE=long $(BIN)/pytest -q tests/link/test_link_fuzz.py tests/link/test_protocol.py tests/link/test_access.py \
		tests/link/test_link_properties.py
