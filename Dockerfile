# syntax=docker/dockerfile:1
# One image for every process of the service: web (gunicorn, the default command),
# migrate, Celery worker and Celery beat (docker-compose.yml picks the command).
# Both stages must use the same Python image: the venv is copied across as is.
ARG PYTHON_IMAGE=python:3.12-slim

# --- builder: runtime dependencies into a self-contained venv -------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1
# Every runtime dependency ships a wheel (psycopg[binary] bundles libpq; WeasyPrint is
# pure Python over Pango, installed below), so no compiler is needed. Only requirements.txt: test and lint tools stay out of the image.
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/python -m pip install --no-cache-dir --upgrade pip \
 && /opt/venv/bin/python -m pip install --no-cache-dir -r /tmp/requirements.txt

# --- runtime -----------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    BILLING_IMAGE=1 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus

# WeasyPrint (invoice PDFs) needs Pango and its fonts at run time; nothing else links a
# system library. The process runs as a fixed, unprivileged uid; the code and static
# files stay owned by root, so the process cannot rewrite them.
RUN apt-get update \
 && apt-get install --no-install-recommends -y libpango-1.0-0 libpangoft2-1.0-0 \
      libharfbuzz-subset0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home \
      --shell /usr/sbin/nologin --no-log-init app \
 && mkdir -p "$PROMETHEUS_MULTIPROC_DIR" \
 && chown app:app "$PROMETHEUS_MULTIPROC_DIR"

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
COPY . /app

# Production settings refuse to load without their secrets. collectstatic uses none of
# them: the keys are random, made inside this RUN, and the addresses name nothing
# (.invalid). They live only in this RUN's environment (no ENV, no ARG); and since the
# image's history records this command's text, no value of a secret is written here.
RUN DJANGO_SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    FIELD_ENCRYPTION_KEYS="$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
    DATABASE_URL=postgres://collectstatic.invalid/none \
    DJANGO_ALLOWED_HOSTS=collectstatic.invalid \
    python manage.py collectstatic --noinput

USER 10001:10001

EXPOSE 8000

# No curl in slim: stdlib only. Sends a Host header Django accepts (the first entry of
# DJANGO_ALLOWED_HOSTS), because a bare 127.0.0.1 is refused when it is not listed.
# Proxies are bypassed so an HTTP_PROXY in the environment cannot swallow the probe.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request as r; hosts = [h.strip().lstrip('.') for h in os.environ.get('DJANGO_ALLOWED_HOSTS', '').split(',') if h.strip() not in ('', '*')]; req = r.Request('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/health/live/', headers={'Host': (hosts or ['localhost'])[0]}); sys.exit(0 if r.build_opener(r.ProxyHandler({})).open(req, timeout=4).status == 200 else 1)"]

# sh -c so WEB_CONCURRENCY, PORT and WEB_BIND_ADDRESS expand; exec so gunicorn is PID 1
# and gets SIGTERM. PORT and WEB_BIND_ADDRESS matter only where the container shares the
# host's network (`--network host`), e.g. 127.0.0.1 and a free port.
# prometheus_client requires the multiprocess directory to be emptied before start
# (a restarted container keeps its filesystem).
CMD ["sh", "-c", "rm -rf \"${PROMETHEUS_MULTIPROC_DIR:?}\"/* && exec gunicorn config.wsgi:application --bind \"${WEB_BIND_ADDRESS:-0.0.0.0}:${PORT:-8000}\" --workers ${WEB_CONCURRENCY:-3} --threads ${WEB_THREADS:-8} -c config/gunicorn.conf.py"]
