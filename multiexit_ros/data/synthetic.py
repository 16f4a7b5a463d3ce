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
"""Procedurally generated driving scenes with exact CamVid labels (no data needed).

A scene is a small 3-D world (road with lanes and markings, kerbs and pavements, verges,
buildings with windows, a skyline, trees, lamp posts with signs, fences, cars driving
and parked, pedestrians, cyclists) seen through a pinhole camera with a random height,
focal length, horizon and vanishing point, under a random lighting (day, overcast, dusk,
bright). Every shape is drawn with OpenCV polygon fills into the image and, with its
class id, into the label map, so labels are pixel-exact. A 360x480 frame takes a few
milliseconds.

:func:`render_scene` draws one scene from a seed; :func:`render_sequence` drives the
camera forward through one world, giving temporally coherent frames.
"""

import math

import cv2
import numpy as np

from .scene import FAR as _FAR, LIGHTS as _LIGHTS, NEAR as _NEAR, World as _World

__all__ = ['render_scene', 'render_sequence']

SKY, BUILDING, POLE, ROAD, PAVEMENT, TREE, SIGN, FENCE, CAR, PEDESTRIAN, BICYCLIST = range(11)


class _Camera:
    """Projects world points and draws shapes into an image and its label map."""

    def __init__(self, world: _World, height: int, width: int, cam_z: float):
        self.world, self.cam_z = world, cam_z
        self.f = world.focal * width
        self.cx, self.cy = world.vp_x * width, world.horizon * height
        self.img = np.empty((height, width, 3), np.uint8)
        self.lab = np.empty((height, width), np.uint8)
        self.haze = tuple(float(v) for v in _LIGHTS[world.light][1])

    def proj(self, xs, ys, zs) -> np.ndarray:
        """Pixel coordinates (N, 2) int32 of world points at camera-relative depths."""
        f, cx, cy, h = self.f, self.cx, self.cy, self.world.cam_h
        return np.array([(min(max(round(cx + f * x / z), -30000), 30000),
                          min(max(round(cy + f * (h - y) / z), -30000), 30000))
                         for x, y, z in zip(xs, ys, zs)], np.int32)

    def tone(self, rgb, depth) -> tuple:
        """Colour with distance haze."""
        a = 1.0 - math.exp(-max(depth, 0.0) / 220.0)
        return tuple(int(min(max(float(c) * (1 - a) + hz * a, 0), 255))
                     for c, hz in zip(rgb, self.haze))

    def poly(self, pts, rgb, cls):
        cv2.fillConvexPoly(self.img, pts, rgb)
        cv2.fillConvexPoly(self.lab, pts, int(cls))

    def ground(self, x0, x1, z0, z1, rgb, cls):
        """Draw a flat quad on the road plane between lateral x0..x1 and depths z0..z1."""
        z0, z1 = max(z0, _NEAR), min(z1, _FAR)
        if z1 > z0:
            self.poly(self.proj([x0, x1, x1, x0], [0] * 4, [z0, z0, z1, z1]),
                      self.tone(rgb, z0), cls)

    def wall(self, x, y0, y1, z0, z1, rgb, cls):
        """Draw a vertical quad in the plane X = x (parallel to the road)."""
        z0, z1 = max(z0, _NEAR), min(z1, _FAR)
        if z1 > z0:
            self.poly(self.proj([x] * 4, [y0, y1, y1, y0], [z0, z0, z1, z1]),
                      self.tone(rgb, z0), cls)

    def front(self, x0, x1, y0, y1, z, rgb, cls):
        """Draw a vertical quad facing the camera at depth z."""
        if _NEAR <= z <= _FAR:
            self.poly(self.proj([x0, x1, x1, x0], [y0, y0, y1, y1], [z] * 4),
                      self.tone(rgb, z), cls)

    def disc(self, x, y, z, radius, rgb, cls, thickness=-1):
        if _NEAR <= z <= _FAR:
            (px, py), = self.proj([x], [y], [z])
            r = max(int(round(self.f * radius / z)), 1)
            t = thickness if thickness < 0 else max(int(round(self.f * thickness / z)), 1)
            cv2.circle(self.img, (int(px), int(py)), r, self.tone(rgb, z), t)
            cv2.circle(self.lab, (int(px), int(py)), r, int(cls), t)


def _background(cam: _Camera):
    w, (top, bottom, _, _) = cam.world, _LIGHTS[cam.world.light]
    h = cam.img.shape[0]
    horizon = int(np.clip(round(cam.cy), 0, h))
    ramp = np.linspace(0, 1, max(horizon, 1))[:, None] ** 0.7
    cam.img[:horizon] = (np.asarray(top) * (1 - ramp) + np.asarray(bottom) * ramp)[:, None]
    cam.lab[:horizon] = SKY
    verge, cls = ((70, 110, 45), TREE) if w.grass else ((150, 145, 135), PAVEMENT)
    cam.img[horizon:], cam.lab[horizon:] = cam.tone(verge, 60), cls
    for x0, x1, top_y, grey in w.skyline:
        cam.front(x0, x1, -5, top_y, _FAR * 0.97, (grey, grey, grey + 10), BUILDING)
    road0, road1 = w.road
    cam.ground(road0 - w.walk[0], road0, _NEAR, _FAR, (165, 160, 150), PAVEMENT)
    cam.ground(road1, road1 + w.walk[1], _NEAR, _FAR, (165, 160, 150), PAVEMENT)
    cam.ground(road0, road1, _NEAR, _FAR, (w.asphalt,) * 3, ROAD)
    for x in (road0 + 0.25, road1 - 0.25):        # edge lines
        cam.ground(x - 0.08, x + 0.08, _NEAR, 80, (225, 225, 220), ROAD)
    first = math.floor((cam.cam_z + _NEAR - 3) / 9)
    for i in range(1, w.lanes):                    # dashed lane lines
        x = road0 + i * w.lane_w
        for n in range(first, first + 9):
            z = n * 9 - cam.cam_z
            cam.ground(x - 0.08, x + 0.08, z, z + 3, (230, 230, 225), ROAD)


def _buildings(cam: _Camera):
    for side, x, z0, z1, height, colour, floor, column in sorted(
            cam.world.buildings, key=lambda b: -b[2]):
        z0, z1 = z0 - cam.cam_z, z1 - cam.cam_z
        if z1 < _NEAR or z0 > _FAR:
            continue
        shade = colour * (0.75 if side < 0 else 1.0)
        cam.front(x, x + side * 12, 0, height, z0, colour * 0.6, BUILDING)
        cam.wall(x, 0, height, z0, z1, shade, BUILDING)
        if z0 > 70:  # windows too small to matter
            continue
        glass = np.array([60, 75, 95]) * (1.4 if side > 0 else 1.0)
        for y in np.arange(1.0, height - 1.5, floor):
            cam.wall(x, y, y + floor * 0.55, z0 + 0.5, z1 - 0.5, glass, BUILDING)
        for z in np.arange(z0 + 0.5, z1 - 0.5, column):
            cam.wall(x, 0.5, height - 0.5, z, z + column * 0.35, shade, BUILDING)


def _draw(cam: _Camera, obj, depth):
    kind, x = obj[0], obj[1]
    if kind == 'tree':
        trunk, radius, leaves = obj[4], obj[5], obj[6]
        cam.front(x - 0.15, x + 0.15, 0, trunk + radius * 0.5, depth, (90, 65, 40), TREE)
        cam.disc(x, trunk + radius * 0.8, depth, radius, leaves, TREE)
        cam.disc(x + radius * 0.4, trunk + radius * 1.2, depth, radius * 0.6, leaves * 0.8,
                 TREE)
    elif kind == 'lamp':
        height, sign = obj[4], obj[5]
        toward = 1.2 if x < 0 else -1.2
        cam.front(x - 0.08, x + 0.08, 0, height, depth, (110, 110, 115), POLE)
        cam.front(min(x, x + toward), max(x, x + toward), height - 0.12, height, depth,
                  (110, 110, 115), POLE)
        if sign:
            cam.front(x - 0.35, x + 0.35, 2.2, 2.9, depth - 0.05, (200, 30, 30), SIGN)
            cam.front(x - 0.25, x + 0.25, 2.35, 2.75, depth - 0.06, (235, 235, 235), SIGN)
    elif kind == 'fence':
        cam.wall(x, 0, obj[5], depth, depth + obj[4], (120, 100, 80), FENCE)
    elif kind == 'car':
        width, height, colour = obj[4], obj[5], obj[6]
        near_side = x - width / 2 if x > 0 else x + width / 2
        cam.wall(near_side, 0.15, height * 0.95, depth, depth + 4.3, colour * 0.8, CAR)
        cam.front(x - width / 2, x + width / 2, 0.15, height, depth, colour, CAR)
        cam.front(x - width * 0.4, x + width * 0.4, height * 0.62, height * 0.93, depth - 0.01,
                  (40, 45, 55), CAR)
        for s in (-1, 1):
            cam.front(x + s * width * 0.3, x + s * width * 0.48, 0, 0.4, depth - 0.02,
                      (20, 20, 20), CAR)
            cam.front(x + s * width * 0.32, x + s * width * 0.46, 0.7, 0.85, depth - 0.02,
                      (200, 20, 20), CAR)
    elif kind == 'person':
        height, colour = obj[4], obj[5]
        legs = (50, 50, 70)
        cam.front(x - 0.2, x - 0.03, 0, height * 0.47, depth, legs, PEDESTRIAN)
        cam.front(x + 0.03, x + 0.2, 0, height * 0.47, depth, legs, PEDESTRIAN)
        cam.front(x - 0.24, x + 0.24, height * 0.45, height * 0.85, depth, colour, PEDESTRIAN)
        cam.disc(x, height * 0.92, depth, 0.11, (225, 185, 150), PEDESTRIAN)
    else:  # cyclist
        colour = obj[5]
        cam.disc(x, 0.35, depth, 0.34, (25, 25, 25), BICYCLIST, thickness=0.05)
        cam.front(x - 0.03, x + 0.03, 0.3, 1.0, depth, (150, 150, 160), BICYCLIST)
        cam.front(x - 0.2, x + 0.2, 0.95, 1.55, depth - 0.01, colour, BICYCLIST)
        cam.disc(x, 1.65, depth - 0.01, 0.12, (225, 185, 150), BICYCLIST)


def _render(world: _World, height: int, width: int, cam_z: float, t: float,
            noise_seed: int) -> tuple:
    cam = _Camera(world, height, width, cam_z)
    _background(cam)
    _buildings(cam)
    visible = []
    for obj in world.objects:
        depth = obj[2] + obj[3] * t - cam_z
        if _NEAR + 0.5 < depth < _FAR * 0.8:
            visible.append((depth, obj))
    for depth, obj in sorted(visible, key=lambda v: -v[0]):
        _draw(cam, obj, depth)
    _, _, gain, tint = _LIGHTS[world.light]
    lut = np.clip(np.arange(256)[:, None] * gain * np.asarray(tint), 0, 255).astype(np.uint8)
    img = cv2.LUT(cam.img, lut.reshape(256, 1, 3))
    # Sensor noise, drawn at half resolution (cheaper) and deterministic by seed.
    noise = np.empty(((height + 1) // 2, (width + 1) // 2, 3), np.int16)
    cv2.setRNGSeed(noise_seed)
    cv2.randn(noise, 0, 4)
    noise = cv2.resize(noise, (width, height), interpolation=cv2.INTER_NEAREST)
    img = cv2.add(img, noise, dtype=cv2.CV_8U)
    return img, cam.lab


def _check(height, width):
    if int(height) < 8 or int(width) < 8:
        raise ValueError(f'scene size must be at least 8x8, got {height}x{width}')


def render_scene(seed: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Render one driving scene, deterministic by ``seed``.

    Args:
        seed: Any integer; equal seeds give identical scenes.
        height: Image height in pixels.
        width: Image width in pixels.

    Returns:
        (RGB image (height, width, 3) uint8, labels (height, width) uint8 with CamVid's
        class ids 0..10: sky, building, pole, road, pavement, tree, sign, fence, car,
        pedestrian, bicyclist).
    """
    _check(height, width)
    world = _World(int(seed), length=0.0)
    return _render(world, int(height), int(width), 0.0, 0.0, int(seed) & 0x7FFFFFFF)


def render_sequence(seed: int, n: int, height: int, width: int, speed_mps: float = 10.0,
                    fps: float = 10.0):
    """Yield ``n`` consecutive frames of a drive through one generated world.

    The camera moves forward at ``speed_mps``; other cars drive at their own speeds and
    pedestrians walk, so objects approach, pass and recede coherently.

    Args:
        seed: World seed; equal arguments give identical sequences.
        n: Number of frames.
        height: Image height in pixels.
        width: Image width in pixels.
        speed_mps: Camera speed in metres per second (>= 0).
        fps: Frames per second (> 0).

    Yields:
        (RGB image, labels) pairs as from :func:`render_scene`.
    """
    _check(height, width)
    if not speed_mps >= 0 or not fps > 0:
        raise ValueError(f'need speed_mps >= 0 and fps > 0, got {speed_mps}, {fps}')
    world = _World(int(seed), length=n * speed_mps / fps + 10)
    for i in range(int(n)):
        t = i / fps
        yield _render(world, int(height), int(width), speed_mps * t, t,
                      (int(seed) * 7919 + i) & 0x7FFFFFFF)
