#!/usr/bin/env bash
# Create .venv and install hlai_ros with pinned dependencies. Idempotent: re-running is cheap.
# Where ROS 2 is installed system-wide (ROS_DISTRO set and /opt/ros/$ROS_DISTRO present), the venv
# sees the system packages and the ROS wheels are not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${HLAI_VENV:-.venv}
PY=${PYTHON:-python3}
stamp="$VENV/.hlai-installed"
want=$(cat requirements.txt requirements-ros.txt setup.py | sha1sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
system_ros=""
if [ -n "${ROS_DISTRO:-}" ] && [ -d "/opt/ros/${ROS_DISTRO}" ]; then
  system_ros=1
  echo "[bootstrap] using system-wide ROS 2 ${ROS_DISTRO} from /opt/ros/${ROS_DISTRO}"
fi
if [ ! -x "$VENV/bin/python" ]; then
  if [ -n "$system_ros" ]; then
    "$PY" -m venv --system-site-packages "$VENV"
  else
    "$PY" -m venv "$VENV"
  fi
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -r requirements.txt
if [ -z "$system_ros" ]; then
  "$VENV/bin/python" -m pip install --quiet -r requirements-ros.txt
fi
"$VENV/bin/python" -m pip install --quiet --no-deps -e .
echo "$want" > "$stamp"
echo "[bootstrap] ready: $VENV"
