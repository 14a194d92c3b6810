"""The shared Django core of Taskwire: settings, models, services, selectors and API glue."""
