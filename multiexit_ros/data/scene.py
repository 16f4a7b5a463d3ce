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
"""The 3-D world of a generated drive: layout, lighting and objects, in metres.

Coordinates: X to the right of the camera, Y up from the road, z forward along the road.
:mod:`.synthetic` projects and draws it.
"""

import numpy as np

__all__ = ['FAR', 'LIGHTS', 'NEAR', 'World']

NEAR, FAR = 1.0, 160.0          # clipping distances (m)
LIGHTS = {  # sky top, sky horizon, gain, tint (RGB multipliers)
    'day': ((70, 130, 210), (185, 210, 235), 1.0, (1.0, 1.0, 1.0)),
    'overcast': ((150, 155, 165), (200, 202, 205), 0.85, (0.95, 0.97, 1.0)),
    'dusk': ((40, 50, 110), (235, 150, 90), 0.7, (1.1, 0.9, 0.8)),
    'bright': ((90, 160, 235), (215, 230, 245), 1.15, (1.02, 1.0, 0.97)),
}


class World:
    """Static and moving objects of one drive, in metres (X right, Y up, z forward)."""

    def __init__(self, seed: int, length: float):
        rng = np.random.default_rng(seed)
        self.rng = rng
        self.light = list(LIGHTS)[rng.integers(len(LIGHTS))]
        self.cam_h = rng.uniform(1.2, 1.8)
        self.horizon = rng.uniform(0.36, 0.5)
        self.vp_x = rng.uniform(0.42, 0.58)
        self.focal = rng.uniform(0.75, 1.1)
        lanes, self.lane_w = int(rng.integers(2, 5)), rng.uniform(3.0, 3.6)
        self.road = (-self.lane_w * rng.uniform(0.5, lanes - 0.5), 0.0)
        self.road = (self.road[0], self.road[0] + lanes * self.lane_w)
        self.lanes = lanes
        self.walk = (rng.uniform(2.0, 4.0), rng.uniform(2.0, 4.0))    # pavement widths
        self.verge = (rng.uniform(0, 4), rng.uniform(0, 4))
        self.grass = rng.random() < 0.5
        self.asphalt = rng.uniform(60, 95)
        self.objects = []   # (kind, params...) with a depth for painter's order
        self.buildings = []
        left_edge = self.road[0] - self.walk[0] - self.verge[0]
        right_edge = self.road[1] + self.walk[1] + self.verge[1]
        for side, edge in ((-1, left_edge), (1, right_edge)):
            z = -10.0
            while z < length + FAR:
                size = rng.uniform(6, 25)
                if rng.random() > 0.12:
                    colour = rng.uniform(70, 200, 3) * rng.uniform(0.8, 1.2, 3)
                    self.buildings.append((side, edge + side * rng.uniform(0, 2), z, z + size,
                                           rng.uniform(6, 28), colour, rng.uniform(2.8, 3.5),
                                           rng.uniform(2.0, 4.0)))
                z += size + rng.uniform(0, 4)
        self.skyline = [(x, x + rng.uniform(10, 40), rng.uniform(10, 45),
                         rng.uniform(90, 170)) for x in np.arange(-200, 200, 25.0)]
        curbs = (self.road[0] - self.walk[0] + 0.5, self.road[1] + self.walk[1] - 0.5)
        for kind, spacing in (('tree', (8, 25)), ('lamp', (15, 35)), ('fence', (20, 60))):
            for side in (0, 1):
                z = rng.uniform(0, spacing[0])
                while z < length + FAR:
                    x = curbs[side] if kind != 'lamp' else (self.road[side] + (0.4 if side
                                                                               else -0.4))
                    if kind == 'fence':
                        span = rng.uniform(5, 25)
                        self.objects.append(['fence', x, z, 0.0, span, rng.uniform(0.9, 1.3)])
                    elif kind == 'tree':
                        self.objects.append(['tree', x, z, 0.0, rng.uniform(2, 3.5),
                                             rng.uniform(1.2, 3.0),
                                             rng.uniform(0.6, 1.1, 3) * (60, 120, 50)])
                    else:
                        self.objects.append(['lamp', x, z, 0.0, rng.uniform(5, 8),
                                             rng.random() < 0.5])
                    z += rng.uniform(*spacing)
        for _ in range(int(rng.integers(2, 9) * (length + FAR) / 100)):  # traffic
            lane = int(rng.integers(lanes))
            x = self.road[0] + (lane + 0.5) * self.lane_w + rng.uniform(-0.3, 0.3)
            self.objects.append(['car', x, rng.uniform(4, length + FAR), rng.uniform(0, 12),
                                 rng.uniform(1.6, 1.9), rng.uniform(1.3, 1.7),
                                 rng.uniform(20, 230, 3)])
        for _ in range(int(rng.integers(0, 6) * (length + FAR) / 100)):  # parked cars
            side = int(rng.integers(2))
            x = self.road[side] + (1.2 if side == 0 else -1.2)
            self.objects.append(['car', x, rng.uniform(4, length + FAR), 0.0,
                                 rng.uniform(1.6, 1.9), rng.uniform(1.3, 1.7),
                                 rng.uniform(20, 230, 3)])
        for _ in range(int(rng.integers(2, 14) * (length + FAR) / 100)):  # pedestrians
            side = int(rng.integers(2))
            x = self.road[side] + (-1 if side == 0 else 1) * rng.uniform(0.5, self.walk[side])
            self.objects.append(['person', x, rng.uniform(3, length + FAR),
                                 rng.uniform(-1.5, 1.5), rng.uniform(1.55, 1.9),
                                 rng.uniform(20, 220, 3)])
        for _ in range(int(rng.integers(0, 3) * (length + FAR) / 100)):  # cyclists
            x = self.road[1] - rng.uniform(0.6, 1.2)
            self.objects.append(['cyclist', x, rng.uniform(5, length + FAR),
                                 rng.uniform(3, 7), 1.75, rng.uniform(20, 220, 3)])
