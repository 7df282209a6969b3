#!/bin/sh
# test-deps.sh installs what the integration tests need and is missing:
# MariaDB's server binaries (mariadbd, mariadb-install-db), Chromium (and a
# CJK font) for the dashboard's headless browser test, and OpenSSH's
# sftp-server, against which remote's upload test checks that secrets are
# never readable while they are written. The tests
# start their own throwaway server as the current user, so the package's
# service must not be started here: there is no systemd on CI hosts, and a
# system-wide server would only hold port 3306 and memory. A temporary
# policy-rc.d that exits 101 tells Debian's maintainer scripts "not allowed".
#
# Idempotent and quiet: when everything is there it prints nothing.
# Debian/Ubuntu only; run it as root (make ci does).
set -eu

have() { command -v "$1" >/dev/null 2>&1; }

# The server binaries live in /usr/sbin, which a non-root PATH may lack.
PATH="$PATH:/usr/sbin:/sbin"
pkgs=""
if ! have mariadbd || ! have mariadb-install-db; then
	pkgs="mariadb-server"
fi
if ! have chromium; then
	pkgs="$pkgs chromium"
fi
if [ ! -x /usr/lib/openssh/sftp-server ]; then
	pkgs="$pkgs openssh-sftp-server"
fi
# A CJK font, so that the browser test's screenshots of the Chinese page
# show characters rather than boxes (1.6 MB).
if have dpkg && ! dpkg -s fonts-wqy-microhei >/dev/null 2>&1; then
	pkgs="$pkgs fonts-wqy-microhei"
fi
if [ -z "$pkgs" ]; then
	exit 0
fi

if ! have apt-get; then
	echo "test-deps.sh: install$pkgs with this system's package manager" >&2
	exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "test-deps.sh: run as root to install$pkgs" >&2
	exit 1
fi

policy=/usr/sbin/policy-rc.d
saved=""
if [ -e "$policy" ]; then
	saved=$(mktemp)
	cp -p "$policy" "$saved"
fi
restore() {
	if [ -n "$saved" ]; then
		mv -f "$saved" "$policy"
	else
		rm -f "$policy"
	fi
}
trap restore EXIT
trap 'exit 1' INT TERM HUP
printf '#!/bin/sh\n# test-deps.sh: no service starts while it installs.\nexit 101\n' >"$policy"
chmod 0755 "$policy"

export DEBIAN_FRONTEND=noninteractive
echo "test-deps.sh: installing$pkgs" >&2
apt_log=$(mktemp)
if ! { apt-get -qq update && apt-get -qq install -y --no-install-recommends $pkgs; } >"$apt_log" 2>&1; then
	cat "$apt_log" >&2
	rm -f "$apt_log"
	echo "test-deps.sh: installing$pkgs failed" >&2
	exit 1
fi
rm -f "$apt_log"
