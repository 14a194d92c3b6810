"""Websocket origin check: a browser's Origin must be one of ALLOWED_HOSTS."""

from channels.security.websocket import OriginValidator
from django.conf import settings
from django.http.request import validate_host


class AllowedHostsOriginValidator(OriginValidator):
    """Refuses the handshake when the Origin's host is not in ALLOWED_HOSTS.

    Unlike Channels' own, it lets through clients that send no Origin: Origin protects browsers
    from cross-site websocket hijacking, programs are not browsers, and they still need a token.
    """

    def __init__(self, application):
        super().__init__(application, settings.ALLOWED_HOSTS)

    def valid_origin(self, parsed_origin) -> bool:
        if parsed_origin is None:
            return True
        host = parsed_origin.hostname or ""
        if ":" in host:  # IPv6: ALLOWED_HOSTS writes it as Host headers do, in brackets
            host = f"[{host}]"
        return bool(host) and validate_host(host, settings.ALLOWED_HOSTS)
