#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis (and RabbitMQ, when it is the broker) answer. Starts them when they are local and down;
# otherwise says exactly what is missing. Creates the database if it does not exist.
set -euo pipefail

DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/billing}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}

db_host=$(python3 -c "import sys,urllib.parse as u;print(u.urlparse(sys.argv[1]).hostname or '127.0.0.1')" "$DATABASE_URL")
db_port=$(python3 -c "import sys,urllib.parse as u;print(u.urlparse(sys.argv[1]).port or 5432)" "$DATABASE_URL")
db_user=$(python3 -c "import sys,urllib.parse as u;print(u.urlparse(sys.argv[1]).username or 'postgres')" "$DATABASE_URL")
db_name=$(python3 -c "import sys,urllib.parse as u;print(u.urlparse(sys.argv[1]).path.lstrip('/') or 'billing')" "$DATABASE_URL")
redis_host=$(python3 -c "import sys,urllib.parse as u;print(u.urlparse(sys.argv[1]).hostname or '127.0.0.1')" "$REDIS_URL")
redis_port=$(python3 -c "import sys,urllib.parse as u;print(u.urlparse(sys.argv[1]).port or 6379)" "$REDIS_URL")

is_local() { [[ "$1" == "127.0.0.1" || "$1" == "localhost" || "$1" == "::1" ]]; }

pg_up() { pg_isready -q -h "$db_host" -p "$db_port" 2>/dev/null; }
redis_up() { redis-cli -h "$redis_host" -p "$redis_port" ping 2>/dev/null | grep -q PONG; }

if ! pg_up; then
  if is_local "$db_host" && command -v pg_ctlcluster >/dev/null; then
    echo "PostgreSQL is down on $db_host:$db_port; starting it"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
    for _ in $(seq 30); do pg_up && break; sleep 1; done
  fi
  pg_up || { echo "PostgreSQL is not reachable at $db_host:$db_port (DATABASE_URL). Start it, or point DATABASE_URL at one." >&2; exit 1; }
fi

if ! redis_up; then
  if is_local "$redis_host" && command -v redis-server >/dev/null; then
    echo "Redis is down on $redis_host:$redis_port; starting it"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no
    for _ in $(seq 30); do redis_up && break; sleep 1; done
  fi
  redis_up || { echo "Redis is not reachable at $redis_host:$redis_port (REDIS_URL). Start it, or point REDIS_URL at one." >&2; exit 1; }
fi

# RabbitMQ: when it is the broker (CELERY_BROKER_URL=amqp://...), and for the tests that
# run Celery against it (they skip without it). Started when local, installed and down.
broker_url=${CELERY_BROKER_URL:-}
mq_host=127.0.0.1
mq_port=5672
if [[ "$broker_url" == amqp* || "$broker_url" == pyamqp* ]]; then
  mq_host=$(python3 -c "import sys,urllib.parse as u;print(u.urlparse(sys.argv[1]).hostname or '127.0.0.1')" "$broker_url")
  mq_port=$(python3 -c "import sys,urllib.parse as u;print(u.urlparse(sys.argv[1]).port or 5672)" "$broker_url")
fi
mq_up() { (exec 3<>"/dev/tcp/$mq_host/$mq_port") 2>/dev/null; }
if ! mq_up && is_local "$mq_host" && [[ "$mq_port" == 5672 ]] && command -v rabbitmq-server >/dev/null && [[ $(id -u) -eq 0 ]]; then
  echo "RabbitMQ is down on $mq_host:$mq_port; starting it"
  rabbitmq-server -detached >/dev/null 2>&1 || true
  for _ in $(seq 60); do mq_up && break; sleep 1; done
fi
if [[ "$broker_url" == amqp* || "$broker_url" == pyamqp* ]] && ! mq_up; then
  echo "RabbitMQ is not reachable at $mq_host:$mq_port (CELERY_BROKER_URL). Start it, or use Redis." >&2
  exit 1
fi

if ! psql -h "$db_host" -p "$db_port" -U "$db_user" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db_name'" | grep -q 1; then
  echo "Creating database $db_name"
  psql -h "$db_host" -p "$db_port" -U "$db_user" -d postgres -qc "CREATE DATABASE \"$db_name\""
fi
mq_state=$(mq_up && echo up || echo "not running (only needed with CELERY_BROKER_URL=amqp://)")
echo "PostgreSQL ($db_host:$db_port/$db_name) and Redis ($redis_host:$redis_port) are up; RabbitMQ ($mq_host:$mq_port) $mq_state"
