#!/usr/bin/env bash
# Installs the Debian packages the test suite and the lab use, when running as root and they are missing.
# No service is started by the install (policy-rc.d answers 101 while apt runs): daemons run only inside
# the lab's network namespaces, never in the root namespace.
set -euo pipefail
PKGS=(uftp tshark nftables iproute2 tcpdump tftp-hpa tftpd-hpa curl krb5-kdc krb5-admin-server krb5-user libkrb5-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing Debian packages (${missing[*]}) and not root; install them with apt-get" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created_policy=1
fi
trap '[ $created_policy = 1 ] && rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
