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
"""The training loop: routed losses, mixed precision, torchrun, validation, resuming.

Files in ``run.out``: ``last.safetensors`` (the model in the package's checkpoint
format, with the training strategy and per-exit validation metrics), ``best.safetensors``
(best final-exit mIoU so far), ``train_state.pt`` (optimizer, scaler, step, epoch,
position in the epoch, RNG state: what resuming needs), ``config.yaml`` and
``metrics.jsonl`` (one line per validation) and, with ``run.grad_cosine_every``,
``grad_cosine.jsonl`` (the exits' gradient cosines per block, :mod:`.gradcos`).
"""

from dataclasses import replace
import json
import logging
import math
from pathlib import Path
import shutil

import torch
from torch.utils.data import DataLoader
import yaml

from .config import TrainConfig
from .distributed import ResumableSampler, setup, ShardSampler, teardown
from .evaluate import collate_eval, confusions, summarize
from .gradcos import gradient_cosines
from .losses import enet_class_weights, exit_losses
from .routed import RoutedNet
from ..data import build_dataset, Transform
from ..errors import CheckpointError, ConfigError
from ..model import CheckpointMeta, load_checkpoint, MultiExitSegNet, preset, save_checkpoint
from ..model.checkpoint import IMAGENET_MEAN, IMAGENET_STD, input_normalization
from ..model.efficientnet import load_pretrained_lite0
from ..runtime.device import resolve_device

__all__ = ['build_datasets', 'train']

log = logging.getLogger(__name__)
STATE_FILE, LAST, BEST = 'train_state.pt', 'last.safetensors', 'best.safetensors'


def build_datasets(config: TrainConfig, normalization=(IMAGENET_MEAN, IMAGENET_STD)) -> tuple:
    """(training set with augmentation, validation set with images resized to ``data.size``).

    Validation labels keep their own resolution unless ``data.val_full_labels`` is off.
    """
    d = config.data
    mean, std = normalization
    common = {'generated_size': tuple(d.size), 'seed': config.run.seed}
    train_set = build_dataset(d.dataset, d.root, d.train_split, Transform(
        train=True, size=tuple(d.size), crop=tuple(d.crop), scale=tuple(d.scale), flip=d.flip,
        jitter=d.jitter, mean=mean, std=std), generated_count=d.generated_count, **common)
    val_set = build_dataset(d.val_dataset or d.dataset, d.root, d.val_split,
                            Transform(size=tuple(d.size), mean=mean, std=std,
                                      resize_label=not d.val_full_labels),
                            generated_count=d.generated_val_count, **common)
    if d.val_limit and len(val_set) > d.val_limit:
        val_set = torch.utils.data.Subset(val_set, range(d.val_limit))
        val_set.labels = val_set.dataset.labels
    return train_set, val_set


def _lr(config: TrainConfig, step: int) -> float:
    o = config.optim
    if step < o.warmup:
        return o.lr * (step + 1) / o.warmup
    frac = (step - o.warmup) / max(o.steps - o.warmup, 1)
    return o.lr * max(1.0 - frac, 0.0) ** o.poly_power


def _optimizer(config: TrainConfig, net):
    o = config.optim
    decay = [p for p in net.parameters() if p.ndim > 1]
    no_decay = [p for p in net.parameters() if p.ndim <= 1]
    groups = [{'params': decay, 'weight_decay': o.weight_decay},
              {'params': no_decay, 'weight_decay': 0.0}]
    if o.optimizer == 'adamw':
        return torch.optim.AdamW(groups, lr=o.lr)
    return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, nesterov=o.momentum > 0)


def train(config: TrainConfig, resume: bool = True, progress: bool = True) -> dict:
    """Run (or resume) a training; returns the last validation metrics.

    Under ``torchrun`` every process calls this; process 0 writes the files.

    Raises:
        ConfigError, DatasetError, CheckpointError: Invalid settings, data or files.
    """
    device = resolve_device(config.run.device)
    dist_info = setup(device)
    if device.type == 'cuda' and dist_info.active:
        device = torch.device('cuda', dist_info.local_rank)
        torch.cuda.set_device(device)
    completed = False
    try:
        metrics = _train(config, device, dist_info, resume, progress)
        completed = True
        return metrics
    finally:
        teardown(dist_info, completed)


def _train(config, device, dist_info, resume, progress) -> dict:
    out = Path(config.run.out)
    torch.manual_seed(config.run.seed)
    model_config = preset(config.model, **config.model_overrides)
    normalization = input_normalization(model_config)
    train_set, val_set = build_datasets(config, normalization)
    labels = train_set.labels
    model_config = replace(model_config, num_classes=labels.num_classes)
    net = MultiExitSegNet(model_config)
    if config.pretrained:
        if model_config.trunk != 'efficientnet_lite0':
            raise ConfigError(f'pretrained weights need the efficientnet_lite0 trunk (model '
                              f'lite0), not {config.model!r}')
        count = load_pretrained_lite0(
            net, None if config.pretrained == 'imagenet' else config.pretrained)
        log.info('trunk initialised from %d pretrained tensors', count)
    if config.init:
        init, _ = load_checkpoint(config.init)
        if init.config != model_config:
            raise ConfigError(f'init checkpoint {config.init} has a different architecture')
        net.load_state_dict(init.state_dict())
    cuda = device.type == 'cuda'
    amp = config.run.amp and cuda
    # Channels-last is faster on the CPU as well (oneDNN): bench/memory_format.py.
    fmt = torch.channels_last if config.run.channels_last else torch.contiguous_format
    net.to(device, memory_format=fmt)
    optimizer = _optimizer(config, net)
    scaler = torch.amp.GradScaler('cuda', enabled=amp)
    step, epoch, batch, history = 0, 0, 0, []
    if resume and (out / STATE_FILE).is_file():
        state = _resume_state(out, net, optimizer)
        optimizer.load_state_dict(state['optimizer'])
        scaler.load_state_dict(state['scaler'])
        step, epoch, batch, history = (state['step'], state['epoch'], state['batch'],
                                       state['history'])
        torch.set_rng_state(state['torch_rng'])
        if dist_info.main:
            log.info('resuming %s at step %d', out, step)
    weight = None
    if config.optim.class_weights == 'enet':
        weight = enet_class_weights(train_set).to(device)
        log.info('class weights (enet): %s', ' '.join(f'{w:.2f}' for w in weight.tolist()))
    routed = RoutedNet(net, config.routing, config.run.routing_mode)
    model = routed
    if dist_info.active:
        model = torch.nn.parallel.DistributedDataParallel(
            routed, device_ids=[device.index] if cuda else None)
    if dist_info.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / 'config.yaml').write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
        log.info('routing: %s', config.routing.describe(net.num_exits))
    bar = None
    if progress and dist_info.main:
        from tqdm import tqdm
        bar = tqdm(total=config.optim.steps, initial=step, desc='train', dynamic_ncols=True)
    ignore, metrics = labels.ignore_index, (history[-1] if history else {})
    every_cos = config.run.grad_cosine_every
    last = config.optim.steps
    if config.run.stop_after:
        last = min(last, step + config.run.stop_after)
    while step < last:
        sampler = ResumableSampler(train_set, dist_info, config.run.seed,
                                   skip=batch * config.optim.batch_size)
        sampler.set_epoch(epoch)
        train_set.set_epoch(epoch)
        loader = DataLoader(train_set, config.optim.batch_size, sampler=sampler,
                            num_workers=config.data.workers, pin_memory=cuda, drop_last=True)
        if batch == 0 and len(loader) == 0:
            raise ConfigError(f'training set of {len(train_set)} images is smaller than one '
                              f'batch per process ({config.optim.batch_size} x '
                              f'{dist_info.world})')
        net.train()
        for images, target in loader:
            for group in optimizer.param_groups:
                group['lr'] = _lr(config, step)
            images = images.to(device, non_blocking=True).contiguous(memory_format=fmt)
            target = target.to(device, non_blocking=True)
            if every_cos and step == 0 and dist_info.main:
                _log_cosines(out, net, images, target, config, ignore, weight, step)
            with torch.autocast(device.type, enabled=amp):
                logits = model(images)
            loss, per_exit = exit_losses(logits, target, config.routing, ignore, weight,
                                         net.num_exits)
            if not torch.isfinite(loss):
                raise ConfigError(f'loss is {loss.item()} at step {step}: the training '
                                  f'diverged (try a lower optim.lr)')
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if config.optim.grad_clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(net.parameters(), config.optim.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            step, batch = step + 1, batch + 1
            if bar is not None:
                bar.update(1)
                if step % config.run.log_every == 0 or step == config.optim.steps:
                    bar.set_postfix_str('loss ' + ' '.join(f'{v:.3f}' for v in per_exit.tolist())
                                        + f' lr {_lr(config, step - 1):.2g}')
            if every_cos and dist_info.main and (step % every_cos == 0 or step == last):
                _log_cosines(out, net, images, target, config, ignore, weight, step)
            if step % config.run.val_every == 0 or step == last:
                metrics = _validate(net, val_set, config, device, dist_info, step)
                history.append(metrics)
                if dist_info.main:
                    _save(out, net, optimizer, scaler, config, labels, metrics, history,
                          step, epoch, batch, normalization)
                net.train()
            if step >= last:
                break
        else:
            epoch, batch = epoch + 1, 0
    if bar is not None:
        bar.close()
    return metrics


def _log_cosines(out, net, images, target, config, ignore, weight, step):
    """Append the gradient cosines on this batch to ``grad_cosine.jsonl``."""
    record = gradient_cosines(net, images, target, config.routing, ignore, weight)
    record['step'] = step
    with open(out / 'grad_cosine.jsonl', 'a', encoding='utf-8') as f:
        f.write(json.dumps(record) + '\n')
    log.info('step %d: gradient cosine own vs later exits per block %s', step,
             ' '.join('-' if c is None else f'{c:+.2f}' for c in record['own_vs_later']))


def _resume_state(out, net, optimizer) -> dict:
    """Load the last checkpoint of ``out`` into ``net`` and return its training state.

    Raises:
        CheckpointError: The state or checkpoint is unreadable, or belongs to another model
            or optimizer (the message says how to start over).
    """
    how = 'use --no-resume to start over, or another --out'
    try:
        state = torch.load(out / STATE_FILE, map_location='cpu', weights_only=True)
    except Exception as err:  # noqa: B902 (RuntimeError, EOFError, UnpicklingError ...)
        first = (str(err).strip().splitlines() or [type(err).__name__])[0].split('. ')[0]
        raise CheckpointError(
            f'{out / STATE_FILE}: corrupt training state ({first}); {how}') from err
    keys = ('optimizer', 'scaler', 'step', 'epoch', 'batch', 'history', 'torch_rng')
    if not isinstance(state, dict) or any(k not in state for k in keys):
        raise CheckpointError(f'{out / STATE_FILE}: corrupt training state (not all of '
                              f'{", ".join(keys)}); {how}')
    try:
        saved, _ = load_checkpoint(out / LAST)
    except CheckpointError as err:
        raise CheckpointError(f'cannot resume: {err}; {how}') from err
    if saved.config != net.config:
        raise CheckpointError(f'{out} holds the training of another model architecture; {how}')
    groups = [sorted(g) for g in optimizer.state_dict()['param_groups']]
    if groups != [sorted(g) for g in state['optimizer'].get('param_groups', [])]:
        raise CheckpointError(f'{out} holds a training with another optimizer; {how}')
    net.load_state_dict(saved.state_dict())
    return state


def _validate(net, val_set, config, device, dist_info, step) -> dict:
    if dist_info.active:  # every process evaluates the same weights and statistics
        _check_replicas(net)
        for buf in net.buffers():
            torch.distributed.broadcast(buf, 0)
    loader = DataLoader(val_set, config.run.val_batch_size,
                        sampler=ShardSampler(len(val_set), dist_info),
                        num_workers=min(config.data.workers, 2), collate_fn=collate_eval)
    labels = val_set.labels
    cms = confusions(net, loader, labels.num_classes, labels.ignore_index, device,
                     amp=config.run.amp and device.type == 'cuda',
                     channels_last=config.run.channels_last)
    metrics = summarize(cms, list(labels.classes))
    metrics.update(step=step, dataset=config.data.val_dataset or config.data.dataset,
                   split=config.data.val_split,
                   images=len(val_set))
    if dist_info.main:
        log.info('step %d: val mIoU per exit %s', step,
                 ' '.join('-' if v is None else f'{v:.3f}' for v in metrics['miou']))
    return metrics


def _check_replicas(net):
    """Fail loudly if the processes' weights differ (gradients were not synchronized)."""
    sums = torch.stack([p.detach().double().sum() for p in net.parameters()])
    low, high = sums.clone(), sums.clone()
    torch.distributed.all_reduce(low, op=torch.distributed.ReduceOp.MIN)
    torch.distributed.all_reduce(high, op=torch.distributed.ReduceOp.MAX)
    if not torch.equal(low, high):
        raise RuntimeError('distributed replicas hold different weights: gradients were not '
                           'synchronized')


def _save(out, net, optimizer, scaler, config, labels, metrics, history, step, epoch, batch,
          normalization):
    meta = CheckpointMeta(
        model=net.config, labels=labels, input_size=tuple(config.data.size),
        mean=tuple(normalization[0]), std=tuple(normalization[1]),
        training={'strategy': config.routing.to_dict(),
                  'routing': config.routing.describe(net.num_exits),
                  'dataset': config.data.dataset, 'steps': step, 'config': config.to_dict()},
        metrics={'miou': metrics['miou'], 'pixel_accuracy': metrics['pixel_accuracy'],
                 'step': step, 'dataset': metrics['dataset'], 'split': metrics['split']})
    save_checkpoint(out / LAST, net, meta)
    best = [h['miou'][-1] for h in history[:-1] if h['miou'][-1] is not None]
    final = metrics['miou'][-1]
    if final is not None and (not best or final > max(best)) or not (out / BEST).exists():
        shutil.copyfile(out / LAST, out / (BEST + '.tmp'))
        (out / (BEST + '.tmp')).replace(out / BEST)
    state = {'step': step, 'epoch': epoch, 'batch': batch, 'optimizer': optimizer.state_dict(),
             'scaler': scaler.state_dict(), 'torch_rng': torch.get_rng_state(),
             'history': history}
    torch.save(state, out / (STATE_FILE + '.tmp'))
    (out / (STATE_FILE + '.tmp')).replace(out / STATE_FILE)
    with open(out / 'metrics.jsonl', 'a', encoding='utf-8') as f:
        f.write(json.dumps({k: v for k, v in metrics.items() if k != 'exits'}) + '\n')
    if not math.isfinite(final if final is not None else 0.0):
        log.warning('final-exit mIoU is not finite at step %d', step)
