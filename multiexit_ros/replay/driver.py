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
"""``replay()``: set up the policies, run the recording through them, write the report."""

import logging
from pathlib import Path
import shutil
import time

from .recording import choose_topics, Recording
from ..errors import BagError, ConfigError, MultiExitError
from ..progress import bar

__all__ = ['replay']

_LOG = logging.getLogger(__name__)


def _first_frame_size(rec, choice, messages, max_pixels) -> tuple:
    """(H, W) of the first decodable camera frame, for start-up profiling."""
    from .evaluate import _decode

    first_error = ''
    for i, (conn, _, raw) in enumerate(rec.raw_messages([choice.camera])):
        try:
            image, error = _decode(conn, rec.deserialize(conn, raw), messages, max_pixels)
        except (BagError, AttributeError) as err:
            image, error = None, str(err)
        if image is not None:
            return image.shape[:2]
        first_error = first_error or error
        if i >= 20:
            break
    raise BagError(f'{rec.path}: none of the first camera frames on {choice.camera} '
                   f'can be decoded (the first: {first_error})')


def _profile(opts, engine, rec, choice, messages):
    """Return (profile, description of where the latencies come from)."""
    from ..runtime import measure_profile
    from .policies import load_profile

    cfg = opts.config
    if cfg.profile_path:
        profile = load_profile(cfg.profile_path, engine)
        if opts.latency == 'measured':  # the profile only seeds the planner
            return profile, (f'measured per frame on {engine.device} (the planner starts '
                             f'from profile {cfg.profile_path})')
        return profile, (f'profile {cfg.profile_path} (measured on '
                         f'{profile.device or "unknown device"}), median per exit')
    size = _first_frame_size(rec, choice, messages, cfg.max_image_pixels)
    out = (cfg.output_height, cfg.output_width) if cfg.output_height else None
    _LOG.info('measuring a latency profile on %s at %dx%d', engine.device, *size)
    with bar((cfg.profile_warmup + cfg.profile_samples) * engine.num_exits,
             'profiling latency', opts.progress) as progress:
        profile = measure_profile(engine, size, cfg.profile_warmup, cfg.profile_samples,
                                  out_size=out, progress=progress.update)
    where = 'measured per frame' if opts.latency == 'measured' else 'median per exit'
    return profile, f'measured at start-up on {engine.device} at {size[0]}x{size[1]}, {where}'


def replay(opts) -> dict:
    """Replay ``opts.recording`` through every policy and write the report into ``out_dir``.

    Returns:
        The summary (also written to ``summary.json``).

    Raises:
        MultiExitError: Bad recording, topics, model, profile or settings (one line).
    """
    from dataclasses import replace

    from .. import messages
    from .evaluate import _Run
    from .outbag import OutputRecording
    from .policies import build_engine, build_policies
    from .report import write_summary
    from .shared import SharedEngine

    if opts.latency not in ('profile', 'measured'):
        raise ConfigError(f'latency must be profile or measured, got {opts.latency!r}')
    out = Path(opts.out_dir)
    t_start = time.perf_counter()
    with Recording(opts.recording) as rec:
        choice = choose_topics(rec.topics, messages.SPEED_TYPES, opts.camera_topic,
                               opts.speed_topic, opts.label_topic, path=rec.path)
        if next(rec.raw_messages([choice.camera]), None) is None:
            raise BagError(f'{rec.path}: the camera topic {choice.camera} has no messages')
        base = replace(opts.config, simulate_latency=opts.latency == 'profile',
                       profile_update=opts.latency == 'measured')
        real = build_engine(base, opts.preset)
        profile, latency_source = _profile(opts, real, rec, choice, messages)
        engine = SharedEngine(real, share=opts.latency == 'profile')
        policies = build_policies(engine, base, profile, opts.policies or None)
        names = [s.name for s, _ in policies]
        if opts.bag_policy not in names:
            opts = replace(opts, bag_policy=names[0])
        out.mkdir(parents=True, exist_ok=True)
        profile.save(out / 'profile.json')
        run = _Run(opts, rec, choice, engine, policies, out)
        if opts.write_bag:
            if (out / 'replay_bag').exists():  # this folder's own output of an earlier run
                shutil.rmtree(out / 'replay_bag')
            run.bag = OutputRecording(out / 'replay_bag', rec, real.labels.palette_array())
        total = rec.message_count(choice.camera)
        if opts.max_frames:
            total = min(total, opts.max_frames)
        topics = [t for t in (choice.camera, choice.speed, choice.label) if t]
        frames_bar = bar(total, 'replay', opts.progress, unit='frame')
        t_loop = time.perf_counter()
        stopped = None
        try:
            stream = rec.raw_messages(None if opts.write_bag else topics)
            while True:
                t0 = time.perf_counter()
                item = next(stream, None)
                run.read_s += time.perf_counter() - t0
                if item is None:
                    break
                conn, t_ns, raw = item
                if run.bag is not None:
                    run.bag.copy(conn, t_ns, raw)
                t = t_ns * 1e-9
                if conn.topic == choice.camera:
                    if opts.max_frames and run.count >= opts.max_frames:
                        break
                    run.on_frame(conn, t_ns, raw)
                    frames_bar.update(1)
                elif conn.topic == choice.speed:
                    run.on_speed(run.read(conn, raw), t)
                elif conn.topic == choice.label:
                    run.on_label(run.read(conn, raw), t)
            run.finish()
        except (KeyboardInterrupt, Exception) as err:  # noqa: B902
            # Ctrl-C, a recording that turns out corrupt part way or a failure: report
            # what was replayed so far rather than lose it (the summary says it is partial).
            stopped = err
            _finish_partial(run)
        except BaseException:  # noqa: B902 (clean up, then re-raise)
            frames_bar.close()
            run.log.close()
            if run.bag is not None:
                run.bag.abort()
            raise
        frames_bar.close()
        loop_s = time.perf_counter() - t_loop
        if run.bag is not None:
            run.bag.close()
        summary = _summary(opts, rec, choice, run, real, engine, profile, latency_source)
        if stopped is not None:
            summary['complete'] = False
            summary['stopped'] = _why(stopped)
    wall = time.perf_counter() - t_start
    summary['timing'] = {
        'total_s': wall, 'replay_loop_s': loop_s, 'read_decode_s': run.read_s,
        'read_decode_share': run.read_s / loop_s if loop_s else None,
        'frames_per_s': run.count / loop_s if loop_s else None,
        'network_passes': engine.passes, 'exit_heads_run': engine.exits_computed,
        'masks_served': engine.requests}
    if opts.plots and run.count:
        from .plots import write_plots
        summary['outputs']['plots'] = write_plots(out, summary, run.series, run.speeds)
    write_summary(out, summary)
    if stopped is not None:
        kept = f'the report of the {run.count} frames replayed so far is in {out}'
        if isinstance(stopped, KeyboardInterrupt):
            raise KeyboardInterrupt(kept) from None
        if isinstance(stopped, MultiExitError):
            raise type(stopped)(f'{stopped}; {kept}') from stopped
        _LOG.warning('replay failed: %s', kept)
        raise stopped
    return summary


def _why(err) -> str:
    """Say in one line why a replay stopped part way."""
    if isinstance(err, KeyboardInterrupt):
        return 'interrupted'
    return str(err) if isinstance(err, MultiExitError) else f'{type(err).__name__}: {err}'


def _finish_partial(run):
    """Close a replay stopped part way: score the frames in flight, close the log."""
    try:
        run.finish()
    except Exception as err:  # noqa: B902 (stopped mid-frame: drop what is in flight)
        _LOG.debug('frames in flight dropped (%s)', err, exc_info=True)
        run.log.close()


def _summary(opts, rec, choice, run, real, engine, profile, latency_source) -> dict:
    first = run.series[0][0] if run.series else None
    policies = [dict(run.stats[s.name].summary(run.count), **run.streaming.summary(s.name))
                for s, _ in run.policies]
    model = opts.config.model_path or ('preset ' + opts.preset if opts.preset else 'shipped')
    return {
        'recording': str(rec.path),
        'complete': True,    # False when stopped part way ('stopped' says why)
        'stopped': None,
        'format': 'ros1' if rec.is_ros1 else 'rosbag2',
        'topics': {'camera': choice.camera, 'speed': choice.speed, 'label': choice.label},
        'notes': list(choice.notes),
        'frames': run.count,
        'speeds': {'messages': run.speed_messages,
                   'rejected': sum(run.speed_rejects.values()),
                   'reasons': dict(run.speed_rejects)},
        'undecodable_messages': run.bad_messages,
        'labelled_frames': run.labelled if choice.label else None,
        'quality_reference': 'labels' if choice.label else 'final_exit',
        'streaming_query': opts.streaming_query,
        'latency_source': latency_source,
        'latency_mode': opts.latency,
        'profile_p50_ms': [profile.p50(k) * 1e3 for k in range(profile.num_exits)],
        'model': model,
        'device': real.device,
        'budget': vars(opts.config.budget).copy(),
        'latency_quantile': opts.config.latency_quantile,
        'start_time': first,
        'policies': policies,
        'outputs': {'frames': 'frames.jsonl', 'summary': 'summary.md',
                    'profile': 'profile.json',
                    'bag': 'replay_bag' if opts.write_bag else None},
    }
