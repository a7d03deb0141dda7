#!/usr/bin/env bash
# Installs the bedside daemon on Raspberry Pi OS Bookworm (Pi Zero 2 W, 3, 4 and 5).
# Run it as root on the unit from a checkout of the source (or `make install`).
# docs/install.md explains every step; --help lists the options.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)
SOURCE=$(cd "$SCRIPT_DIR/.." && pwd)
ROOT=/
DRY=0
WHEELS=""
RTC=0
GADGET=0
APPLY_BOOT=0
LOCKDOWN=1
START=1
VENV=1
APT=1

PREFIX=/opt/bedside
VENV_DIR=$PREFIX/venv
CONF_DIR=/etc/bedside
DATA_DIR=/var/lib/bedside
UNIT_DIR=/etc/systemd/system
UDEV_DIR=/etc/udev/rules.d
BOOT_DIR=/boot/firmware
USER_NAME=bedside
# Only the groups the parts need: /dev/gpiochip* (gpio), /dev/i2c-* (i2c), the serial link (dialout).
USER_GROUPS="gpio i2c dialout"

usage() {
    cat <<'EOF'
Usage: tools/install.sh [OPTIONS]

Installs the bedside daemon: a system user, a virtual environment in /opt/bedside/venv,
config in /etc/bedside/bedside.toml, data in /var/lib/bedside, the systemd service (enabled
and started) and the ward lockdown. Prints the lines /boot/firmware/config.txt needs.

  --rtc                 a DS3231 real-time clock is fitted (adds its overlay)
  --gadget-serial       Pi Zero 2 W: the nurse link is USB gadget serial (dwc2 + g_serial)
  --apply-boot-config   write the boot settings into config.txt/cmdline.txt (else print them)
  --no-lockdown         keep logins, network services and USB keyboards (bench units only)
  --no-start            enable the service but do not start it now
  --wheels DIR          install from wheel files in DIR only (no package index needed)
  --no-venv             leave the virtual environment alone (it is made separately)
  --no-apt              do not install Debian packages
  --root DIR            install into the file tree at DIR (an image being prepared, or a
                        test); implies --no-venv and --no-apt, and starts nothing
  --dry-run             print what would be done and change nothing
  -h, --help            this text
EOF
}

die() { printf 'install.sh: %s\n' "$*" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case $1 in
        --rtc) RTC=1 ;;
        --gadget-serial) GADGET=1 ;;
        --apply-boot-config) APPLY_BOOT=1 ;;
        --no-lockdown) LOCKDOWN=0 ;;
        --no-start) START=0 ;;
        --no-venv) VENV=0 ;;
        --no-apt) APT=0 ;;
        --wheels) [ $# -ge 2 ] || die "--wheels needs a directory"; WHEELS=$(cd "$2" && pwd) || die "no directory $2"; shift ;;
        --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT=$2; shift ;;
        --dry-run) DRY=1 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option $1" ;;
    esac
    shift
done

if [ "$ROOT" != / ]; then
    [ -d "$ROOT" ] || die "--root $ROOT is not a directory"
    ROOT=$(cd "$ROOT" && pwd)
    VENV=0
    APT=0
    START=0
fi

# The path of $1 inside the tree being installed.
r() { if [ "$ROOT" = / ]; then printf '%s' "$1"; else printf '%s%s' "$ROOT" "$1"; fi; }
say() { printf '%s\n' "$*"; }
step() { printf '\n== %s\n' "$*"; }
run() {
    printf '+ %s\n' "$*"
    if [ "$DRY" = 0 ]; then "$@"; fi
}
copy_source() {
    tar -C "$1" --exclude=./.venv --exclude=./var --exclude=./.git --exclude='./.*_cache' --exclude=./.hypothesis \
        -cf - . | tar -C "$2" -xf -
}
# systemctl and the account tools work on an offline tree with --root.
root_opt() { if [ "$ROOT" != / ]; then printf -- '--root=%s' "$ROOT"; fi; }
has_group() { grep -q "^$1:" "$(r /etc/group)" 2>/dev/null; }
has_user() { grep -q "^$1:" "$(r /etc/passwd)" 2>/dev/null; }
# Numeric ids from the tree's own account files (under --root the host's names mean nothing).
ids() {
    if [ "$DRY" = 1 ] && ! has_user "$USER_NAME"; then printf '%s:%s' "$USER_NAME" "$USER_NAME"; return; fi
    awk -F: -v u="$USER_NAME" '$1 == u { printf "%s:%s", $3, $4 }' "$(r /etc/passwd)"
}

if [ ! -f "$SOURCE/pyproject.toml" ] || [ ! -f "$SOURCE/systemd/bedside.service" ]; then
    die "run this from a bedside source checkout (no pyproject.toml next to tools/)"
fi
if [ "$DRY" = 0 ] && [ "$(id -u)" != 0 ]; then
    die "run as root (sudo tools/install.sh), or add --dry-run to see what it would do"
fi

step "checking the system"
# shellcheck disable=SC1090  # the tree's own os-release
codename=$(. "$(r /etc/os-release)" 2>/dev/null && printf '%s' "${VERSION_CODENAME:-unknown}") || codename=unknown
if [ "$codename" != bookworm ]; then
    say "warning: this is '$codename', not Raspberry Pi OS/Debian Bookworm; continuing, but only Bookworm is supported"
fi
model=""
mf=$(r /sys/firmware/devicetree/base/model)
if [ -r "$mf" ]; then model=$(tr -d '\\0' < "$mf"); fi
say "model: ${model:-not a Raspberry Pi (fine for an image or a test)}"

if [ "$APT" = 1 ]; then
    step "Debian packages"
    pkgs="python3 python3-venv python3-pip i2c-tools"
    # Raspberry Pi OS ships lgpio (gpiozero's backend on Bookworm, the only one for the Pi 5)
    # as a Debian package; elsewhere the [pi] extra brings its wheel from the package index.
    if apt-cache show python3-lgpio >/dev/null 2>&1; then pkgs="$pkgs python3-lgpio"; fi
    run apt-get update
    # shellcheck disable=SC2086  # a word list on purpose
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $pkgs
fi
if [ "$VENV" = 1 ] && [ "$DRY" = 0 ]; then
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        die "Python 3.11 or newer is needed (Bookworm has 3.11); found $(python3 --version 2>&1)"
fi

step "system user $USER_NAME"
opt=$(root_opt)
for g in $USER_GROUPS; do
    # Raspberry Pi OS has all three; a plain Debian image lacks gpio and i2c.
    has_group "$g" || run groupadd --system ${opt:+"$opt"} "$g"
done
group_list=$(printf '%s' "$USER_GROUPS" | tr ' ' ,)
if has_user "$USER_NAME"; then
    # -G sets the whole list: the user keeps no group it does not need.
    run usermod ${opt:+"$opt"} -G "$group_list" "$USER_NAME"
else
    run useradd ${opt:+"$opt"} --system --user-group --home-dir "$DATA_DIR" --no-create-home \
        --shell /usr/sbin/nologin --comment "Bedside unit daemon" -G "$group_list" "$USER_NAME"
fi

step "config and data"
owner=$(ids)
run install -d -m 0755 "$(r /etc)" "$(r "$PREFIX")"
run install -d -m 0750 -o 0 -g "${owner#*:}" "$(r "$CONF_DIR")"
if [ -e "$(r "$CONF_DIR/bedside.toml")" ]; then
    say "keeping the existing $CONF_DIR/bedside.toml; the shipped defaults are in $CONF_DIR/bedside.toml.dist"
    run install -m 0640 -o 0 -g "${owner#*:}" "$SOURCE/config/bedside.toml" "$(r "$CONF_DIR/bedside.toml.dist")"
else
    run install -m 0640 -o 0 -g "${owner#*:}" "$SOURCE/config/bedside.toml" "$(r "$CONF_DIR/bedside.toml")"
fi
run install -d -m 0755 "$(r /var/lib)"
run install -d -m 0750 -o "${owner%:*}" -g "${owner#*:}" "$(r "$DATA_DIR")"
run install -d -m 0755 "$(r "$PREFIX/share/doc")"
for f in "$SOURCE"/docs/*.md "$SOURCE"/hardware/[!R]*.md; do
    [ -e "$f" ] && run install -m 0644 "$f" "$(r "$PREFIX/share/doc/$(basename "$f")")"
done

if [ "$VENV" = 1 ]; then
    step "virtual environment $VENV_DIR"
    # --system-site-packages: apt's python3-lgpio is visible inside it (the Raspberry Pi OS convention).
    [ -x "$VENV_DIR/bin/python" ] || run python3 -m venv --system-site-packages "$VENV_DIR"
    if [ -n "$WHEELS" ]; then
        run "$VENV_DIR/bin/pip" install --upgrade --no-index --find-links "$WHEELS" "bedside[pi]"
    else
        # Build from a clean copy: the source may be on a read-only stick, and a developer's
        # .venv or var/ must not be dragged along.
        build=$(mktemp -d)
        trap 'rm -rf "$build"' EXIT
        run copy_source "$SOURCE" "$build"
        # pip always rebuilds and reinstalls a package given as a directory, so the same
        # version number built from newer source still replaces the old.
        run "$VENV_DIR/bin/pip" install "${build}[pi]"
    fi
    run "$VENV_DIR/bin/bedside" config check "$CONF_DIR/bedside.toml"
fi

step "systemd service"
run install -d -m 0755 "$(r "$UNIT_DIR")"
run install -m 0644 "$SOURCE/systemd/bedside.service" "$(r "$UNIT_DIR/bedside.service")"
run systemctl ${opt:+"$opt"} enable bedside.service
# The daemon keeps the RTC in step when a nurse sets the time; /dev/rtc* is root-only otherwise.
run install -d -m 0755 "$(r "$UDEV_DIR")"
run install -m 0644 "$SOURCE/systemd/91-bedside-rtc.rules" "$(r "$UDEV_DIR/91-bedside-rtc.rules")"
# USB stick export: udev asks systemd for bedside-stick@<device>.service when a stick is
# plugged in (not enabled: udev starts it). docs/stick.md.
run install -m 0644 "$SOURCE/systemd/bedside-stick@.service" "$(r "$UNIT_DIR/bedside-stick@.service")"
run install -m 0644 "$SOURCE/systemd/80-bedside-stick.rules" "$(r "$UDEV_DIR/80-bedside-stick.rules")"

if [ "$LOCKDOWN" = 1 ]; then
    step "ward lockdown"
    run install -d -m 0755 "$(r "$UDEV_DIR")"
    run install -m 0644 "$SOURCE/systemd/lockdown/90-bedside-no-hid.rules" "$(r "$UDEV_DIR/90-bedside-no-hid.rules")"
    units=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$SOURCE/systemd/lockdown/masked-units.list")
    if [ "$RTC" = 1 ]; then
        # With a real RTC the saved-at-shutdown time of fake-hwclock would only fight it.
        units="$units fake-hwclock.service"
    fi
    # Masked, not stopped: an engineer installing over SSH keeps the session until the reboot,
    # after which nobody logs in (docs/hardening.md, "Maintenance after the lockdown").
    # shellcheck disable=SC2086  # a word list on purpose
    run systemctl ${opt:+"$opt"} mask $units
else
    say "ward lockdown skipped (--no-lockdown): logins, network services and USB keyboards stay available"
fi

if [ "$ROOT" = / ] && [ -d /run/systemd/system ] && [ "$DRY" = 0 ]; then
    run systemctl daemon-reload
    run udevadm control --reload-rules
    if [ "$START" = 1 ]; then run systemctl restart bedside.service; fi
elif [ "$START" = 1 ]; then
    say "systemd is not running here: the service is enabled and starts at the next boot"
fi

step "boot configuration"
block="# bedside: begin (managed by tools/install.sh; edits between these lines are replaced)
[all]
# I2C for the display at 400 kHz: a full frame takes ~23 ms instead of ~93 ms at the default 100 kHz.
dtparam=i2c_arm=on
dtparam=i2c_arm_baudrate=400000
# No radios: the unit has no network of any kind.
dtoverlay=disable-wifi
dtoverlay=disable-bt"
if [ "$RTC" = 1 ]; then
    block="$block
# DS3231 real-time clock on the same I2C bus (address 0x68).
dtoverlay=i2c-rtc,ds3231"
fi
if [ "$GADGET" = 1 ]; then
    block="$block
# The Zero's USB port as a device: the nurse link appears on the laptop as a serial port.
dtoverlay=dwc2,dr_mode=peripheral"
fi
block="$block
# bedside: end"

config_txt=$(r "$BOOT_DIR/config.txt")
cmdline_txt=$(r "$BOOT_DIR/cmdline.txt")
if [ "$APPLY_BOOT" = 1 ]; then
    [ -f "$config_txt" ] || die "$config_txt not found: is the boot partition mounted at $BOOT_DIR?"
    if [ "$DRY" = 0 ]; then
        [ -e "$config_txt.bedside-orig" ] || cp -p "$config_txt" "$config_txt.bedside-orig"
        tmp=$(mktemp)
        sed '/^# bedside: begin/,/^# bedside: end/d' "$config_txt" > "$tmp"
        printf '%s\n' "$block" >> "$tmp"
        cat "$tmp" > "$config_txt" && rm -f "$tmp"
        if [ -f "$cmdline_txt" ]; then
            [ -e "$cmdline_txt.bedside-orig" ] || cp -p "$cmdline_txt" "$cmdline_txt.bedside-orig"
            # No kernel console (and so no login) on the serial port; gadget serial modules if asked.
            line=$(head -n 1 "$cmdline_txt" | tr -s ' ' '\n' |
                grep -v -e '^console=serial[01],' -e '^console=ttyAMA[0-9]*,' -e '^console=ttyS[0-9]*,' \
                        -e '^modules-load=' | tr '\n' ' ' | sed 's/ *$//')
            if [ "$GADGET" = 1 ]; then line="$line modules-load=dwc2,g_serial"; fi
            printf '%s\n' "$line" > "$cmdline_txt"
        fi
    fi
    say "wrote the bedside block into $BOOT_DIR/config.txt (originals kept as *.bedside-orig); reboot to apply"
else
    say "Add these lines to $BOOT_DIR/config.txt (or run again with --apply-boot-config):"
    say ""
    printf '%s\n' "$block" | sed 's/^/    /'
    say ""
    say "and in $BOOT_DIR/cmdline.txt remove any console=serial0,115200 (no console on the serial port)."
    if [ "$GADGET" = 1 ]; then say "For gadget serial also add modules-load=dwc2,g_serial after rootwait in cmdline.txt."; fi
fi
if [ "$RTC" = 0 ]; then
    say "No RTC: times stay 'unverified' until the clock is set. A Pi 5 has its own RTC; with its"
    say "rechargeable battery fitted, also add dtparam=rtc_bbat_vchg=3000000."
fi

step "next"
say "1. Edit $CONF_DIR/bedside.toml (unit id, time zone, awake window, serial port), then:"
say "     sudo -u $USER_NAME $VENV_DIR/bin/bedside config check $CONF_DIR/bedside.toml"
say "2. Follow the commissioning checklist: $PREFIX/share/doc/commissioning.md"
say "   (ward secret, seal key, clock, a test press)."
say "3. Reboot, then: systemctl status bedside   and   journalctl -u bedside"
if [ "$LOCKDOWN" = 1 ]; then
    say "NOTE: from the next reboot nobody can log in (console, serial, SSH) and keyboards are"
    say "ignored. Finish commissioning first, or install with --no-lockdown and lock down last."
fi
