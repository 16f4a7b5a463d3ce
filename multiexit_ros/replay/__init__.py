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
"""Offline evaluation of recordings (rosbag2 mcap / sqlite3, ROS 1 bags) and the demo.

``replay(ReplayOptions(...))`` runs a recording through the same
:class:`~multiexit_ros.runtime.PerceptionPipeline` as the node, once per policy, in
simulated real time, and writes per-frame records, a summary, plots and optionally an
output recording with the masks.
"""

from .driver import replay
from .evaluate import ReplayOptions
from .recording import choose_topics, Recording, TopicChoice
from .writer import RecordingWriter

__all__ = ['Recording', 'RecordingWriter', 'ReplayOptions', 'TopicChoice', 'choose_topics',
           'replay']
