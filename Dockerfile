# One image for every role: each function, realtime, the worker, Beat and the migrate step.
# docker-compose.yml chooses the role with the command; the default serves the projects function.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /venv
COPY requirements.txt /tmp/requirements.txt
RUN /venv/bin/pip install --requirement /tmp/requirements.txt

FROM python:3.11-slim-bookworm
ENV PATH=/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=common.infra.settings \
    DEBUG=false
RUN groupadd --system --gid 10001 taskwire \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin taskwire \
    && mkdir /var/lib/taskwire && chown 10001:10001 /var/lib/taskwire
COPY --from=build /venv /venv
WORKDIR /app
# The code stays root-owned: the app user can read it, not change it; it writes only to
# /var/lib/taskwire (Beat's schedule state, on a volume in compose).
COPY . /app
USER 10001:10001
EXPOSE 8000
CMD ["uvicorn", "functions.projects.handler:application", "--host", "0.0.0.0", "--port", "8000"]
