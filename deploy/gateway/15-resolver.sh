#!/bin/sh
# The compose gateway's resolver, written before nginx starts (the nginx image runs the
# executable /docker-entrypoint.d/*.sh first). deploy/nginx.conf names each function by a
# variable, so nginx asks this resolver per request and follows a container that restarts on a
# new address. The container's first nameserver is its network's DNS, which knows the service
# names: 127.0.0.11 under Docker, the network's gateway address under podman (dnsname or
# aardvark-dns); a later one (the host's) would not know them, so only the first is used.
set -eu

resolv=${TASKWIRE_RESOLV_CONF:-/etc/resolv.conf}  # (both overridable for its test)
out=${TASKWIRE_RESOLVER_CONF:-/etc/nginx/conf.d/00-resolver.conf}
nameserver=$(awk '$1 == "nameserver" { print $2; exit }' "$resolv")
if [ -z "$nameserver" ]; then
    echo "$0: no nameserver in $resolv: the gateway cannot find the functions" >&2
    exit 1
fi
case $nameserver in
    *:*) nameserver="[$nameserver]" ;;  # IPv6, as nginx writes it
esac
printf 'resolver %s valid=5s ipv6=off;\nresolver_timeout 5s;\n' "$nameserver" > "$out"
echo "$0: resolver $nameserver (in $out)"
