"""Infrastructure: settings, the ASGI wrapper, the list cache, the event push to realtime."""
