#!/bin/sh
# The compose gateway's healthcheck: exit 0 when nginx routes GET /healthz to a function that
# answers 200, so a gateway that cannot resolve or reach the functions shows as unhealthy.
# The official nginx:alpine image has busybox's wget; Debian-based ones may have curl, or bash.
url=http://127.0.0.1/healthz
if command -v wget > /dev/null 2>&1; then
    exec wget -q -T 3 -O /dev/null "$url"
elif command -v curl > /dev/null 2>&1; then
    exec curl -fsS -m 3 -o /dev/null "$url"
elif command -v bash > /dev/null 2>&1; then
    # shellcheck disable=SC2016 # expanded by bash
    exec bash -c 'exec 3<> /dev/tcp/127.0.0.1/80 || exit 1
        printf "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3
        IFS= read -r -t 3 status <&3 || exit 1
        case $status in "HTTP/1."?" 200 "*) exit 0 ;; esac
        echo "gateway: $status" >&2; exit 1'
fi
echo "healthcheck.sh: no wget, curl or bash in this image" >&2
exit 1
