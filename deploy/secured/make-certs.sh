#!/bin/sh
# The secured compose profile's certificates and passwords, made once into the directory given (in
# docker-compose.yml the `secured_certs` volume at /certs, by the one-shot `certs-secured` service):
# a CA, one server certificate each for PostgreSQL and Kafka (their compose names, and localhost for
# the host), and a random password per account. openssl only: the postgres:15 image that runs it has
# it (Debian's ssl-cert, which postgresql-common depends on). A directory already made is left as it
# is, so a restart never changes what the servers and their data volumes already hold.
#
# Each reader gets a directory of its own, readable by its group only; compose gives each container
# that group (group_add), so the producer cannot read the consumer's password or a server key:
#   ca.crt                     everyone
#   postgres/  POSTGRES_GID    999, the postgres image's postgres group: server key and certificate,
#                              the superuser's and the capture role's passwords. PostgreSQL takes a key
#                              owned by root with mode 0640 at most (or its own, with 0600 at most).
#   kafka/     KAFKA_GID       the broker: PEM keystore (PKCS#8 key, then certificate), SCRAM passwords
#   producer/  PRODUCER_GID    the producer: its PostgreSQL and Kafka passwords
#   consumer/  CONSUMER_GID    the consumer: its Kafka password
# Run by someone other than root (on a host, to try it), everything belongs to the caller, mode 0600.
#
# Usage: make-certs.sh DIR
set -eu

dir=${1:?usage: make-certs.sh DIR}
POSTGRES_GID=${POSTGRES_GID:-999}
KAFKA_GID=${KAFKA_GID:-2101}
PRODUCER_GID=${PRODUCER_GID:-2102}
CONSUMER_GID=${CONSUMER_GID:-2103}

# Written last: a run cut short is redone whole, never half used.
if [ -f "$dir/.complete" ]; then
  echo "make-certs: $dir is already made; nothing to do"
  exit 0
fi

umask 077
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
as_root=false
[ "$(id -u)" = 0 ] && as_root=true

# Owner root, readable by one group (root only), or the caller's alone.
restrict() {
  gid=$1
  shift
  if $as_root; then
    chown "0:$gid" "$@"
    chmod 0640 "$@"
  else
    chmod 0600 "$@"
  fi
}

reader_dir() {
  mkdir -p "$dir/$1"
  if $as_root; then
    chown "0:$2" "$dir/$1"
    chmod 0750 "$dir/$1"
  else
    chmod 0700 "$dir/$1"
  fi
}

# PKCS#8 whatever the openssl version (Kafka's PEM keystore takes nothing else).
new_key() {
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2> /dev/null
}

password() {
  openssl rand -hex 24
}

cat > "$work/ca.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = food-orders secured stack CA
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
new_key "$work/ca.key"
openssl req -x509 -config "$work/ca.cnf" -extensions ca -key "$work/ca.key" -days 3650 -out "$work/ca.crt"

# server NAME DNS... : a key and a certificate the CA signed for exactly these names.
server() {
  name=$1
  shift
  sans=$(printf 'DNS:%s,' "$@")
  printf 'subjectAltName = %s\nkeyUsage = critical, digitalSignature, keyEncipherment\nextendedKeyUsage = serverAuth\nbasicConstraints = CA:FALSE\n' \
    "${sans%,}" > "$work/$name.ext"
  new_key "$work/$name.key"
  openssl req -new -key "$work/$name.key" -subj "/CN=$1" -out "$work/$name.csr"
  openssl x509 -req -in "$work/$name.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
    -days 825 -extfile "$work/$name.ext" -out "$work/$name.crt" 2> /dev/null
}
server postgres postgres localhost
server kafka kafka localhost

install -m 0644 "$work/ca.crt" "$dir/ca.crt"
install -m 0600 "$work/ca.key" "$dir/ca.key"

reader_dir postgres "$POSTGRES_GID"
install -m 0644 "$work/postgres.crt" "$dir/postgres/server.crt"
cp "$work/postgres.key" "$dir/postgres/server.key"
password > "$dir/postgres/superuser_password"
capture=$(password)
printf '%s\n' "$capture" > "$dir/postgres/capture_password"
restrict "$POSTGRES_GID" "$dir/postgres/server.key" "$dir/postgres/superuser_password" "$dir/postgres/capture_password"

reader_dir kafka "$KAFKA_GID"
cat "$work/kafka.key" "$work/kafka.crt" > "$dir/kafka/server.keystore.pem"
producer=$(password)
consumer=$(password)
printf '%s\n' "$producer" > "$dir/kafka/producer_password"
printf '%s\n' "$consumer" > "$dir/kafka/consumer_password"
restrict "$KAFKA_GID" "$dir/kafka/server.keystore.pem" "$dir/kafka/producer_password" "$dir/kafka/consumer_password"

reader_dir producer "$PRODUCER_GID"
printf '%s\n' "$capture" > "$dir/producer/postgres_password"
printf '%s\n' "$producer" > "$dir/producer/kafka_password"
restrict "$PRODUCER_GID" "$dir/producer/postgres_password" "$dir/producer/kafka_password"

reader_dir consumer "$CONSUMER_GID"
printf '%s\n' "$consumer" > "$dir/consumer/kafka_password"
restrict "$CONSUMER_GID" "$dir/consumer/kafka_password"

chmod 0755 "$dir"
touch "$dir/.complete"
echo "make-certs: made the CA, server certificates (postgres, kafka, localhost) and passwords in $dir"
