#!/bin/sh
# Starts the secured profile's broker (docker-compose.yml: kafka-secured; apache/kafka:4.1.1 as its
# appuser). Formats the log directory once, storing the pipeline's SCRAM users with the passwords
# certs-secured made, then becomes the broker. On the first start the ACLs of README "Least
# privilege" are created beside it through the loopback-only BROKER listener, and a marker in the log
# directory records them; the healthcheck waits for the marker, so the programs never start before
# their rights exist. Users, topic and group are the programs' defaults; set the variables below when
# the programs are configured otherwise.
#
# composeSecured.test.ts runs this script on this machine: KAFKA_HOME (bin/ with shims over the test
# suite's Kafka jars), KAFKA_SECURED_CONFIG and SECURED_CERTS point it there; in the container all
# three keep their defaults.
set -eu

home=${KAFKA_HOME:-/opt/kafka}
config=${KAFKA_SECURED_CONFIG:-/deploy/kafka.properties}
certs=${SECURED_CERTS:-/certs}
cluster_id=${CLUSTER_ID:?CLUSTER_ID: 22 characters, e.g. from kafka-storage.sh random-uuid}
producer=${KAFKA_PRODUCER_USER:-orders_producer}
consumer=${KAFKA_CONSUMER_USER:-orders_consumer}
topic=${KAFKA_TOPIC:-2025em1100506_food_orders_raw}
dlq=${KAFKA_DLQ_TOPIC:-${topic%_raw}_dlq}
group=${KAFKA_CONSUMER_GROUP:-${topic}_lake_writer}

setting() { sed -n "s/^$1=//p" "$config" | tail -n 1; }
data=$(setting log.dirs)
admin=$(setting advertised.listeners | tr ',' '\n' | sed -n 's|^BROKER://||p')
marker="$data/secured-acls.done"

if [ ! -f "$data/meta.properties" ]; then
  # The passwords are on this command line for the few seconds the format takes, inside the container.
  "$home/bin/kafka-storage.sh" format --ignore-formatted --cluster-id "$cluster_id" --config "$config" \
    --add-scram "SCRAM-SHA-512=[name=$producer,password=$(cat "$certs/kafka/producer_password")]" \
    --add-scram "SCRAM-SHA-512=[name=$consumer,password=$(cat "$certs/kafka/consumer_password")]"
fi

acl() {
  "$home/bin/kafka-acls.sh" --bootstrap-server "$admin" --add "$@" > /dev/null
}

create_acls() {
  # The broker is still starting: the first call waits for it, and is retried if it gives up.
  tries=0
  until acl --allow-principal "User:$producer" --operation WRITE --operation DESCRIBE --operation CREATE --topic "$topic" --topic "$dlq"; do
    tries=$((tries + 1))
    if [ "$tries" -ge 10 ]; then
      echo "kafka-start: could not create the ACLs; the healthcheck stays unhealthy" >&2
      return 1
    fi
    sleep 3
  done
  acl --allow-principal "User:$consumer" --operation READ --topic "$topic" --group "$group"
  acl --allow-principal "User:$consumer" --operation DESCRIBE --topic "$topic" --topic "$dlq"
  acl --allow-principal "User:$consumer" --operation WRITE --topic "$dlq"
  touch "$marker"
  echo "kafka-start: ACLs created for $producer and $consumer"
}

if [ ! -f "$marker" ]; then
  create_acls &
fi
# The broker takes this process over: docker's SIGTERM reaches it directly (controlled shutdown).
exec "$home/bin/kafka-server-start.sh" "$config"
