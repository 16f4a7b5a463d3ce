# Copyright 2026 The multiexit_ros Authors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""End to end on a real ROS 2: start-up failures are one fatal line and exit status 1.

The nodes are started at once (each ends by itself) through ``ros2 launch``, and the
bad model once more as the bare executable, whose exit status is checked directly.
"""

import subprocess

import pytest
import yaml

import ros_helpers as rh

rh.require_ros()

from node_fixtures import tiny_checkpoint  # noqa: E402, I100 (after the skip)

CASES = {
    'bad model_path': ({'model_path': '/nonexistent/model.safetensors'}, None,
                       ['/nonexistent/model.safetensors']),
    'misspelled parameter': ({}, {'budget.blind_distanse_m': 2.0},
                             ['budget.blind_distanse_m', 'did you mean budget.blind_distance_m']),
    'old Autoware speed type without its package': (
        {'speed_type': 'autoware_auto_vehicle_msgs/msg/VelocityReport'}, None,
        ['autoware_auto_vehicle_msgs', 'not installed']),
}


@pytest.fixture(scope='module')
def failed(tmp_path_factory):
    folder = tmp_path_factory.mktemp('startup')
    model = tiny_checkpoint(folder)
    runs = {}
    for i, (case, (args, typo, _)) in enumerate(CASES.items()):
        config = rh.write_config(folder)
        if typo:
            data = yaml.safe_load(config.read_text())
            (key,) = data
            data[key]['ros__parameters'].update(typo)
            config.write_text(yaml.safe_dump(data))
        runs[case] = rh.launch_perception(folder / f'{i}.log', args.pop('model_path', model),
                                          config, node_name=f'startup_{i}', **args)
    direct = subprocess.Popen(
        [str(rh.node_executable()), '--ros-args', '-p', 'device:=cpu', '-p',
         'model_path:=/nonexistent/model.safetensors'], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = direct.communicate(timeout=rh.START_S)
        for run in runs.values():
            try:
                run.wait(timeout=rh.START_S)
            except subprocess.TimeoutExpired:  # still running: that case fails below
                run.interrupt()
        yield runs, (direct.returncode, out)
    finally:
        for run in runs.values():
            run.interrupt()
        direct.kill()


@pytest.mark.parametrize('case', CASES)
def test_a_start_up_error_is_one_fatal_line_and_exit_status_1(failed, case):
    out = failed[0][case].output()
    fatal = [line for line in out.splitlines() if '[FATAL]' in line]
    assert len(fatal) == 1, out[-3000:]
    for text in CASES[case][2]:
        assert text in fatal[0], fatal[0]
    assert 'exit code 1' in out and 'Traceback' not in out, out[-3000:]


def test_the_bare_executable_exits_with_status_1(failed):
    status, out = failed[1]
    assert status == 1, out
    assert sum('[FATAL]' in line for line in out.splitlines()) == 1, out
    assert 'Traceback' not in out
