#!/usr/bin/env bash
# zest-mock for CI in two steps (the shell part of action.yml, usable from any CI):
#   install   a venv with zest-mock from this repository; its bin/ goes onto $GITHUB_PATH when there is one
#   start     `zest-mock serve --clock manual` in the background on 127.0.0.1, wait until /public/hc answers, then
#             append ZEST_BASE_URL, ZEST_MOCK_URL, ZEST_CLIENT_ID, ZEST_PRIVATE_KEY_FILE, ZEST_WEBHOOK_SECRET,
#             ZEST_AUDIENCE, ZEST_SCENARIO and ZEST_MOCK_PID to $GITHUB_ENV (KEY=value lines)
# Inputs, from the environment: ZEST_ACTION_PORT (8080), ZEST_ACTION_SCENARIO (none), ZEST_ACTION_SEED (1),
# ZEST_ACTION_VENV (install: $RUNNER_TEMP/zest-mock-venv), ZEST_ACTION_WAIT_SECONDS (60: a hang guard),
# ZEST_ACTION_LOG (the mock's output: $RUNNER_TEMP/zest-mock.log). RUNNER_TEMP defaults to /tmp.
set -euo pipefail

tmp="${RUNNER_TEMP:-/tmp}"

install() {
  local repo venv
  repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  venv="${ZEST_ACTION_VENV:-$tmp/zest-mock-venv}"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "$repo"
  if [ -n "${GITHUB_PATH:-}" ]; then echo "$venv/bin" >>"$GITHUB_PATH"; fi
  echo "zest-mock installed in $venv"
}

start() {
  local port="${ZEST_ACTION_PORT:-8080}" scenario="${ZEST_ACTION_SCENARIO:-}"
  local url="http://127.0.0.1:$port" log="${ZEST_ACTION_LOG:-$tmp/zest-mock.log}"
  local args=(serve --host 127.0.0.1 --port "$port" --clock manual --seed "${ZEST_ACTION_SEED:-1}")
  if [ -n "$scenario" ]; then args+=(--scenario "$scenario"); fi
  : "${GITHUB_ENV:?GITHUB_ENV must name the file that later steps read their environment from}"
  nohup zest-mock "${args[@]}" >"$log" 2>&1 </dev/null &
  local pid=$! deadline=$((SECONDS + ${ZEST_ACTION_WAIT_SECONDS:-60}))
  until curl -fsS -o /dev/null "$url/public/hc" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "zest-mock exited before it was healthy:" >&2; cat "$log" >&2; exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "zest-mock was not healthy at $url within ${ZEST_ACTION_WAIT_SECONDS:-60} s:" >&2; cat "$log" >&2
      kill "$pid"; exit 1
    fi
    sleep 0.2
  done
  {
    zest-mock dev-credentials --mock-url "$url" --env
    echo "ZEST_SCENARIO=$scenario"
    echo "ZEST_MOCK_PID=$pid"
  } >>"$GITHUB_ENV"
  echo "zest-mock serving on $url (pid $pid${scenario:+, scenario $scenario}); its output: $log"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  *) echo "usage: $0 install|start" >&2; exit 2 ;;
esac
