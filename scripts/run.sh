#!/usr/bin/env bash
# The README's main command: set up, build Realm, fetch the default model,
# make sure a demo tenant exists, give it a fresh API key, and serve the
# default model on http://127.0.0.1:$REALM_PORT (default 8080) until Ctrl-C.
source "$(dirname "$0")/lib.sh"

apt_ensure "${REALM_BUILD_PACKAGES[@]}"
model_ensure
log "building Realm (build/)"
cmake_build "$REALM_ROOT/build" -DCMAKE_BUILD_TYPE=Release -DREALM_TESTS=OFF

realm="$REALM_ROOT/build/realm"
db="${REALM_DB:-$REALM_CACHE/realm.db}"
port="${REALM_PORT:-8080}"
mkdir -p "$(dirname "$db")"
if ! "$realm" tenant --db "$db" list | awk 'NR > 1 {print $2}' | grep -qx demo; then
    "$realm" tenant --db "$db" create demo >/dev/null
fi
key="$("$realm" tenant --db "$db" key-create demo --label run.sh 2>/dev/null | tail -n 1)"

log "serving $REALM_MODEL_PATH on http://127.0.0.1:$port (tenant 'demo', database $db)"
cat <<MSG
Try it:
  curl -s http://127.0.0.1:$port/v1/chat/completions -H "Authorization: Bearer $key" \\
    -d '{"model":"default","temperature":0,"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"What is the capital of France?"}]}'
MSG
exec "$realm" serve --model "$REALM_MODEL_PATH" --db "$db" --port "$port"
