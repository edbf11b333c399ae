#!/usr/bin/env bash
# Installs what hallmon needs on Debian 12 (as root) into ./.venv.
#   scripts/setup.sh demo   redis-server + the package
#   scripts/setup.sh test   + the real peers the tests talk to (upsd, snmpd,
#                           Prometheus, Alertmanager, blackbox_exporter, Chromium for the
#                           console's browser tests) + test deps
set -euo pipefail
mode=${1:-demo}
cd "$(dirname "$0")/.."

py=${PYTHON:-python3}
debs=(redis-server make)
# Debian's own python3 needs python3-venv for `-m venv`
"$py" -c "import ensurepip" 2>/dev/null || debs+=(python3-venv)
if [ "$mode" = test ]; then
  debs+=(nut-server nut-client snmpd snmp prometheus prometheus-alertmanager
         prometheus-blackbox-exporter chromium fonts-noto-cjk
         slapd ldap-utils postgresql zabbix-server-pgsql zabbix-frontend-php php-pgsql php-cli)
fi
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=900 update -qq
  apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || "$py" -m venv .venv
extra=""
[ "$mode" = test ] && extra="[test]"
stamp=".venv/.installed$extra"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --disable-pip-version-check -e ".$extra"
  touch "$stamp"
fi
