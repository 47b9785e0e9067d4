#!/usr/bin/env bash
# The README's main command: set up, build Realm and run its main job on the
# default model. Until `realm serve` lands, the main job answers a prompt
# (REALM_PROMPT, default: the capital of France) with the model's chat template.
source "$(dirname "$0")/lib.sh"

apt_ensure "${REALM_BUILD_PACKAGES[@]}"
model_ensure
log "building Realm (build/)"
cmake_build "$REALM_ROOT/build" -DCMAKE_BUILD_TYPE=Release -DREALM_TESTS=OFF
prompt="${REALM_PROMPT:-What is the capital of France?}"
log "realm generate --chat: $prompt"
"$REALM_ROOT/build/realm" generate "$REALM_MODEL_PATH" --chat \
    --system "You are a helpful assistant." -p "$prompt" -n 128 --temp 0
