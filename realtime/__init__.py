"""The realtime service: Django Channels serving /ws/notifications/ (the realtime issue)."""
