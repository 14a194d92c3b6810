"""The shared Django core of Taskwire, in three parts a newcomer can read off the tree:

- ``common.domain``: the Django app (label ``common``): models, services (every write), selectors
  (every read), events, access (who may see and do what), memberships, reminders, and the
  after-commit step (``effects``) that a write's events leave through.
- ``common.api``: the HTTP glue the functions share: serializers, filters, pagination, errors,
  authentication (one bearer parser), the health check and the URL conf.
- ``common.infra``: settings, the ASGI wrapper with its one request-size limit, the list cache
  package, the Redis push of events to the realtime service, static files and access logs.

A dependency points from api and infra to domain, never the other way, except the domain's
after-commit step, which hands its effects to the cache and the event push.
"""
