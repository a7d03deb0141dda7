#!/usr/bin/env bash
# Installs the bedside daemon on Raspberry Pi OS Bookworm (Pi Zero 2 W, 3, 4 and 5), or
# removes it again (--uninstall). hardware/README.md has the board matrix this follows.
# Run it as root on the unit from a checkout of the source (or `make install`).
# docs/install.md explains every step; --help lists the options.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)
SOURCE=$(cd "$SCRIPT_DIR/.." && pwd)
ROOT=/
DRY=0
WHEELS=""
WARD_KEY=""
RELEASE_KEY=""
WARD_NAME=""
RTC=0
RTC_CHARGE=0
LINK=""
BOARD=auto
GPIO=""
GPIO_CHIP=""
UNINSTALL=0
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
# What this script added to files it shares with the system (cmdline.txt, /etc/modules) and
# which units it masked, so a re-run and --uninstall touch only those.
STATE_FILE=$CONF_DIR/install.state

usage() {
    cat <<'EOF'
Usage: tools/install.sh [OPTIONS]

Installs the bedside daemon: a system user, a virtual environment in /opt/bedside/venv,
config in /etc/bedside/bedside.toml, data in /var/lib/bedside, the systemd service (enabled
and started) and the ward lockdown. Prints the lines /boot/firmware/config.txt needs.

  --board BOARD         zero2w, 3, 4 or 5 (3 covers the 3B and 3B+); default: read from the
                        running Pi (an image being prepared or a test must name it). Another
                        Linux board with a GPIO chip: its name, with --gpio-chip
  --gpio-chip CHIP      another board's GPIO chip (its label, as gpiodetect prints it, or
                        /dev/gpiochipN), written with the board's name to the config's
                        [hardware] gpio_chip and board (docs/install.md, "Other boards")
  --link LINK           the nurse link: uart (a USB-serial cable on GPIO14/15; the default),
                        gadget (Zero 2 W: its USB data port is the serial port) or off.
                        The config's [serial] port is set to the device it sets up.
  --gadget-serial       the same as --link gadget (Zero 2 W only; the USB stick then has no port)
  --gpio BACKEND        auto, lgpio or rpigpio: the pin backend installed and written to the
                        config's [hardware] gpio (default: what the config says, else auto:
                        lgpio on Bookworm and on a Pi 5, RPi.GPIO on Bullseye and older)
  --rtc                 a real-time clock keeps time: a DS3231 (adds its overlay), or on a Pi 5
                        its own RTC with its battery fitted (no overlay needed)
  --charge-rtc-battery  Pi 5 with a rechargeable RTC battery: let the board charge it
  --apply-boot-config   write the boot settings into config.txt/cmdline.txt (else print them)
  --no-lockdown         keep logins, network services and USB keyboards (bench units only)
  --no-start            enable the service but do not start it now
  --wheels DIR          install from wheel files in DIR only (no package index needed)
  --ward-key FILE       pin the ward authority's public key (ward.pub) in /etc/bedside/keys
  --release-key FILE    pin the release key's public key (release.pub) with it
  --ward-name NAME      the ward's name for the keyring (with --ward-key); docs/security.md
  --no-venv             leave the virtual environment alone (it is made separately)
  --no-apt              do not install Debian packages
  --root DIR            install into the file tree at DIR (an image being prepared, or a
                        test); implies --no-venv and --no-apt, and starts nothing
  --dry-run             print what would be done and change nothing
  --uninstall           remove the service, the software and the boot settings this script
                        added (restoring cmdline.txt and /etc/modules); keeps the journal in
                        /var/lib/bedside, the config and the user
  -h, --help            this text
EOF
}

die() { printf 'install.sh: %s\n' "$*" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case $1 in
        --rtc) RTC=1 ;;
        --charge-rtc-battery) RTC_CHARGE=1 ;;
        --gadget-serial) LINK=gadget ;;
        --link) [ $# -ge 2 ] || die "--link needs uart, gadget or off"; LINK=$2; shift ;;
        --board) [ $# -ge 2 ] || die "--board needs zero2w, 3, 4 or 5"; BOARD=$2; shift ;;
        --gpio) [ $# -ge 2 ] || die "--gpio needs auto, lgpio or rpigpio"; GPIO=$2; shift ;;
        --gpio-chip) [ $# -ge 2 ] || die "--gpio-chip needs a chip's label or /dev/gpiochipN"; GPIO_CHIP=$2; shift ;;
        --uninstall) UNINSTALL=1 ;;
        --apply-boot-config) APPLY_BOOT=1 ;;
        --no-lockdown) LOCKDOWN=0 ;;
        --no-start) START=0 ;;
        --no-venv) VENV=0 ;;
        --no-apt) APT=0 ;;
        --wheels) [ $# -ge 2 ] || die "--wheels needs a directory"; WHEELS=$(cd "$2" && pwd) || die "no directory $2"; shift ;;
        --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT=$2; shift ;;
        --ward-key) [ $# -ge 2 ] || die "--ward-key needs a .pub file"; WARD_KEY=$(realpath "$2") || die "no file $2"; shift ;;
        --release-key) [ $# -ge 2 ] || die "--release-key needs a .pub file"; RELEASE_KEY=$(realpath "$2") || die "no file $2"; shift ;;
        --ward-name) [ $# -ge 2 ] || die "--ward-name needs a name"; WARD_NAME=$2; shift ;;
        --dry-run) DRY=1 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option $1" ;;
    esac
    shift
done

# systemd runs the tree being installed into: reload it and start the service at the end. A
# test of that path sets BEDSIDE_INSTALL_LIVE=1 with --root and stand-ins for systemctl and
# udevadm on PATH (tests/unit/test_install.py).
LIVE=0
if [ "$ROOT" = / ] && [ -d /run/systemd/system ]; then LIVE=1; fi
if [ "$ROOT" != / ]; then
    [ -d "$ROOT" ] || die "--root $ROOT is not a directory"
    ROOT=$(cd "$ROOT" && pwd)
    VENV=0
    APT=0
    if [ "${BEDSIDE_INSTALL_LIVE:-0}" = 1 ]; then LIVE=1; else START=0; fi
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

# --- shared files: edit only what this script added -------------------------------------

# The value of KEY in the state file (empty when absent).
state_get() {
    local f
    f=$(r "$STATE_FILE")
    if [ -f "$f" ]; then sed -n "s/^$1=//p" "$f" | head -n 1; fi
}
# KEY=VALUE lines into the state file (written whole, so a crash leaves the old one).
state_put() {
    local f tmp
    f=$(r "$STATE_FILE")
    tmp=$(mktemp)
    { [ -f "$f" ] && grep -v "^$1=" "$f"; printf '%s=%s\n' "$1" "$2"; } > "$tmp" || true
    install -m 0644 "$tmp" "$f" && rm -f "$tmp"
}
# A whole file rewritten in place (keeps its owner and mode; /boot/firmware is FAT).
replace_file() { cat "$2" > "$1" && rm -f "$2"; }
# Sets KEY in [SECTION] of a TOML file to VALUE (a TOML literal), keeping the comment after
# it. With mode "if-empty" a value the operator chose is kept: only "" or a missing key change.
toml_set() {
    awk -v sec="[$2]" -v key="$3" -v val="$4" -v mode="$5" '
        function add() { if (insec && !done) { print key " = " val; done = 1 } }
        /^\[/ { h = $0; sub(/[ \t]*#.*/, "", h); add(); insec = (h == sec); if (insec) seen = 1; print; next }
        insec && !done && $0 ~ ("^" key "[ \t]*=") {
            done = 1; rest = $0; sub(/^[^=]*=[ \t]*/, "", rest); cur = rest; sub(/[ \t]*#.*/, "", cur)
            comment = ""; if (match(rest, /[ \t]+#.*/)) comment = substr(rest, RSTART)
            if (mode == "if-empty" && cur != "\"\"") { print; next }
            print key " = " val comment; next
        }
        { print }
        END { add(); if (!seen) printf "\n%s\n%s = %s\n", sec, key, val }
    ' "$1"
}
toml_get() {
    [ -f "$1" ] || return 0
    awk -v sec="[$2]" -v key="$3" '
        /^\[/ { h = $0; sub(/[ \t]*#.*/, "", h); insec = (h == sec); next }
        insec && $0 ~ ("^" key "[ \t]*=") { v = $0; sub(/^[^=]*=[ \t]*/, "", v); sub(/[ \t]*#.*/, "", v); gsub(/"/, "", v); print v; exit }
    ' "$1"
}
# Kernel console on a serial port: the nurse link's port must carry no console (nor a login).
is_serial_console() { case $1 in console=serial[0-9]*|console=ttyAMA[0-9]*|console=ttyS[0-9]*) return 0 ;; esac; return 1; }

config_txt=$(r "$BOOT_DIR/config.txt")
cmdline_txt=$(r "$BOOT_DIR/cmdline.txt")
modules_file=$(r /etc/modules)
BLOCK_BEGIN="# bedside: begin"
BLOCK_END="# bedside: end"

# --- uninstall ---------------------------------------------------------------------------

if [ "$UNINSTALL" = 1 ]; then
    opt=$(root_opt)
    step "stopping and removing the service"
    if [ "$LIVE" = 1 ]; then run systemctl disable --now bedside.service || true; fi
    if [ "$LIVE" = 1 ]; then run systemctl disable --now bedside-update.path || true; fi
    [ -e "$(r "$UNIT_DIR/multi-user.target.wants/bedside.service")" ] &&
        run systemctl ${opt:+"$opt"} disable bedside.service
    [ -e "$(r "$UNIT_DIR/paths.target.wants/bedside-update.path")" ] &&
        run systemctl ${opt:+"$opt"} disable bedside-update.path
    for f in "$UNIT_DIR/bedside.service" "$UNIT_DIR/bedside-stick@.service" "$UDEV_DIR/91-bedside-rtc.rules" \
             "$UDEV_DIR/92-bedside-led.rules" "$UDEV_DIR/92-bedside-gpio.rules" \
             "$UNIT_DIR/bedside-update.service" "$UNIT_DIR/bedside-update.path" \
             "$UDEV_DIR/80-bedside-stick.rules" "$UDEV_DIR/90-bedside-no-hid.rules"; do
        [ -e "$(r "$f")" ] && run rm -f "$(r "$f")"
    done
    [ -d "$(r "$UNIT_DIR/bedside.service.d")" ] && run rm -rf "$(r "$UNIT_DIR/bedside.service.d")"
    masked=$(state_get masked)
    # shellcheck disable=SC2086  # a word list on purpose
    if [ -n "$masked" ]; then run systemctl ${opt:+"$opt"} unmask $masked; fi

    step "boot configuration and /etc/modules"
    if [ -f "$config_txt" ] && grep -q "^$BLOCK_BEGIN" "$config_txt" && [ "$DRY" = 0 ]; then
        tmp=$(mktemp)
        sed "/^$BLOCK_BEGIN/,/^$BLOCK_END/d" "$config_txt" > "$tmp" && replace_file "$config_txt" "$tmp"
        say "removed the bedside block from $BOOT_DIR/config.txt"
    fi
    if [ -f "$cmdline_txt" ] && [ "$DRY" = 0 ]; then
        added=$(state_get cmdline_added)
        removed=$(state_get cmdline_removed)
        line=""
        for t in $(head -n 1 "$cmdline_txt"); do
            [ -n "$added" ] && [ "$t" = "$added" ] && continue
            line="$line $t"
        done
        # The console entries go back where Raspberry Pi OS has them: first.
        line="$removed$line"
        printf '%s\n' "${line# }" > "$cmdline_txt"
        say "restored $BOOT_DIR/cmdline.txt (${removed:-nothing} back${added:+, $added removed})"
    fi
    if [ "$(state_get modules_added)" = i2c-dev ] && [ -f "$modules_file" ] && [ "$DRY" = 0 ]; then
        tmp=$(mktemp)
        sed '/^i2c-dev[[:space:]]*$/d' "$modules_file" > "$tmp" && replace_file "$modules_file" "$tmp"
        say "removed i2c-dev from /etc/modules (it was added by the install)"
    fi
    for f in "$config_txt.bedside-orig" "$cmdline_txt.bedside-orig"; do [ -e "$f" ] && run rm -f "$f"; done

    step "software"
    [ -e "$(r "$PREFIX")" ] && run rm -rf "$(r "$PREFIX")"
    [ -e "$(r "$STATE_FILE")" ] && run rm -f "$(r "$STATE_FILE")"
    if [ "$LIVE" = 1 ] && [ "$DRY" = 0 ]; then
        run systemctl daemon-reload
        run udevadm control --reload-rules
    fi
    say "Kept: the journal in $DATA_DIR (the record of care: export and file it before deleting),"
    say "the config in $CONF_DIR and the user $USER_NAME. Reboot to apply the boot settings."
    exit 0
fi

# --- install -----------------------------------------------------------------------------

step "checking the system"
# shellcheck disable=SC1090  # the tree's own os-release
codename=$(. "$(r /etc/os-release)" 2>/dev/null && printf '%s' "${VERSION_CODENAME:-unknown}") || codename=unknown
if [ "$codename" != bookworm ]; then
    say "warning: this is '$codename', not Raspberry Pi OS/Debian Bookworm; continuing, but only Bookworm is supported"
fi
model=""
mf=$(r /sys/firmware/devicetree/base/model)
if [ -r "$mf" ]; then model=$(tr -d '\0' < "$mf"); fi
say "model: ${model:-not a Raspberry Pi (fine for an image or a test)}"
if [ "$BOARD" = auto ]; then
    case $model in
        *"Zero 2 W"*) BOARD=zero2w ;;
        *"Pi 3"*) BOARD=3 ;;
        *"Pi 4"*|*"Compute Module 4"*) BOARD=4 ;;
        *"Pi 5"*|*"Compute Module 5"*) BOARD=5 ;;
        *) die "cannot tell the board from '${model:-no model}': name it with --board zero2w, 3, 4 or 5 (or, for another board with a GPIO chip, --board NAME --gpio-chip CHIP)" ;;
    esac
fi
# A Raspberry Pi, or another Linux board named with its GPIO chip (not a supported unit: a
# bench board or the VM of make vm-test; docs/install.md, "Other boards").
case $BOARD in
    zero2w|3|4|5) [ -z "$GPIO_CHIP" ] || die "--gpio-chip is for another board: a Pi's header chip is found by its label" ;;
    *)
        [ -n "$GPIO_CHIP" ] || die "--board $BOARD: choose zero2w, 3, 4 or 5 (hardware/README.md), or name another board's GPIO chip with --gpio-chip"
        printf '%s' "$BOARD" | grep -Eq '^[A-Za-z0-9][A-Za-z0-9 ._()+-]{0,39}$' ||
            die "--board $BOARD: another board's name is letters, digits, spaces and ._()+- (at most 40)"
        printf '%s' "$GPIO_CHIP" | grep -Eq '^(/dev/gpiochip[0-9]{1,3}|[A-Za-z0-9][A-Za-z0-9._:+-]{0,63})$' ||
            die "--gpio-chip $GPIO_CHIP: a chip's label (gpiodetect) or /dev/gpiochipN"
        ;;
esac
LINK=${LINK:-uart}
case $LINK in
    uart|off) ;;
    gadget) [ "$BOARD" = zero2w ] || die "--link gadget (--gadget-serial) is for a Zero 2 W; board $BOARD uses --link uart" ;;
    *) die "--link $LINK: choose uart, gadget or off" ;;
esac
# The GPIO14/15 UART: with Bluetooth off, the full UART is /dev/serial0 on a Zero 2 W, 3 and
# 4; on a Pi 5 /dev/serial0 is the 3-pin debug connector and GPIO14/15 are UART0, /dev/ttyAMA0.
case $LINK in
    uart) if [ "$BOARD" = 5 ]; then PORT=/dev/ttyAMA0; else PORT=/dev/serial0; fi ;;
    gadget) PORT=/dev/ttyGS0 ;;
    off) PORT="" ;;
esac
if [ "$RTC_CHARGE" = 1 ] && [ "$BOARD" != 5 ]; then die "--charge-rtc-battery is for a Pi 5's own RTC"; fi
installed_conf=$(r "$CONF_DIR/bedside.toml")
if [ -z "$GPIO" ]; then GPIO=$(toml_get "$installed_conf" hardware gpio); fi
GPIO=${GPIO:-auto}
case $GPIO in
    auto)
        case $codename in stretch|buster|bullseye) backend=rpigpio ;; *) backend=lgpio ;; esac
        [ "$BOARD" = 5 ] && backend=lgpio ;;
    lgpio) backend=lgpio ;;
    rpigpio)
        [ "$BOARD" != 5 ] || die "RPi.GPIO cannot drive a Pi 5's pins: use --gpio lgpio (or auto)"
        backend=rpigpio ;;
    *) die "--gpio $GPIO: choose auto, lgpio or rpigpio" ;;
esac
if [ "$backend" = rpigpio ]; then extra=pi-legacy; else extra=pi; fi
say "board: $BOARD; nurse link: $LINK${PORT:+ ($PORT)}; GPIO backend: $backend ([hardware] gpio = \"$GPIO\")"
if [ -n "$WHEELS" ] && [ "$VENV" = 1 ]; then
    case $(uname -m) in
        armv7l|armv6l) die "offline installs (--wheels) need 64-bit Raspberry Pi OS: Pillow has no 32-bit ARM wheels on the package index (hardware/README.md, the board matrix)" ;;
    esac
fi

if [ "$APT" = 1 ]; then
    step "Debian packages"
    pkgs="python3 python3-venv python3-pip i2c-tools"
    # Raspberry Pi OS ships the GPIO backends as Debian packages (python3-lgpio is gpiozero's
    # backend on Bookworm, the only one for the Pi 5); elsewhere the extra brings the wheel.
    if [ "$backend" = lgpio ]; then apt_gpio=python3-lgpio; else apt_gpio=python3-rpi.gpio; fi
    if apt-cache show "$apt_gpio" >/dev/null 2>&1; then pkgs="$pkgs $apt_gpio"; fi
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
if [ -e "$installed_conf" ]; then
    say "keeping the existing $CONF_DIR/bedside.toml; the shipped defaults are in $CONF_DIR/bedside.toml.dist"
    run install -m 0640 -o 0 -g "${owner#*:}" "$SOURCE/config/bedside.toml" "$(r "$CONF_DIR/bedside.toml.dist")"
else
    run install -m 0640 -o 0 -g "${owner#*:}" "$SOURCE/config/bedside.toml" "$installed_conf"
fi
if [ "$DRY" = 0 ]; then
    # Turn on what was set up: the link's port (an operator's own choice is kept), the backend
    # and, for another board, its name and chip (a Pi's are "", found from the board itself).
    tmp=$(mktemp)
    toml_set "$installed_conf" hardware gpio "\"$GPIO\"" always > "$tmp" && replace_file "$installed_conf" "$tmp"
    case $BOARD in zero2w|3|4|5) board_name="" ;; *) board_name=$BOARD ;; esac
    if [ -n "$board_name" ] || [ -n "$(toml_get "$installed_conf" hardware board)" ]; then
        tmp=$(mktemp)
        toml_set "$installed_conf" hardware board "\"$board_name\"" always > "$tmp" && replace_file "$installed_conf" "$tmp"
        tmp=$(mktemp)
        toml_set "$installed_conf" hardware gpio_chip "\"$GPIO_CHIP\"" always > "$tmp" && replace_file "$installed_conf" "$tmp"
    fi
    if [ -n "$PORT" ]; then
        tmp=$(mktemp)
        toml_set "$installed_conf" serial port "\"$PORT\"" if-empty > "$tmp" && replace_file "$installed_conf" "$tmp"
        now=$(toml_get "$installed_conf" serial port)
        if [ "$now" != "$PORT" ]; then
            say "warning: [serial] port is \"$now\" in $CONF_DIR/bedside.toml, but the install set up $PORT"
        fi
    fi
fi
say "config: [hardware] gpio = \"$GPIO\"${PORT:+, [serial] port = \"$(toml_get "$installed_conf" serial port)\"}"
run install -d -m 0755 "$(r /var/lib)"
run install -d -m 0750 -o "${owner%:*}" -g "${owner#*:}" "$(r "$DATA_DIR")"
run install -d -m 0755 "$(r "$PREFIX/share/doc")"
for f in "$SOURCE"/docs/*.md "$SOURCE"/hardware/*.md; do
    [ -e "$f" ] || continue
    name=$(basename "$f")
    # hardware/README.md is the board matrix; docs/ has no file of that name to clash with.
    [ "$f" = "$SOURCE/hardware/README.md" ] && name=boards.md
    run install -m 0644 "$f" "$(r "$PREFIX/share/doc/$name")"
done

if [ "$VENV" = 1 ]; then
    # Each version in its own venv beside the others, /opt/bedside/venv a symlink to the one in
    # use: a software update from a stick switches it and can switch back (docs/install.md).
    version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$SOURCE/pyproject.toml" | head -n 1)
    release=$PREFIX/releases/$version
    step "virtual environment $release/venv"
    # --system-site-packages: apt's GPIO backend is visible inside it (the Raspberry Pi OS convention).
    [ -x "$release/venv/bin/python" ] || run python3 -m venv --system-site-packages "$release/venv"
    if [ -n "$WHEELS" ]; then
        run "$release/venv/bin/pip" install --upgrade --no-index --find-links "$WHEELS" "bedside[$extra]"
    else
        # Build from a clean copy: the source may be on a read-only stick, and a developer's
        # .venv or var/ must not be dragged along.
        build=$(mktemp -d)
        trap 'rm -rf "$build"' EXIT
        run copy_source "$SOURCE" "$build"
        # pip always rebuilds and reinstalls a package given as a directory, so the same
        # version number built from newer source still replaces the old.
        run "$release/venv/bin/pip" install "${build}[$extra]"
    fi
    # The button read from the kernel's GPIO line events, with no polling, and the outputs as
    # line requests, with no lgpio timing thread (docs/design.md, "Wake-ups"): libgpiod 2's bindings, built from source where there is no wheel (they need
    # python3-dev). Best effort: without them the unit works, with lgpio polling the button and its
    # timing thread running for the outputs.
    if [ -n "$WHEELS" ]; then
        gpiod_from="--no-index --find-links $WHEELS"
    else
        gpiod_from=""
    fi
    # shellcheck disable=SC2086 # gpiod_from is two words or none
    run "$release/venv/bin/pip" install $gpiod_from "gpiod>=2.1" ||
        say "warning: the gpiod package could not be installed; the button is polled by lgpio and the outputs keep its timing thread running (about 2000 wake-ups a second): install python3-dev and run the installer again"
    run "$release/venv/bin/bedside" config check "$CONF_DIR/bedside.toml"
    if grep -Eqs '^[[:space:]]*buzzer[[:space:]]*=[[:space:]]*"passive"' "$CONF_DIR/bedside.toml"; then
        say "note: buzzer = \"passive\" plays its tones by PWM through lgpio, whose timing thread then wakes the unit 50 times a second for ever (docs/design.md, \"Wake-ups\"); an active buzzer costs nothing while quiet (hardware/wiring.md)"
    fi
    # A venv from before releases existed is replaced by the link.
    if [ -d "$VENV_DIR" ] && [ ! -L "$VENV_DIR" ]; then run rm -rf "$VENV_DIR"; fi
    run ln -sfn "releases/$version/venv" "$VENV_DIR.new"
    run mv -T "$VENV_DIR.new" "$VENV_DIR"
fi

step "systemd service"
run install -d -m 0755 "$(r "$UNIT_DIR")"
run install -m 0644 "$SOURCE/systemd/bedside.service" "$(r "$UNIT_DIR/bedside.service")"
dropin=$(r "$UNIT_DIR/bedside.service.d")
if [ "$backend" = rpigpio ]; then
    # RPi.GPIO drives the pins through /dev/gpiomem, which DevicePolicy=closed otherwise hides.
    run install -d -m 0755 "$dropin"
    if [ "$DRY" = 0 ]; then
        printf '%s\n' "# Written by tools/install.sh for [hardware] gpio = \"rpigpio\"." "[Service]" \
            "DeviceAllow=/dev/gpiomem rw" > "$dropin/gpio.conf"
    fi
elif [ -e "$dropin/gpio.conf" ]; then
    run rm -f "$dropin/gpio.conf"
    rmdir "$dropin" 2>/dev/null || true
fi
run systemctl ${opt:+"$opt"} enable bedside.service
# The daemon keeps the RTC in step when a nurse sets the time; /dev/rtc* is root-only otherwise.
run install -d -m 0755 "$(r "$UDEV_DIR")"
run install -m 0644 "$SOURCE/systemd/91-bedside-rtc.rules" "$(r "$UDEV_DIR/91-bedside-rtc.rules")"
# The status LED as a kernel LED device (the boot block's gpio-led overlay): its group may set it.
run install -m 0644 "$SOURCE/systemd/92-bedside-led.rules" "$(r "$UDEV_DIR/92-bedside-led.rules")"
case $BOARD in
    zero2w|3|4|5) [ -e "$(r "$UDEV_DIR/92-bedside-gpio.rules")" ] && run rm -f "$(r "$UDEV_DIR/92-bedside-gpio.rules")" ;;
    # Raspberry Pi OS gives /dev/gpiochip* to the gpio group; another board's system may not.
    *) run install -m 0644 "$SOURCE/systemd/92-bedside-gpio.rules" "$(r "$UDEV_DIR/92-bedside-gpio.rules")" ;;
esac
# USB stick export: udev asks systemd for bedside-stick@<device>.service when a stick is
# plugged in (not enabled: udev starts it). docs/stick.md.
run install -m 0644 "$SOURCE/systemd/bedside-stick@.service" "$(r "$UNIT_DIR/bedside-stick@.service")"
run install -m 0644 "$SOURCE/systemd/80-bedside-stick.rules" "$(r "$UDEV_DIR/80-bedside-stick.rules")"
# Software updates from a ward stick: the export copies the stick's bundle into the data
# directory, the path unit starts the (root) updater for it. docs/install.md.
run install -m 0644 "$SOURCE/systemd/bedside-update.service" "$(r "$UNIT_DIR/bedside-update.service")"
run install -m 0644 "$SOURCE/systemd/bedside-update.path" "$(r "$UNIT_DIR/bedside-update.path")"
run systemctl ${opt:+"$opt"} enable bedside-update.path

# The ward's public keys, pinned root's and read-only to the daemon (docs/security.md). A
# unit's ward secret, if it had one, is removed: from now on only the pinned keys count.
if [ -n "$WARD_KEY$RELEASE_KEY" ]; then
    step "ward keys"
    if [ -z "$WARD_KEY" ] || [ -z "$RELEASE_KEY" ] || [ -z "$WARD_NAME" ]; then
        die "pinning keys takes --ward-key, --release-key and --ward-name together"
    fi
    run install -d -m 0755 "$(r "$CONF_DIR/keys")"
    # The pin is journaled, and one program writes the journal at a time: a running unit (an
    # upgrade install that pins keys) is stopped here and started again last, as always.
    if [ "$LIVE" = 1 ] && [ "$DRY" = 0 ]; then run systemctl stop bedside.service || true; fi
    if [ "$ROOT" = / ] && [ "$VENV" = 1 ]; then pin_with="$VENV_DIR/bin/bedside"; else pin_with="python3 -m bedside"; fi
    # shellcheck disable=SC2086 # pin_with is one command or a command and its arguments
    run env PYTHONPATH="$SOURCE/device" $pin_with trust pin --ward "$WARD_KEY" --release "$RELEASE_KEY" \
        --ward-name "$WARD_NAME" --keys-dir "$(r "$CONF_DIR/keys")" --data "$(r "$DATA_DIR")" \
        --config "$(r "$CONF_DIR/bedside.toml")"
fi

if [ "$LOCKDOWN" = 1 ]; then
    step "ward lockdown"
    run install -d -m 0755 "$(r "$UDEV_DIR")"
    run install -m 0644 "$SOURCE/systemd/lockdown/90-bedside-no-hid.rules" "$(r "$UDEV_DIR/90-bedside-no-hid.rules")"
    units=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$SOURCE/systemd/lockdown/masked-units.list")
    if [ "$RTC" = 1 ]; then
        # With a real RTC the saved-at-shutdown time of fake-hwclock would only fight it.
        units="$units fake-hwclock.service"
    fi
    # Only units not masked already are recorded, so --uninstall unmasks only what it masked.
    ours=$(state_get masked)
    for u in $units; do
        if [ "$(readlink "$(r "$UNIT_DIR/$u")" 2>/dev/null)" != /dev/null ]; then ours="$ours $u"; fi
    done
    # Masked, not stopped: an engineer installing over SSH keeps the session until the reboot,
    # after which nobody logs in (docs/hardening.md, "Maintenance after the lockdown").
    # shellcheck disable=SC2086  # a word list on purpose
    run systemctl ${opt:+"$opt"} mask $units
    # shellcheck disable=SC2086  # a word list on purpose
    if [ "$DRY" = 0 ]; then state_put masked "$(printf '%s\n' $ours | sort -u | tr '\n' ' ' | sed 's/ *$//')"; fi
else
    say "ward lockdown skipped (--no-lockdown): logins, network services and USB keyboards stay available"
fi

step "I2C device files"
# As raspi-config does: i2c-dev gives /dev/i2c-1 for the display (and i2cdetect).
if grep -q '^i2c-dev[[:space:]]*$' "$modules_file" 2>/dev/null; then
    say "/etc/modules already loads i2c-dev"
else
    say "adding i2c-dev to /etc/modules"
    if [ "$DRY" = 0 ]; then
        printf 'i2c-dev\n' >> "$modules_file"
        state_put modules_added i2c-dev
    fi
fi

step "boot configuration"
block="$BLOCK_BEGIN (managed by tools/install.sh; edits between these lines are replaced)
[all]
# I2C for the display at 400 kHz: a full frame takes ~23 ms instead of ~93 ms at the default 100 kHz.
dtparam=i2c_arm=on
dtparam=i2c_arm_baudrate=400000
# No radios: the unit has no network of any kind (the firmware picks each board's overlay).
dtoverlay=disable-wifi
dtoverlay=disable-bt"
# The status LED as a kernel LED device: the kernel's timer trigger blinks it while a session is
# due, so the daemon never wakes for the blink (docs/design.md). -1 in the config: none fitted.
led_pin=$(toml_get "$installed_conf" hardware led_pin)
case ${led_pin:-27} in
    -1) ;;
    *[!0-9]*) die "[hardware] led_pin in $installed_conf is not a GPIO number: $led_pin" ;;
    *) block="$block
# The status LED (GPIO${led_pin:-27}): /sys/class/leds/bedside-status.
dtoverlay=gpio-led,gpio=${led_pin:-27},label=bedside-status" ;;
esac
if [ "$RTC" = 1 ] && [ "$BOARD" != 5 ]; then
    block="$block
# DS3231 real-time clock on the same I2C bus (address 0x68).
dtoverlay=i2c-rtc,ds3231"
fi
if [ "$RTC_CHARGE" = 1 ]; then
    block="$block
# The Pi 5's own RTC: charge its rechargeable battery (never a plain coin cell).
dtparam=rtc_bbat_vchg=3000000"
fi
case $LINK/$BOARD in
    uart/5) block="$block
# The nurse link on GPIO14/15: UART0, /dev/ttyAMA0 (/dev/serial0 is the debug connector).
dtparam=uart0=on" ;;
    uart/*) block="$block
# The nurse link on GPIO14/15: with Bluetooth off the full UART is there, as /dev/serial0.
enable_uart=1" ;;
    gadget/*) block="$block
# The Zero's USB port as a device: the nurse link appears on the laptop as a serial port.
dtoverlay=dwc2,dr_mode=peripheral" ;;
esac
block="$block
$BLOCK_END"
if [ "$LINK" = gadget ]; then added=modules-load=dwc2,g_serial; else added=""; fi

if [ "$APPLY_BOOT" = 1 ]; then
    [ -f "$config_txt" ] || die "$config_txt not found: is the boot partition mounted at $BOOT_DIR?"
    if [ "$DRY" = 0 ]; then
        [ -e "$config_txt.bedside-orig" ] || cp -p "$config_txt" "$config_txt.bedside-orig"
        tmp=$(mktemp)
        sed "/^$BLOCK_BEGIN/,/^$BLOCK_END/d" "$config_txt" > "$tmp"
        printf '%s\n' "$block" >> "$tmp"
        replace_file "$config_txt" "$tmp"
        if [ -f "$cmdline_txt" ]; then
            [ -e "$cmdline_txt.bedside-orig" ] || cp -p "$cmdline_txt" "$cmdline_txt.bedside-orig"
            # No kernel console (and so no login) on a serial port; the gadget's modules if
            # asked. Only our own modules-load= entry is replaced: any other stays.
            before=$(state_get cmdline_added)
            removed=$(state_get cmdline_removed)
            line=""
            for t in $(head -n 1 "$cmdline_txt"); do
                if is_serial_console "$t"; then removed="${removed:+$removed }$t"; continue; fi
                [ -n "$before" ] && [ "$t" = "$before" ] && continue
                line="${line:+$line }$t"
            done
            if [ -n "$added" ]; then line="$line $added"; fi
            printf '%s\n' "$line" > "$cmdline_txt"
            state_put cmdline_added "$added"
            state_put cmdline_removed "$removed"
        fi
    fi
    say "wrote the bedside block into $BOOT_DIR/config.txt (originals kept as *.bedside-orig); reboot to apply"
else
    say "Add these lines to $BOOT_DIR/config.txt (or run again with --apply-boot-config):"
    say ""
    printf '%s\n' "$block" | sed 's/^/    /'
    say ""
    say "and in $BOOT_DIR/cmdline.txt remove any console=serial0,115200 (no console on the serial port)."
    if [ -n "$added" ]; then say "For gadget serial also add $added after rootwait in cmdline.txt."; fi
fi
if [ "$RTC" = 0 ]; then
    say "No RTC: times stay 'unverified' until the clock is set. A Pi 5 has its own RTC: with its"
    say "battery fitted, install with --rtc (and --charge-rtc-battery if it is rechargeable)."
fi
case $LINK/$BOARD in
    gadget/*) say "Downloads: gadget serial on the USB data port ($PORT). That is the Zero's only USB data"
              say "port, so a USB stick has nowhere to go: use --link uart and an OTG hub for sticks." ;;
    */zero2w) say "Downloads: serial on GPIO14/15${PORT:+ ($PORT)}; a USB stick needs an OTG adapter or hub on the data port." ;;
    *) say "Downloads: serial on GPIO14/15${PORT:+ ($PORT)} and USB sticks in any USB-A port." ;;
esac

# Last, with everything configured: systemd reloaded, the service started. A start that fails
# leaves the install complete, and says where the reason is (the daemon logs it at err).
started=none
if [ "$LIVE" = 1 ] && [ "$DRY" = 0 ]; then
    step "starting the service"
    run systemctl daemon-reload
    run udevadm control --reload-rules
    case $BOARD in zero2w|3|4|5) ;; *) run udevadm trigger --subsystem-match=gpio --action=change ;; esac
    # Enabled is not started: without this a stick's update would wait for the next boot
    # (the stick export, started by udev, works at once and copies it).
    if ! run systemctl start bedside-update.path; then
        say "bedside-update.path did not start: software updates by stick wait for the next boot"
    fi
    if [ "$START" = 1 ]; then
        if run systemctl restart bedside.service; then started=yes; else started=failed; fi
    fi
elif [ "$START" = 1 ]; then
    say "systemd is not running here: the service is enabled and starts at the next boot"
fi

step "next"
if [ "$started" = failed ]; then
    say "The install is complete (every step above), but the service did not start. Its reason:"
    say "     journalctl -u bedside -b -p warning      (and: systemctl status bedside)"
    say "Fix what it says (docs/install.md, \"Troubleshooting\"), then: systemctl restart bedside"
fi
say "1. Edit $CONF_DIR/bedside.toml (unit id, time zone, awake window), then:"
say "     sudo -u $USER_NAME $VENV_DIR/bin/bedside config check $CONF_DIR/bedside.toml"
say "2. Follow the commissioning checklist: $PREFIX/share/doc/commissioning.md"
say "   (ward secret, seal key, clock, a test press)."
say "3. Reboot, then: systemctl status bedside   and   journalctl -u bedside"
if [ "$LOCKDOWN" = 1 ]; then
    say "NOTE: from the next reboot nobody can log in (console, serial, SSH) and keyboards are"
    say "ignored. Finish commissioning first, or install with --no-lockdown and lock down last."
fi
if [ "$started" = failed ]; then exit 3; fi
