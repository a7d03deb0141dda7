#!/usr/bin/env bash
# Proves the package installs and a smoke subset of its tests passes on 64-bit ARM Debian
# Bookworm with Python 3.11 (what a Pi 3/4/5 or Zero 2 W runs), without a Pi: debootstrap an
# arm64 root, run it under qemu-user-static, install with tools/install.sh as on a unit, then
# run the tests against the installed package, then one simulated day as the service would
# run it (its user, environment and config). Slow (tens of minutes); `make arm64-smoke`.
# Needs root and Debian's debootstrap and qemu-user-static (installed when missing).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
WORK=${ARM64_WORK:-$SRC/var/arm64}
SUITE=bookworm
# Kept small: qemu runs Python about 5-10 times slower than the host.
SMOKE_TESTS=(
    tests/core/test_config.py
    tests/journal/test_journal.py
    tests/unit/test_hardware.py
    tests/unit/test_sdnotify.py
    tests/unit/test_faults.py
    tests/unit/test_install.py
    "tests/cli/test_cli.py::test_run_off_a_pi_explains_how_to_simulate"
    "tests/cli/test_cli.py::test_config_check_accepts_the_shipped_files"
    tests/core/test_machine.py
)

say() { printf '\n== %s\n' "$*"; }
die() { printf 'arm64-smoke: %s\n' "$*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "run as root (debootstrap and chroot need it): sudo make arm64-smoke"
start=$(date +%s)

missing=""
command -v debootstrap >/dev/null || missing="$missing debootstrap"
[ -x /usr/bin/qemu-aarch64-static ] || missing="$missing qemu-user-static"
if [ -n "$missing" ]; then
    say "installing$missing"
    flock /tmp/bedside-apt.lock sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$missing"
fi

# Let the kernel run arm64 binaries through qemu (the F flag opens the emulator now, so it
# works inside the chroot too).
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    grep -v '^#' /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register
fi

# The same Debian mirror this machine's apt uses.
mirror=${MIRROR:-$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)}
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || die "cannot tell which Debian mirror to use; set MIRROR=..."

mkdir -p "$WORK"
base=$WORK/base-$SUITE-arm64.tar
if [ ! -f "$base" ]; then
    say "debootstrap $SUITE arm64 (once; kept in $base)"
    rm -rf "$WORK/base"
    debootstrap --arch=arm64 --variant=minbase \
        --include=python3,python3-venv,python3-pip,systemd,passwd,ca-certificates \
        "$SUITE" "$WORK/base" "$mirror"
    tar -C "$WORK/base" -cf "$base" .
    rm -rf "$WORK/base"
fi

root=$WORK/root
cleanup() {
    for m in dev/pts dev proc sys; do
        if mountpoint -q "$root/$m"; then umount -l "$root/$m"; fi
    done
}
trap cleanup EXIT
cleanup
rm -rf "$root"
mkdir -p "$root"
say "a fresh arm64 root from $base"
tar -C "$root" -xf "$base"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount -t sysfs sysfs "$root/sys"
cp /etc/resolv.conf "$root/etc/resolv.conf"

say "copying the source (tracked and new files)"
mkdir -p "$root/src"
git -C "$SRC" ls-files -z --cached --others --exclude-standard |
    (cd "$SRC" && xargs -0 tar -cf - --ignore-failed-read) | tar -C "$root/src" -xf -

root_env=(PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8)
# A network that reaches the package index through its own certificate authority: give pip
# inside the root the same CA bundle and index settings as pip here.
pip_cert=${PIP_CERT:-$(python3 -m pip config get global.cert 2>/dev/null || true)}
if [ -n "$pip_cert" ] && [ -f "$pip_cert" ]; then
    cp "$pip_cert" "$root/etc/ssl/certs/host-ca-bundle.crt"
    root_env+=(PIP_CERT=/etc/ssl/certs/host-ca-bundle.crt REQUESTS_CA_BUNDLE=/etc/ssl/certs/host-ca-bundle.crt)
fi
for v in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy; do
    if [ -n "${!v:-}" ]; then root_env+=("$v=${!v}"); fi
done
in_root() { chroot "$root" /usr/bin/env -i "${root_env[@]}" "$@"; }

say "Python and machine inside the root"
in_root python3 -c 'import platform, sys; print(platform.machine(), sys.version.split()[0])'

say "tools/install.sh, as on a unit"
t0=$(date +%s)
in_root bash -c 'cd /src && tools/install.sh --no-start --board 4'
install_s=$(( $(date +%s) - t0 ))

say "the installed command"
in_root /opt/bedside/venv/bin/bedside --version
in_root /opt/bedside/venv/bin/python -c 'import lgpio, gpiozero, luma.oled; print("lgpio", lgpio.LGPIO_PY_VERSION if hasattr(lgpio, "LGPIO_PY_VERSION") else "ok", "gpiozero", gpiozero.__version__ if hasattr(gpiozero, "__version__") else "ok")'

say "smoke tests against the installed package"
in_root /opt/bedside/venv/bin/python - <<'PY'
import subprocess, sys, tomllib
dev = tomllib.load(open("/src/pyproject.toml", "rb"))["project"]["optional-dependencies"]["dev"]
want = [d for d in dev if d.split("==")[0] in ("pytest", "pytest-timeout", "hypothesis")]
subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *want], check=True)
PY
t0=$(date +%s)
set +e
in_root bash -c "cd /src && /opt/bedside/venv/bin/python -m pytest -q -p no:cacheprovider ${SMOKE_TESTS[*]}"
rc=$?
set -e
tests_s=$(( $(date +%s) - t0 ))

say "one simulated day with the installed service's settings"
# The service's user, working directory, environment and config, with one change: no serial
# port exists in this root, so the link is off (a configured port would also hold the
# simulation to real time).
t0=$(date +%s)
set +e
# shellcheck disable=SC2016  # expanded inside the root
in_root bash -c '
    set -e
    unit=/etc/systemd/system/bedside.service
    sed "/^\[serial\]/,/^\[/ s|^port = .*|port = \"\"|" /etc/bedside/bedside.toml > /run/bedside-day.toml
    install -d -o bedside -g bedside -m 0750 /var/lib/bedside-day /run/bedside
    mapfile -t envs < <(sed -n "s/^Environment=//p" "$unit")
    cd "$(sed -n "s/^WorkingDirectory=//p" "$unit")"
    runuser -u bedside -- env "${envs[@]}" /opt/bedside/venv/bin/bedside simulate --headless \
        --config /run/bedside-day.toml --data /var/lib/bedside-day --start 2026-11-24T06:30 --days 1
    runuser -u bedside -- /opt/bedside/venv/bin/bedside log verify --data /var/lib/bedside-day'
day_rc=$?
set -e
day_s=$(( $(date +%s) - t0 ))
say "done in $(( $(date +%s) - start )) s (install $install_s s, tests $tests_s s, a day $day_s s); pytest exit $rc, day exit $day_rc"
[ "$rc" = 0 ] && [ "$day_rc" = 0 ]
