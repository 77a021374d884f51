#!/bin/sh
# Certificates for the secure profile, for local use (`make certs`): a CA, the server's
# certificate (frontend and internode: names temporal, localhost, 127.0.0.1), and one client
# certificate each for the worker, the Web UI and operators (admin: the setup job, `rig`, the
# `temporal` CLI). Usage: make-certs.sh [OUT_DIR] [CA_DIR]. OUT_DIR (default .certs) is what
# compose mounts; the CA's key stays in CA_DIR (default .certs-ca), outside it. An existing CA is
# kept, so re-running issues new certificates under the same CA. In production, use your PKI.
set -eu

OUT=${1:-.certs}
CA=${2:-.certs-ca}
DAYS=${RIG_CERT_DAYS:-397}
mkdir -p "$OUT" "$CA"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

if [ ! -f "$CA/ca.key" ] || [ ! -f "$CA/ca.pem" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -days 3650 \
        -keyout "$CA/ca.key" -out "$CA/ca.pem" -subj "/CN=risk-rig local CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    chmod 600 "$CA/ca.key"
fi
cp "$CA/ca.pem" "$OUT/ca.pem"

# issue NAME "EXTENSIONS": NAME.pem and NAME.key in OUT, signed by the CA.
issue() {
    name=$1
    printf '%s\n' "$2" > "$TMP/$name.ext"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
        -keyout "$OUT/$name.key" -out "$TMP/$name.csr" -subj "/CN=$name" 2>/dev/null
    openssl x509 -req -in "$TMP/$name.csr" -CA "$CA/ca.pem" -CAkey "$CA/ca.key" -CAcreateserial \
        -sha256 -days "$DAYS" -extfile "$TMP/$name.ext" -out "$OUT/$name.pem" 2>/dev/null
    # Readable by the containers' own users (the worker runs as uid 10001): local use only.
    chmod 644 "$OUT/$name.key" "$OUT/$name.pem"
}

issue server "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:temporal,DNS:localhost,IP:127.0.0.1"
for client in worker ui admin; do
    issue "$client" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
done
echo "certificates in $OUT (CA key in $CA): ca.pem, server, worker, ui, admin"
