#!/usr/bin/env bash
# make test-ros: build this package with colcon in a temporary workspace and run, against
# a real ROS 2, the launch_testing test, the end-to-end tests (test_ros_*.py, a real
# perception_node started by ros2 launch) and ament's flake8, pep257 and copyright
# linters; colcon test-result --verbose then fails on any failed test.
#
# Environment: ROS_TESTS (a pytest -k expression: run only the matching tests), ROS_VENV (a venv with pytest < 9 and the runtime packages), ROS2_SETUP (a
# script to source for ROS 2: ../shared/ros2/activate.sh or /opt/ros/<distro>/setup.bash).
# Everything runs in a fresh network namespace, so DDS traffic stays on its loopback.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
ROS_VENV=${ROS_VENV:-.venv-ros}
ROS2_SETUP=${ROS2_SETUP:-../shared/ros2/activate.sh}

if [ -z "${MULTIEXIT_NETNS:-}" ]; then
    if [ "$(id -u)" = 0 ]; then netns=(unshare -n); else netns=(unshare -rn); fi
    exec "${netns[@]}" env MULTIEXIT_NETNS=1 bash "$0" "$@"
fi
ip link set lo up

cd "$REPO"
# shellcheck disable=SC1091
source "$ROS_VENV/bin/activate"
# shellcheck disable=SC1090
set +u
source "$ROS2_SETUP"
set -u
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

WS=$(mktemp -d "${TMPDIR:-/tmp}/multiexit_ros_ws.XXXXXX")
trap 'rm -rf "$WS"' EXIT
mkdir -p "$WS/src/multiexit_ros"
# The checkout's files (tracked, and new ones git does not ignore), nothing built.
git ls-files -z -co --exclude-standard | \
    tar --null --ignore-failed-read -T - -cf - | tar -C "$WS/src/multiexit_ros" -xf -

cd "$WS"
start=$(date +%s)
colcon build --packages-select multiexit_ros
set +u  # the setup scripts read unset variables
# shellcheck disable=SC1091
source install/setup.bash
set -u
tests=(test/test_perception_launch.py test/test_flake8.py test/test_pep257.py
       test/test_copyright.py)
for t in src/multiexit_ros/test/test_ros_*.py; do tests+=("test/$(basename "$t")"); done
select=()
if [ -n "${ROS_TESTS:-}" ]; then select=(-k "$ROS_TESTS"); fi
colcon test --packages-select multiexit_ros --event-handlers console_direct+ \
    --pytest-args "${tests[@]}" -rs "${select[@]}"
colcon test-result --verbose --test-result-base build/multiexit_ros
echo "make test-ros: $(( $(date +%s) - start )) s (colcon build, test and test-result)"
