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
"""End to end on a real ROS 2: two cameras from one launch, and simulated time.

One ``ros2 launch`` of test/two_cameras.launch.py starts two nodes (namespaces left
and right, Float64 and TwistWithCovarianceStamped speeds) from one config file; one
``ros2 launch multiexit_ros perception.launch.py use_sim_time:=true`` starts a node
that follows a ``/clock`` publisher, with Odometry speeds and ``model_path:=y``.
"""

from pathlib import Path
import shutil

import pytest

import ros_helpers as rh

rh.require_ros()

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402, I100 (after the skip)
from geometry_msgs.msg import TwistWithCovarianceStamped  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rcl_interfaces.srv import GetParameters  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Float64  # noqa: E402

from node_fixtures import tiny_checkpoint  # noqa: E402

TWO_CAMERAS = Path(__file__).resolve().parent / 'two_cameras.launch.py'
H, W = 48, 64
OWN = {'left': 2.0, 'right': 4.0}  # budget.blind_distance_m of each camera's own section
SIM_T = 1000  # seconds of simulated time


@pytest.fixture(scope='module')
def graph(tmp_path_factory):
    folder = tmp_path_factory.mktemp('graph')
    model = tiny_checkpoint(folder)
    sections = {f'/{name}/perception_node': {'ros__parameters': {
        'budget': {'blind_distance_m': distance}}} for name, distance in OWN.items()}
    config = rh.write_config(folder, extra_sections=sections)
    cameras = rh.Launched([TWO_CAMERAS, f'model_path:={model}', f'config_file:={config}'],
                          folder / 'cameras.log')
    sim_dir = folder / 'sim'
    sim_dir.mkdir()
    shutil.copy(model, sim_dir / 'y')  # a file named y: model_path:=y must stay a string
    sim = rh.launch_perception(folder / 'sim.log', 'y', rh.write_config(folder), cwd=sim_dir,
                               namespace='sim', use_sim_time='true', image_topic='/sim/camera',
                               speed_topic='/sim/speed', speed_type='nav_msgs/msg/Odometry')
    probe = rh.Probe('graph_probe')
    probe.listen(DiagnosticArray, '/diagnostics')
    for name in ('left', 'right', 'sim'):
        probe.listen(Image, f'/{name}/perception_node/mask')
    try:
        yield probe, cameras, sim
    finally:
        cameras.interrupt()
        sim.interrupt()
        probe.close()


def roundtrip(probe, name, launched, make=None, timeout=rh.START_S):
    camera = probe.publisher(Image, f'/{name}/camera')
    make = make or (lambda stamp: rh.image_msg(stamp, 'rgb8', H, W, frame_id=name))
    return rh.send_until_mask(probe, camera, make, f'/{name}/perception_node/mask',
                              timeout=timeout, launched=launched)


def get_parameters(probe, node, names):
    client = probe.node.create_client(GetParameters, f'{node}/get_parameters')
    assert client.wait_for_service(timeout_sec=30.0), f'{node} has no parameter service'
    future = client.call_async(GetParameters.Request(names=names))
    rh.wait_for(future.done, 30.0, f'the parameters of {node}')
    values = future.result().values
    probe.node.destroy_client(client)
    return [getattr(v, ('bool', 'integer', 'double', 'string')[v.type - 1] + '_value')
            for v in values]


@pytest.mark.parametrize('name', ['left', 'right'])
def test_each_camera_node_gets_the_shared_and_its_own_config_values(graph, name):
    probe, cameras, _ = graph
    _, mask = roundtrip(probe, name, cameras)
    assert mask.header.frame_id == name and (mask.height, mask.width) == (H, W)
    node = f'/{name}/perception_node'
    distance, samples, period = get_parameters(
        probe, node, ['budget.blind_distance_m', 'profile_samples', 'diagnostics_period_s'])
    assert distance == OWN[name]  # its own section
    assert (samples, period) == (rh.FAST['profile_samples'], 0.5)  # the shared /** values


@pytest.mark.parametrize('name', ['left', 'right'])
def test_float64_and_twist_with_covariance_speeds(graph, name):
    probe, cameras, _ = graph
    pub = probe.publisher(Float64 if name == 'left' else TwistWithCovarianceStamped,
                          f'/{name}/speed')
    node = f'/{name}/perception_node'

    def budget_follows_speed():
        if name == 'left':
            msg = Float64(data=-40.0)  # reversing counts as speed
        else:
            msg = TwistWithCovarianceStamped()
            msg.header.stamp = probe.stamp()
            msg.twist.twist.linear.x = 40.0
        pub.publish(msg)
        roundtrip(probe, name, cameras, timeout=30.0)
        reports = rh.diagnostics(probe, node)
        return reports and reports[-1].get('speed_mps') == '40'
    rh.wait_for(budget_follows_speed, 30.0, f'the speed to reach {node}', step=0.3,
                launched=cameras)
    assert float(rh.diagnostics(probe, node)[-1]['speed_budget_s']) == pytest.approx(
        OWN[name] / 40.0)


def test_use_sim_time_follows_a_clock_publisher(graph):
    from builtin_interfaces.msg import Time

    probe, _, sim = graph
    clock = probe.publisher(Clock, '/clock')
    speed = probe.publisher(Odometry, '/sim/speed')
    tick = [0]

    def sim_stamp():
        tick[0] += 1
        return Time(sec=SIM_T, nanosec=tick[0] * 1_000_000)

    def frame(_):
        now = sim_stamp()
        clock.publish(Clock(clock=now))
        odom = Odometry()
        odom.header.stamp = now
        odom.twist.twist.linear.y = 10.0
        speed.publish(odom)
        return rh.image_msg(now, 'rgb8', H, W, frame_id='sim')

    _, mask = roundtrip(probe, 'sim', sim, make=frame)
    assert mask.header.stamp.sec == SIM_T

    def fresh_speed_in_sim_time():
        roundtrip(probe, 'sim', sim, make=frame, timeout=30.0)
        reports = rh.diagnostics(probe, '/sim/perception_node')
        return reports and reports[-1].get('speed_mps') == '10' and reports[-1]
    # Speeds stamped in simulated time are fresh only on the node's simulated clock.
    report = rh.wait_for(fresh_speed_in_sim_time, 60.0, 'a fresh speed on the sim clock',
                         step=0.3, launched=sim)
    assert float(report['speed_budget_s']) == pytest.approx(0.1)
    sim_diags = [a for a in probe.messages('/diagnostics')
                 if a.status and a.status[0].name.startswith('/sim/')]
    assert sim_diags[-1].header.stamp.sec == SIM_T  # stamped with the node's clock


def test_a_model_path_y_stays_a_string(graph):
    probe, _, sim = graph
    roundtrip(probe, 'sim', sim)
    assert get_parameters(probe, '/sim/perception_node', ['model_path']) == ['y']


def test_every_node_stops_cleanly_on_sigint(graph):
    probe, cameras, sim = graph
    for name, launched in (('left', cameras), ('right', cameras), ('sim', sim)):
        roundtrip(probe, name, launched)  # up and running, also when this test runs alone
    for launched, nodes in ((cameras, 2), (sim, 1)):
        status = launched.interrupt()
        out = launched.output()
        assert out.count('process has finished cleanly') == nodes, out[-2000:]
        assert 'process has died' not in out and status == 0, out[-2000:]
