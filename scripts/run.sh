#!/usr/bin/env bash
# `make run`: seeds the demo, then serves the API and admin (gunicorn), a Celery worker,
# Celery beat and, when no real STRIPE_SECRET_KEY is set, localstripe as the Stripe
# emulator, all bound to 127.0.0.1. Each runs under `supervise`: one that exits is
# restarted (after 2 s, up to 30 s while it keeps dying at once) and says so, so the
# others keep serving. Ctrl-C stops every one of them.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=.venv/bin
PORT=${PORT:-8000}
STRIPE_EMULATOR_PORT=${STRIPE_EMULATOR_PORT:-8420}
mkdir -p .run
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-config.settings.local}
export PROMETHEUS_MULTIPROC_DIR="$PWD/.run/prometheus"
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"

pids=()
# Tells the supervisors below that an exit is the stack stopping, not a crash.
STOPPING=.run/stopping
rm -f "$STOPPING"
stop() {
  trap - INT TERM EXIT
  echo; echo "Stopping..."
  touch "$STOPPING"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

# supervise NAME COMMAND...: runs COMMAND in the background and starts it again whenever
# it exits, saying so. Its pid goes to `pids`; stopping it (TERM or INT) stops COMMAND.
supervise() {
  local name=$1; shift
  (
    child=
    trap '[[ -n "$child" ]] && kill "$child" 2>/dev/null; wait 2>/dev/null; exit 0' INT TERM
    delay=2
    while true; do
      started=$SECONDS
      "$@" &
      child=$!
      status=0
      wait "$child" || status=$?
      child=
      # Ctrl-C reaches every process at once: give `stop` a moment to say so.
      sleep 0.5
      if [[ -e "$STOPPING" ]]; then exit 0; fi
      # A process that ran for a while gets the short delay again.
      if (( SECONDS - started >= 60 )); then delay=2; fi
      echo "run.sh: $name exited (status $status); restarting it in ${delay}s" >&2
      sleep "$delay" &
      child=$!
      wait "$child" || true
      delay=$(( delay * 2 > 30 ? 30 : delay * 2 ))
    done
  ) &
  pids+=($!)
}

if [[ -z "${STRIPE_SECRET_KEY:-}" ]]; then
  export STRIPE_SECRET_KEY="sk_test_localstripe0000000000000000"
  export STRIPE_API_BASE="http://127.0.0.1:${STRIPE_EMULATOR_PORT}"
  export STRIPE_ACCOUNT_ID="acct_localstripe"
  export STRIPE_WEBHOOK_SECRET=${STRIPE_WEBHOOK_SECRET:-whsec_localstripe_0000000000000000000000}
  USING_LOCALSTRIPE=1
  echo "No STRIPE_SECRET_KEY: starting localstripe on $STRIPE_API_BASE"
  supervise localstripe $BIN/python -m tests.fakes.localstripe_server \
    --port "$STRIPE_EMULATOR_PORT" --state .run/localstripe.pickle
  for _ in $(seq 50); do
    curl -fs -o /dev/null -H "Authorization: Bearer $STRIPE_SECRET_KEY" "$STRIPE_API_BASE/v1/customers" && break
    sleep 0.2
  done
fi

$BIN/python manage.py collectstatic --noinput -v 0
$BIN/python manage.py seed_demo

supervise web $BIN/gunicorn config.wsgi:application --bind "127.0.0.1:${PORT}" \
  --workers 2 --threads 4 -c config/gunicorn.conf.py
# The worker reconnects by itself when the broker restarts (README "Operations"); the
# supervisor is for whatever else ends it.
supervise worker $BIN/celery -A config worker --loglevel INFO --concurrency 2
supervise beat $BIN/celery -A config beat --loglevel INFO --schedule .run/celerybeat-schedule

for _ in $(seq 50); do
  curl -fs -o /dev/null "http://127.0.0.1:${PORT}/health/live/" && break
  sleep 0.2
done
if [[ -n "${USING_LOCALSTRIPE:-}" ]]; then
  # The emulator posts its events to us, signed with our secret, like Stripe would.
  curl -fs -o /dev/null -X POST "$STRIPE_API_BASE/_config/webhooks/billing" \
    -d "url=http://127.0.0.1:${PORT}/webhooks/stripe/" \
    -d "secret=${STRIPE_WEBHOOK_SECRET%%,*}" \
    && echo "localstripe posts its webhooks to http://127.0.0.1:${PORT}/webhooks/stripe/"
fi
cat <<MSG

  API       http://127.0.0.1:${PORT}/api/v1/   (docs: /api/docs/)
  Admin     http://127.0.0.1:${PORT}/admin/
  Health    http://127.0.0.1:${PORT}/health/ready/   Metrics: /metrics
  A process that exits is restarted. Ctrl-C stops everything.

MSG
# The supervisors run until stopped; should one of them end anyway, stop the rest.
wait -n "${pids[@]}"
echo "run.sh: a supervisor ended unexpectedly" >&2
