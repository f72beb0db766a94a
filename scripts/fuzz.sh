#!/usr/bin/env bash
# Builds the libFuzzer targets (clang) and runs each for FUZZ_TIME seconds
# on a scratch copy of its seed corpus. Prints "fuzz ok NAME" per clean run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
FUZZ_TIME=${FUZZ_TIME:-60}
out=build/fuzz
mkdir -p "$out"
CXX=${FUZZ_CXX:-clang++}
FLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -std=c++17 -Wall -Wextra -Werror -Isrc"
proto="src/protocol/frame_parser.cpp src/protocol/utf8_validator.cpp src/protocol/masking.cpp src/protocol/close_code.cpp"
declare -A srcs=(
  [frame_parser]="tests/fuzz/fuzz_frame_parser.cpp $proto src/protocol/deflate.cpp -lz"
  [handshake]="tests/fuzz/fuzz_handshake.cpp src/protocol/handshake.cpp src/protocol/deflate.cpp -lssl -lcrypto -lz"
  [pusher]="tests/fuzz/fuzz_pusher.cpp src/pusher/pusher_api.cpp src/pusher/pusher_api_auth.cpp src/pusher/pusher_api_render.cpp src/pusher/pusher_auth.cpp src/pusher/pusher_channel.cpp src/pusher/pusher_frames.cpp src/pusher/pusher_json.cpp src/pusher/pusher_protocol.cpp src/pusher/pusher_subscribe.cpp -lssl -lcrypto"
  [backend]="tests/fuzz/fuzz_backend.cpp src/backend/backend_conn.cpp src/backend/backend_conn_control.cpp src/backend/backend_headers.cpp src/backend/base64.cpp src/backend/grip_control.cpp src/backend/grip_publish.cpp src/backend/grip_sig.cpp src/backend/ws_events.cpp src/protocol/utf8_validator.cpp src/protocol/close_code.cpp -lssl -lcrypto"
  [chat]="tests/fuzz/fuzz_chat.cpp src/chat/*.cpp src/engine/*.cpp src/runtime/bus_id.cpp src/backend/base64.cpp src/protocol/frame_encoder.cpp src/protocol/masking.cpp -lssl -lcrypto"
)
declare -A maxlen=([frame_parser]=4096 [handshake]=1024 [chat]=4096 [pusher]=4096 [backend]=4096)
# RapidJSON 1.1.0 (Debian's) does pointer arithmetic on its empty internal
# stack (null + 0 bytes: harmless, but clang's pointer-overflow check flags
# it inside the library's header); everything else stays checked.
declare -A extra=([chat]="-fno-sanitize=pointer-overflow" [pusher]="-fno-sanitize=pointer-overflow" [backend]="-fno-sanitize=pointer-overflow")
# FUZZ_PARALLEL=1 runs every target at once (the hour-long run: 5 targets in
# one hour of wall time instead of five); the default runs them in turn.
FUZZ_PARALLEL=${FUZZ_PARALLEL:-0}
run_one() {
  local name=$1 bin=$out/fuzz_$1 work=$out/corpus_$1
  if "$bin" "$work" -max_total_time="$FUZZ_TIME" -max_len="${maxlen[$name]}" -print_final_stats=1 \
       -artifact_prefix="$out/crash_${name}_" >"$out/$name.log" 2>&1; then
    echo "fuzz ok $name: $(grep -E '^stat::number_of_executed_units' "$out/$name.log" | awk '{print $2}') execs in ${FUZZ_TIME}s"
  else
    echo "fuzz FAILED $name (see $out/$name.log)"; tail -30 "$out/$name.log"; return 1
  fi
}
for name in "${!srcs[@]}"; do
  bin=$out/fuzz_$name
  # shellcheck disable=SC2086
  $CXX $FLAGS ${extra[$name]:-} ${srcs[$name]} -o "$bin"
  work=$out/corpus_$name
  rm -rf "$work"; mkdir -p "$work"
  cp tests/fuzz/corpus/"$name"/* "$work"/ 2>/dev/null || true
done
status=0
if [ "$FUZZ_PARALLEL" = 1 ]; then
  pids=()
  for name in "${!srcs[@]}"; do run_one "$name" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || status=1; done
else
  for name in "${!srcs[@]}"; do run_one "$name" || status=1; done
fi
exit $status
