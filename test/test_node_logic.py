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
"""The node's per-message logic without ROS: latest-frame buffer, frames, speeds, diagnostics."""

import math
import threading

import cv2
import numpy as np
import pytest

from msgs_helpers import compressed, header, image, speed_message, T, TS
from multiexit_ros.labels import CAMVID, colorize
from multiexit_ros.messages import image_to_array
from multiexit_ros.node_logic import (diagnostic_report, FrameHandler, LatestFrameBuffer,
                                      Throttle)
from node_fixtures import tiny_pipeline

H, W = 32, 48
RGB = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)


def test_buffer_keeps_only_the_latest_frame():
    buf = LatestFrameBuffer()
    assert buf.take() is None and not buf.pending
    assert buf.put('a') is False
    assert buf.put('b') is True and buf.pending
    assert buf.take() == 'b' and buf.take() is None
    buf.put('c')
    assert buf.take() == 'c'
    assert (buf.received, buf.dropped) == (3, 1)


def test_buffer_between_threads_never_loses_the_newest_or_reorders():
    buf, taken, done = LatestFrameBuffer(), [], threading.Event()

    def consume():
        while not done.is_set() or buf.pending:
            item = buf.take()
            if item is not None:
                taken.append(item)
                sum(range(2000))  # some work, so the producer overtakes

    consumer = threading.Thread(target=consume)
    consumer.start()
    for i in range(2000):
        buf.put(i)
    done.set()
    consumer.join()
    assert taken == sorted(set(taken)) and taken[-1] == 1999
    assert buf.received == 2000 and buf.dropped == 2000 - len(taken)


def test_throttle_counts_what_it_held_back():
    now = [0.0]
    throttle, logged = Throttle(5.0, clock=lambda: now[0]), []
    assert throttle(logged.append, 'one')
    now[0] = 1.0
    assert not throttle(logged.append, 'two')
    assert not throttle(logged.append, 'three')
    now[0] = 6.0
    assert throttle(logged.append, 'four')
    assert logged == ['one', 'four (2 more since the last report)']


@pytest.fixture(scope='module')
def pipeline(tmp_path_factory):
    return tiny_pipeline(tmp_path_factory.mktemp('model'))


class SimClock:
    """A settable clock standing in for the node's ROS (possibly simulated) time."""

    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


def make_handler(pipeline, **kwargs):
    warnings = []
    kwargs.setdefault('clock', SimClock(12.345 + 0.004))
    handler = FrameHandler(pipeline, T['sensor_msgs/msg/Image'], warn=warnings.append,
                           **kwargs)
    return handler, warnings


def test_frame_gives_a_mask_with_the_camera_header_and_size(pipeline):
    handler, warnings = make_handler(pipeline)
    hdr = header(sec=12, nanosec=345_000_000)
    out = handler.handle_frame(image(RGB.tobytes(), H, W, 'rgb8', W * 3, hdr=hdr))
    assert out.mask.header is hdr and out.color is None
    assert (out.mask.height, out.mask.width, out.mask.encoding) == (H, W, 'mono8')
    mask = image_to_array(TS.deserialize_cdr(TS.serialize_cdr(out.mask, out.mask.__msgtype__),
                                             out.mask.__msgtype__))
    assert mask.max() < CAMVID.num_classes
    # ages come from the given clock and the header stamp, not from wall time
    assert out.decision.age_s == pytest.approx(0.004, abs=1e-6)
    assert out.decision.stamp == pytest.approx(12.345)
    assert not warnings and handler.rejected == 0


def test_colour_mask_only_when_asked(pipeline):
    handler, _ = make_handler(pipeline)
    msg = image(RGB[:, :, ::-1].tobytes(), H, W, 'bgr8', W * 3)
    out = handler.handle_frame(msg, color=True)
    assert out.color.encoding == 'rgb8' and out.color.header is msg.header
    np.testing.assert_array_equal(image_to_array(out.color),
                                  colorize(image_to_array(out.mask), CAMVID.palette_array()))
    assert handler.handle_frame(msg, color=False).color is None


def test_compressed_frames(pipeline):
    handler, _ = make_handler(pipeline, compressed=True)
    ok, png = cv2.imencode('.png', RGB[:, :, ::-1])
    out = handler.handle_frame(compressed(png.tobytes(), 'rgb8; png compressed bgr8'))
    assert (out.mask.height, out.mask.width) == (H, W)


BAD_FRAMES = [
    image(RGB.tobytes(), H, W, 'rgb8', W * 3 - 2),  # wrong step
    image(RGB.tobytes()[:-7], H, W, 'rgb8', W * 3),  # short data
    image(RGB.tobytes(), H, W, 'hsv8', W * 3),  # unknown encoding
    image(b'', 0, 0, 'rgb8', 0),  # empty
]


def test_malformed_frames_are_counted_logged_and_never_stop_the_handler(pipeline):
    handler, warnings = make_handler(pipeline, log_period_s=3600.0)
    for msg in BAD_FRAMES:
        assert handler.handle_frame(msg) is None
    assert handler.rejected == len(BAD_FRAMES)
    assert len(warnings) == 1 and 'rejected' in warnings[0] and 'step' in warnings[0]
    good = handler.handle_frame(image(RGB.tobytes(), H, W, 'rgb8', W * 3))
    assert good.mask is not None and handler.rejected == len(BAD_FRAMES)


def test_undecodable_compressed_frames_are_rejected(pipeline):
    handler, warnings = make_handler(pipeline, compressed=True, log_period_s=0.0)
    assert handler.handle_frame(compressed(b'\xff\xd8 not a jpeg', 'jpeg')) is None
    assert handler.handle_frame(compressed(b'', 'png')) is None
    assert handler.rejected == 2 and len(warnings) == 2 and 'jpeg' in warnings[0]


def test_speeds_reach_the_pipeline_and_bad_ones_are_rejected(pipeline):
    clock = SimClock(100.0)
    handler, warnings = make_handler(pipeline, speed_type='geometry_msgs/msg/TwistStamped',
                                     clock=clock, log_period_s=0.0)
    msg = speed_message('geometry_msgs/msg/TwistStamped', 6.0, 8.0,
                        hdr=header(sec=100, nanosec=0))
    assert handler.handle_speed(msg)
    out = handler.handle_frame(image(RGB.tobytes(), H, W, 'rgb8', W * 3,
                                     hdr=header(sec=100, nanosec=0)))
    assert out.decision.speed_mps == pytest.approx(10.0)
    assert not handler.handle_speed(speed_message('geometry_msgs/msg/TwistStamped',
                                                  math.nan))
    assert not handler.handle_speed(speed_message('std_msgs/msg/Float32', 3.0))  # wrong type
    assert handler.rejected_speeds == 2 and len(warnings) == 2
    assert 'nan' in warnings[0] and 'TwistStamped' in warnings[1]
    assert handler.counters() == {'frames_rejected': 0, 'speeds_rejected': 2, 'color_masks': 0}


def test_diagnostics_report_problems_once(pipeline):
    handler, _ = make_handler(pipeline)
    handler.handle_frame(image(RGB.tobytes(), H, W, 'rgb8', W * 3))
    counters = {'frames_received': 3, 'frames_dropped': 1, **handler.counters()}
    level, message, values = diagnostic_report(pipeline.stats(), counters)
    keys = dict(values)
    for key in ('budget_s', 'last_exit', 'latency_p50_s', 'latency_p99_s', 'deadline_misses',
                'frames_dropped', 'frames_rejected', 'device'):
        assert key in keys, key
    assert keys['device'] == 'cpu' and keys['frames_dropped'] == '1'
    assert message.startswith('exit ') and 'on cpu' in message and 'p99' in message
    previous = {**pipeline.stats(), **counters}
    handler.handle_frame(BAD_FRAMES[0])
    counters.update(handler.counters())
    level2, message2, _ = diagnostic_report(pipeline.stats(), counters, previous)
    assert level2 == 1 and '1 new frames rejected' in message2
    previous = {**pipeline.stats(), **counters}
    assert diagnostic_report(pipeline.stats(), counters, previous)[0] == 0
    assert level in (0, 1)  # the first frame may miss its deadline on a busy machine
