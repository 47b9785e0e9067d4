#!/usr/bin/env bash
# The README's main command: set up, build Realm and run its main job on the
# default model. Until the forward pass lands (issue 4) the main job is to load
# and validate the default model and print what it holds.
source "$(dirname "$0")/lib.sh"

apt_ensure "${REALM_BUILD_PACKAGES[@]}"
model_ensure
log "building Realm (build/)"
cmake_build "$REALM_ROOT/build" -DCMAKE_BUILD_TYPE=Release -DREALM_TESTS=OFF
log "realm inspect $REALM_MODEL_PATH"
"$REALM_ROOT/build/realm" inspect "$REALM_MODEL_PATH"
