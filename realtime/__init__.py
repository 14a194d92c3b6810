"""The realtime service: Django Channels serving /ws/notifications/."""
