#!/usr/bin/env bash
# Runs every test suite and prints `N passed, N failed` last (summed over
# the suites). ONLY=unit|integration|fuzz|browser|pusher|chaos runs one kind.
# A suite that cannot build or start counts as one failure.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
BUILD=${BUILD:-build}
mkdir -p "$BUILD/logs"
total_pass=0
total_fail=0

record() {  # suite passed failed
  printf '== %-16s %d passed, %d failed\n' "$1" "$2" "$3"
  total_pass=$((total_pass + $2))
  total_fail=$((total_fail + $3))
}

cpputest_counts() {  # logfile -> "passed failed"
  local last; last=$(grep -E '^(OK|Errors) \(' "$1" | tail -1)
  if [[ $last =~ ^OK\ \(([0-9]+)\ tests,\ ([0-9]+)\ ran ]]; then
    echo "${BASH_REMATCH[2]} 0"
  elif [[ $last =~ ^Errors\ \(([0-9]+)\ failures,\ ([0-9]+)\ tests,\ ([0-9]+)\ ran ]]; then
    echo "$(( BASH_REMATCH[3] - BASH_REMATCH[1] )) ${BASH_REMATCH[1]}"
  else
    echo "0 1"
  fi
}

want() { [ -z "${ONLY:-}" ] || [ "$ONLY" = "$1" ]; }

if want unit; then
  echo "-- unit tests (ASan+UBSan)"
  if make -s "$BUILD/unit_tests" >"$BUILD/logs/unit-build.log" 2>&1; then
    ASAN_OPTIONS=detect_leaks=1 "$BUILD/unit_tests" >"$BUILD/logs/unit.log" 2>&1
    tail -3 "$BUILD/logs/unit.log"
    grep -E "^(Failure|.*error:)|^src|^tests" "$BUILD/logs/unit.log" | head -40
    read -r p f < <(cpputest_counts "$BUILD/logs/unit.log")
    record unit "$p" "$f"
  else
    tail -30 "$BUILD/logs/unit-build.log"; record unit 0 1
  fi
  echo "-- unit tests (TSan: queues, bus, hub, sessions)"
  if make -s "$BUILD/unit_tests_tsan" >"$BUILD/logs/tsan-build.log" 2>&1; then
    # TSan runs the concurrent groups; the rest already ran under ASan.
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" setarch "$(uname -m)" -R \
      "$BUILD/unit_tests_tsan" -sg OutboundQueue -sg ShmBus -sg ShmBusFile -sg ChatEngine -sg ChatConcurrency -sg ChatCidConcurrency -sg ChatCidEngine -sg Session -sg WakeBatch -sg DirectWrite -sg DirectWriteEncoded -sg HubThread -sg RedisBus -sg WorkerReserve -sg CloseRequest -sg ChannelEngine -sg PusherChannels -sg SessionFootprint -sg SessionPendingInput -sg PerIpTableConcurrency -sg PusherWebhookHttp -sg PusherWebhookResolver -sg WebhookHttps \
      >"$BUILD/logs/tsan.log" 2>&1
    tail -3 "$BUILD/logs/tsan.log"
    grep -E "WARNING: ThreadSanitizer|^Failure" "$BUILD/logs/tsan.log" | head -20
    read -r p f < <(cpputest_counts "$BUILD/logs/tsan.log")
    if grep -q "WARNING: ThreadSanitizer" "$BUILD/logs/tsan.log"; then f=$((f + 1)); fi
    record unit-tsan "$p" "$f"
  else
    tail -30 "$BUILD/logs/tsan-build.log"; record unit-tsan 0 1
  fi
fi

if want integration; then
  echo "-- integration tests (real Apache)"
  if make -s module >"$BUILD/logs/module-build.log" 2>&1; then
    /usr/bin/python3 tests/integration/run.py 2>&1 | tee "$BUILD/logs/integration.log" | grep -E "^(ok|FAIL)|Error|assert" | grep -v "^ok" | head -60
    last=$(tail -1 "$BUILD/logs/integration.log")
    if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
      record integration "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
    else
      tail -20 "$BUILD/logs/integration.log"; record integration 0 1
    fi
  else
    tail -30 "$BUILD/logs/module-build.log"; record integration 0 1
  fi
fi

if want fuzz && [ -d tests/fuzz ] && ls tests/fuzz/fuzz_*.cpp >/dev/null 2>&1; then
  echo "-- fuzz (short run)"
  if FUZZ_TIME=${FUZZ_TIME:-15} scripts/fuzz.sh >"$BUILD/logs/fuzz.log" 2>&1; then
    n=$(grep -c '^fuzz ok' "$BUILD/logs/fuzz.log"); record fuzz "$n" 0
  else
    grep -E "^fuzz|ERROR|SUMMARY" "$BUILD/logs/fuzz.log" | head -20
    n=$(grep -c '^fuzz ok' "$BUILD/logs/fuzz.log"); record fuzz "$n" 1
  fi
fi

if want browser && [ -f tests/browser/run.mjs ]; then
  echo "-- browser tests (Chromium)"
  if tests/browser/setup.sh >"$BUILD/logs/browser-setup.log" 2>&1 && make -s module >/dev/null 2>&1; then
    node tests/browser/run.mjs 2>&1 | tee "$BUILD/logs/browser.log" | grep -E "^(ok|FAIL)"
    last=$(tail -1 "$BUILD/logs/browser.log")
    if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
      record browser "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
    else
      tail -20 "$BUILD/logs/browser.log"; record browser 0 1
    fi
  else
    tail -20 "$BUILD/logs/browser-setup.log"; record browser 0 1
  fi
fi

if want pusher && [ -f tests/pusher/run.mjs ]; then
  echo "-- pusher (pusher-js, laravel-echo, the pusher library; two servers on Redis)"
  if PUSHER_NO_SOKETI=1 tests/pusher/setup.sh >"$BUILD/logs/pusher-setup.log" 2>&1 && make -s module >/dev/null 2>&1; then
    tests/pusher/module.sh 2>&1 | tee "$BUILD/logs/pusher.log" | grep -E "^(FAIL|skip)"
    last=$(tail -1 "$BUILD/logs/pusher.log")
    if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
      record pusher "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
    else
      tail -20 "$BUILD/logs/pusher.log"; record pusher 0 1
    fi
  else
    tail -20 "$BUILD/logs/pusher-setup.log"; record pusher 0 1
  fi
fi

if want chaos; then
  # The checker's self-test (each case one test), then a short chaos run
  # (one test): 200 clients, faults for CHAOS_TEST_TIME s (make chaos: longer).
  echo "-- chaos (${CHAOS_TEST_TIME:-60} s of restarts, kills and outages; shm bus and Redis)"
  if make -s module >"$BUILD/logs/chaos-build.log" 2>&1; then
    /usr/bin/python3 tests/chaos/test_check.py >"$BUILD/logs/chaos-check.log" 2>&1
    grep "^FAIL" "$BUILD/logs/chaos-check.log"
    last=$(tail -1 "$BUILD/logs/chaos-check.log")
    p=0; f=1
    if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then p=${BASH_REMATCH[1]}; f=${BASH_REMATCH[2]}; fi
    if /usr/bin/python3 tests/chaos/chaos.py --time "${CHAOS_TEST_TIME:-60}" >"$BUILD/logs/chaos.log" 2>&1; then
      p=$((p + 1))
    else
      f=$((f + 1))
    fi
    sed -n '/^ *run  *sent/,$p' "$BUILD/logs/chaos.log" | head -30
    record chaos "$p" "$f"
  else
    tail -30 "$BUILD/logs/chaos-build.log"; record chaos 0 1
  fi
fi

echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
