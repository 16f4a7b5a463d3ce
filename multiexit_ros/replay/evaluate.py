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
"""The replay: a recording through every policy's pipeline, in simulated real time.

One pass over the recording. Each camera frame is decoded once and handed to every
policy's :class:`~multiexit_ros.replay.timing.NodeTimeline`; the network work is shared
(:mod:`.shared`). When every policy has decided a frame's fate it is scored (against
its label, or the final exit's mask), written to ``frames.jsonl`` and forgotten.
"""

from collections import Counter
from dataclasses import dataclass, field
import logging
import math
from pathlib import Path
import time
from typing import Optional

import numpy as np

from .recording import IMAGE_TYPE
from .stats import finite, PolicyStats
from .timing import Frame, NodeTimeline, SpeedLog
from ..errors import BagError, ImageError, MultiExitError

__all__ = ['ReplayOptions']

_LOG = logging.getLogger(__name__)


@dataclass
class ReplayOptions:
    """What to replay and how."""

    recording: Path
    out_dir: Path
    config: object                      # base PipelineConfig (model, device, budget, ...)
    preset: Optional[str] = None        # untrained network instead of a checkpoint (tests)
    camera_topic: Optional[str] = None  # None: find by type
    speed_topic: Optional[str] = None   # None: find by type; '': none
    label_topic: Optional[str] = None   # None: find by name; '': none
    latency: str = 'profile'            # profile: simulate from it; measured: time each pass
    policies: list = field(default_factory=list)  # empty: all
    write_bag: bool = False             # add an mcap with the speed policy's masks
    bag_policy: str = 'speed'           # whose masks go into the output recording
    max_frames: int = 0                 # 0: all
    plots: bool = True
    progress: bool = True
    label_wait_s: float = 1.0           # how long a frame waits for its label message
    streaming_query: str = 'frame'      # streaming quality at: frame (stamp) or deadline


def _decode(conn, msg, messages, max_pixels) -> tuple:
    """Return (image or None, error text) for one camera message."""
    try:
        if conn.msgtype == IMAGE_TYPE:
            image = messages.image_to_array(msg, max_pixels)
        else:
            image = messages.compressed_to_array(msg, max_pixels)
    except ImageError as err:
        return None, f'undecodable image ({err})'
    # A view of the message buffer is read-only; the network wants an array it owns.
    return (image if image.flags.writeable else image.copy()), ''


def _stamp_ns(msg) -> int:
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


class _Run:
    """State of one replay (kept small: frames are forgotten once scored)."""

    def __init__(self, opts, rec, choice, engine, policies, out):
        from .. import messages

        self.opts, self.rec, self.choice, self.messages = opts, rec, choice, messages
        self.engine, self.policies, self.out = engine, policies, out
        self.n_policies = len(policies)
        self.final = engine.num_exits - 1
        cfg = policies[0][0].config
        self.max_pixels = cfg.max_image_pixels
        self.out_size = (cfg.output_height, cfg.output_width) if cfg.output_height else None
        labels = engine.labels
        self.stats = {s.name: PolicyStats(s.name, engine.num_exits, labels.num_classes,
                                          labels.ignore_index) for s, _ in policies}
        self.speeds = SpeedLog()
        from .streaming import speed_budget_at, StreamingScorer
        self.streaming = StreamingScorer(
            [s.name for s, _ in policies], labels.num_classes, labels.ignore_index,
            opts.streaming_query,
            lambda f: speed_budget_at(self.speeds, f.arrival, cfg.budget),
            horizon_s=cfg.budget.max_budget_s + 2.0)
        self.pending = {}       # frame index -> {policy: Outcome}
        self.frames = {}        # frame index -> Frame, until decided by every policy
        self.awaiting = {}      # stamp ns -> (frame, outcomes) waiting for a label
        self.labels = {}        # stamp ns -> (label array, arrival)
        self.series = []        # per processed frame of the speed policy, for the plots
        self.bag = None
        self.read_s = 0.0
        self.count = 0
        self.labelled = 0
        self.bad_messages = 0   # undecodable speed and label messages, skipped
        self.speed_messages = 0
        self.speed_rejects = Counter()  # reason -> speed messages no policy was given
        self.labels_checked = 0  # the first labels are checked for foreign class ids
        from .report import FrameLog
        self.log = FrameLog(out / 'frames.jsonl')
        self.timelines = []
        for spec, pipe in policies:
            self.timelines.append(NodeTimeline(
                spec.name, self._processor(spec.name, pipe), self.speeds,
                pipe.update_speed, self._collector(spec.name)))

    def _processor(self, name, pipe):
        def process(frame, now):
            from .timing import Outcome

            self.engine.current = frame.index
            result = pipe.process(frame.image, frame.stamp, now)
            rec = result.record.to_dict()
            if result.record.skipped:
                return Outcome('rejected', f'skipped by the planner ({rec["reason"]})',
                               latency_s=0.0, decision=rec)
            return Outcome('processed', rec['reason'], exit=result.exit,
                           latency_s=result.record.actual_s, decision=rec, mask=result.mask)
        return process

    def _collector(self, name):
        def done(frame, outcome):
            self.stats[name].add(outcome, frame.stamp)
            if outcome.status == 'processed':
                self.streaming.add_mask(name, frame.index, frame.stamp, outcome.finish,
                                        outcome.mask)
            if name == self.opts.bag_policy and outcome.status == 'processed':
                if self.bag is not None:
                    self.bag.add_mask(int(outcome.finish * 1e9), frame.stamp, outcome.mask,
                                      dict(outcome.decision, policy=name))
                self.series.append((frame.arrival, outcome.start, outcome.exit,
                                    outcome.latency_s, outcome.decision.get('speed_budget_s'),
                                    outcome.decision.get('budget_s'),
                                    outcome.decision.get('deadline_met')))
            slot = self.pending.setdefault(frame.index, {})
            slot[name] = outcome
            if len(slot) == self.n_policies:
                self._decided(self.frames.pop(frame.index), self.pending.pop(frame.index))
        return done

    def _decided(self, frame, outcomes):
        """Every policy has decided this frame: score now or wait for its label."""
        if self.choice.label is None:
            reference = None
            if frame.image is not None:  # streaming scores every frame, processed or not
                self.engine.current = frame.index
                reference = self.engine.mask(frame.image, self.final, self.out_size)
            self._emit(frame, outcomes, reference, labels=False)
        else:
            key = frame.stamp_ns
            if key in self.labels:
                self._emit(frame, outcomes, self.labels.pop(key)[0], labels=True)
            else:
                self.awaiting[key] = (frame, outcomes)
        self.engine.release(frame.index)

    def _emit(self, frame, outcomes, reference, labels):
        record = {'frame': frame.index, 'arrival': frame.arrival, 'stamp': frame.stamp,
                  'labelled': reference is not None if labels else None, 'policies': {}}
        if labels and reference is not None:
            self.labelled += 1
        stream = (self.streaming.score(frame, reference, ignore=labels)
                  if reference is not None else {})
        for name, out in outcomes.items():
            rec = out.record()
            if out.status == 'processed' and reference is not None:
                matrix = self.stats[name].add_quality(out.mask, reference, ignore=labels)
                rec['miou'] = finite(matrix.miou())
            rec.update(stream.get(name, {}))
            record['policies'][name] = rec
        self.log.write(record)

    def _expire(self, now):
        limit = now - self.opts.label_wait_s
        for key in [k for k, (f, _) in self.awaiting.items() if f.arrival < limit]:
            frame, outcomes = self.awaiting.pop(key)
            self._emit(frame, outcomes, None, labels=True)
        for key in [k for k, (_, t) in self.labels.items() if t < limit]:
            del self.labels[key]

    def read(self, conn, raw):
        """Deserialize a speed or label message; None (logged) when its bytes are bad."""
        try:
            return self.rec.deserialize(conn, raw)
        except BagError as err:
            self.bad_messages += 1
            if self.bad_messages == 1 or self.bad_messages % 100 == 0:
                _LOG.warning('ignoring an undecodable message (%d so far): %s',
                             self.bad_messages, err)
            return None

    def on_label(self, msg, t):
        if msg is None:
            return
        try:
            label = self.messages.image_to_array(msg)
            if msg.encoding != 'mono8' or label.ndim != 2:
                raise ImageError(f'label encoding {msg.encoding}, expected mono8')
        except ImageError as err:
            _LOG.warning('ignoring a label on %s: %s', self.choice.label, err)
            return
        self._check_class_ids(label)
        key = _stamp_ns(msg)
        if key in self.awaiting:
            frame, outcomes = self.awaiting.pop(key)
            self._emit(frame, outcomes, label, labels=True)
        else:
            self.labels[key] = (label, t)

    def _check_class_ids(self, label):
        """Warn when the first labels hold ids the model does not predict (not scored)."""
        labels = self.engine.labels
        if self.labels_checked >= 20:
            return
        self.labels_checked += 1
        ids = np.unique(label)
        foreign = ids[(ids >= labels.num_classes) & (ids != labels.ignore_index)]
        if foreign.size:
            self.labels_checked = 20  # once is enough
            _LOG.warning('labels on %s hold class ids %s the model does not have (%d classes '
                         '0..%d, ignore %d): those pixels are not scored', self.choice.label,
                         ', '.join(str(int(v)) for v in foreign[:5]), labels.num_classes,
                         labels.num_classes - 1, labels.ignore_index)

    def on_speed(self, msg, t):
        self.speed_messages += 1
        if msg is None:
            self._reject_speed('undecodable message', 'its bytes do not decode')
            return
        try:
            speed, stamp = self.messages.speed_from_msg(msg, self.choice.speed_type)
        except MultiExitError as err:
            self._reject_speed('not a speed message', str(err))
            return
        if not (math.isfinite(speed) and speed >= 0):  # the pipeline's rule, checked once
            kind = 'nan' if math.isnan(speed) else 'inf' if math.isinf(speed) else 'negative'
            self._reject_speed(kind, f'{speed!r} is not a finite, non-negative speed')
            return
        self.speeds.add(t, speed, stamp)

    def _reject_speed(self, reason: str, detail: str):
        """Count a speed message every policy would reject; warn once for the replay."""
        self.speed_rejects[reason] += 1
        if sum(self.speed_rejects.values()) == 1:
            _LOG.warning('rejected a speed message on %s: %s (the last good speed is kept; '
                         'rejected speeds are counted in the summary)', self.choice.speed,
                         detail)

    def on_frame(self, conn, t_ns, raw):
        t0 = time.perf_counter()
        t = t_ns * 1e-9
        stamp_ns, error, image = t_ns, '', None
        try:
            msg = self.rec.deserialize(conn, raw)
            stamp_ns = _stamp_ns(msg)
            image, error = _decode(conn, msg, self.messages, self.max_pixels)
        except (BagError, AttributeError) as err:
            error = f'undecodable message ({err})'
        self.read_s += time.perf_counter() - t0
        frame = Frame(self.count, t, stamp_ns * 1e-9, image, error, stamp_ns)
        self.count += 1
        self.frames[frame.index] = frame
        for tl in self.timelines:
            tl.arrive(frame)
        self._expire(t)

    def finish(self):
        for tl in self.timelines:
            tl.finish()
        self._expire(float('inf'))
        self.log.close()
