"""Driving: a forward-facing ego camera on a road with lanes, traffic and roadside objects.

The world is flat (z up, metres). A road is a centreline built from curvature segments (straights,
clothoid ramps, arcs), carrying lanes in the ego direction (right-hand traffic) and optionally two
oncoming lanes, with dashed and solid markings. Other vehicles drive along their lanes at constant
speed; trees, street lamps and buildings line the road. We rasterize it ourselves (`_render`), so the
camera is exactly the pinhole model recorded in the columns.

The ego car is a kinematic bicycle model about the rear axle (Kong et al., "Kinematic and Dynamic
Vehicle Models for Autonomous Driving Control Design", IV 2015; here the rear-axle form):
    x' = v cos(yaw),  y' = v sin(yaw),  yaw' = v tan(delta) / L,  v' = a,  delta' = omega
with controls a (m/s^2) and steering rate omega (rad/s). A pure-pursuit steering law (Coulter 1992,
delta* = atan(2 L sin(alpha) / Ld)) and a proportional speed law produce the controls that carry out
the scenario; the controls are then what moves the car, so `action` is ground truth by construction.

Alignment: row k of every column describes frame k; `action` k = (a, omega) is held constant from
frame k to frame k+1 (RK4 with `SUBSTEPS` steps over 1/fps), as `bicycle_step` integrates it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from worldsmith.data.episode import Episode
from worldsmith.sources import episode_rng_seed
from worldsmith.sources._render import (
    OBJECT_LAYER,
    Quads,
    background,
    box_quads,
    ground_quads,
    pinhole_intrinsics,
    render,
    shade,
)

NAME = "driving"
DESCRIPTION = "ego-camera driving on a rasterized road with traffic; bicycle-model ego poses, actions, camera pose/intrinsics"
FPS = 10.0
SUBSTEPS = 4

SCENARIOS = {
    "lane_keep": "the ego car keeps its lane",
    "curve_left": "the ego car follows the road through a left curve",
    "curve_right": "the ego car follows the road through a right curve",
    "lane_change_left": "the ego car changes to the left lane",
    "lane_change_right": "the ego car changes to the right lane",
    "speed_up": "the ego car speeds up",
    "slow_down": "the ego car slows down",
}


@dataclass
class DrivingConfig:
    fps: float = FPS
    hfov_deg: float = 80.0
    wheelbase: float = 2.7  # metres, rear axle to front axle
    max_steer: float = 0.5  # rad, front wheel angle limit
    max_steer_rate: float = 0.8  # rad/s
    accel_limits: tuple[float, float] = (-5.0, 3.0)  # m/s^2
    camera_forward: float = 1.6  # camera ahead of the rear axle (m)
    camera_height: float = 1.5  # m
    camera_pitch_deg: float = 4.0  # looking down
    lane_width: float = 3.5
    marking_width: float = 0.25  # wider than real paint (0.15 m) so it survives 64x64
    dash: tuple[float, float] = (3.0, 6.0)  # painted, gap (m)
    vehicles: int = 5
    far: float = 0.0  # draw distance (m); 0: 100 m at 64 px (beyond it a lane is < 1 px), 160 m from 103 px
    segment: float = 5.0  # road tessellation (m): 7 cm chord error on the tightest (45 m) curve
    supersample: int = 0  # 0: 2 below 256 px, else 1


# --------------------------------------------------------------------------------------------------
# Road geometry


class Road:
    """A centreline sampled every `ds` metres from curvature segments; lateral offset d > 0 is left."""

    def __init__(self, segments: list[tuple[float, float, float]], start: float, ds: float = 0.5):
        # segments: (length, curvature at start, curvature at end) with curvature linear in s.
        kappa = []
        for length, k0, k1 in segments:
            n = max(1, int(round(length / ds)))
            kappa.append(np.linspace(k0, k1, n, endpoint=False))
        kappa = np.concatenate(kappa)
        self.s = start + ds * np.arange(len(kappa) + 1)
        self.kappa = np.append(kappa, kappa[-1])
        # Heading is the integral of curvature; position the integral of the heading (midpoint rule).
        self.psi = np.concatenate([[0.0], np.cumsum(kappa) * ds])
        mid = self.psi[:-1] + 0.5 * kappa * ds
        xy = np.concatenate([[[0.0, 0.0]], np.cumsum(np.stack([np.cos(mid), np.sin(mid)], 1) * ds, axis=0)])
        # Shift so that s = 0 sits at the world origin heading +x.
        i0 = int(np.argmin(np.abs(self.s)))
        c, s_ = np.cos(-self.psi[i0]), np.sin(-self.psi[i0])
        xy = (xy - xy[i0]) @ np.array([[c, s_], [-s_, c]])
        self.psi = self.psi - self.psi[i0]
        self.xy = xy
        self.ds = ds

    @property
    def end(self) -> float:
        return float(self.s[-1])

    def heading(self, s) -> np.ndarray:
        return np.interp(s, self.s, self.psi)

    def curvature(self, s) -> np.ndarray:
        return np.interp(s, self.s, self.kappa)

    def point(self, s, d) -> np.ndarray:
        """World (x, y) of road coordinates (s, d); broadcasts."""
        s, d = np.broadcast_arrays(np.asarray(s, dtype=np.float64), np.asarray(d, dtype=np.float64))
        x = np.interp(s, self.s, self.xy[:, 0])
        y = np.interp(s, self.s, self.xy[:, 1])
        psi = self.heading(s)
        return np.stack([x - d * np.sin(psi), y + d * np.cos(psi)], axis=-1)

    def locate(self, x: float, y: float, s_hint: float) -> tuple[float, float]:
        """Road coordinates (s, d) of a world point near arc length `s_hint`."""
        i = int(np.clip(round((s_hint - self.s[0]) / self.ds), 0, len(self.s) - 1))
        lo, hi = max(0, i - 40), min(len(self.s), i + 80)
        d2 = (self.xy[lo:hi, 0] - x) ** 2 + (self.xy[lo:hi, 1] - y) ** 2
        j = lo + int(np.argmin(d2))
        psi = self.psi[j]
        dx, dy = x - self.xy[j, 0], y - self.xy[j, 1]
        along = dx * np.cos(psi) + dy * np.sin(psi)
        across = -dx * np.sin(psi) + dy * np.cos(psi)
        return float(self.s[j] + along), float(across)


# --------------------------------------------------------------------------------------------------
# Ego vehicle: kinematic bicycle model


def bicycle_derivative(state, accel: float, steer_rate: float, wheelbase: float) -> tuple:
    """d/dt of (x, y, yaw, v, delta) for the rear-axle kinematic bicycle model."""
    x, y, yaw, v, delta = state
    return (v * math.cos(yaw), v * math.sin(yaw), v * math.tan(delta) / wheelbase, accel, steer_rate)


def bicycle_step(state: np.ndarray, action: np.ndarray, dt: float, wheelbase: float, substeps: int = SUBSTEPS):
    """Advance (x, y, yaw, v, delta) by dt under constant (accel, steer_rate) with RK4.

    Scalar Python floats on purpose: five numbers per step are far cheaper than numpy arrays.
    """
    a, w = float(action[0]), float(action[1])
    h = dt / substeps
    s = tuple(float(c) for c in state)
    for _ in range(substeps):
        k1 = bicycle_derivative(s, a, w, wheelbase)
        k2 = bicycle_derivative(tuple(si + 0.5 * h * ki for si, ki in zip(s, k1)), a, w, wheelbase)
        k3 = bicycle_derivative(tuple(si + 0.5 * h * ki for si, ki in zip(s, k2)), a, w, wheelbase)
        k4 = bicycle_derivative(tuple(si + h * ki for si, ki in zip(s, k3)), a, w, wheelbase)
        s = tuple(si + h / 6.0 * (p + 2 * q + 2 * r + u) for si, p, q, r, u in zip(s, k1, k2, k3, k4))
    return np.array(s)


def _smoothstep(u):
    u = np.clip(u, 0.0, 1.0)
    return u * u * u * (u * (6 * u - 15) + 10)  # quintic: zero velocity and acceleration at both ends


@dataclass
class Plan:
    """What the scenario asks of the ego car, as functions of time."""

    scenario: str
    lane_from: float  # lateral offset (m)
    lane_to: float
    t_start: float
    duration: float
    v_from: float
    v_to: float
    accel: float  # m/s^2 magnitude of the speed ramp

    def lateral(self, t):
        return self.lane_from + (self.lane_to - self.lane_from) * _smoothstep((t - self.t_start) / self.duration)

    def speed(self, t):
        if self.v_to == self.v_from:
            return self.v_from
        step = self.accel * max(0.0, t - self.t_start)
        return min(self.v_to, self.v_from + step) if self.v_to > self.v_from else max(self.v_to, self.v_from - step)


def simulate_ego(road: Road, plan: Plan, frames: int, cfg: DrivingConfig):
    """Closed-loop ego trajectory: states (T, 5) = x, y, yaw, v, delta and actions (T, 2) = a, omega."""
    dt = 1.0 / cfg.fps
    L = cfg.wheelbase
    p0 = road.point(0.0, plan.lane_from)
    delta0 = float(np.arctan(L * road.curvature(0.0)))
    state = np.array([p0[0], p0[1], float(road.heading(0.0)), plan.v_from, delta0])
    states = np.zeros((frames, 5))
    actions = np.zeros((frames, 2))
    s_hint = 0.0
    for k in range(frames):
        t = k * dt
        states[k] = state
        x, y, yaw, v, delta = state
        s_e, _ = road.locate(x, y, s_hint)
        s_hint = s_e
        # Pure pursuit towards the planned lane, a speed-dependent distance ahead.
        look = max(6.0, 0.9 * v + 3.0)
        target = road.point(s_e + look, plan.lateral(t + look / max(v, 1.0)))
        dx, dy = target[0] - x, target[1] - y
        xl = dx * np.cos(yaw) + dy * np.sin(yaw)
        yl = -dx * np.sin(yaw) + dy * np.cos(yaw)
        ld = max(np.hypot(xl, yl), 1e-6)
        clip = lambda value, lo, hi: min(max(value, lo), hi)
        delta_star = clip(math.atan(2.0 * L * yl / (ld * ld)), -cfg.max_steer, cfg.max_steer)
        omega = clip((delta_star - delta) / 0.3, -cfg.max_steer_rate, cfg.max_steer_rate)
        omega = clip(omega, (-cfg.max_steer - delta) / dt, (cfg.max_steer - delta) / dt)
        accel = clip(2.0 * (plan.speed(t + dt) - v), *cfg.accel_limits)
        accel = max(accel, -v / dt)  # never roll backwards
        actions[k] = (accel, omega)
        state = bicycle_step(state, actions[k], dt, L)
    return states, actions


# --------------------------------------------------------------------------------------------------
# Scene: road layout, plan, traffic, roadside objects


PALETTE_CARS = np.array([[200, 30, 30], [30, 70, 190], [235, 235, 235], [35, 35, 40], [160, 165, 170],
                         [230, 190, 30], [30, 130, 60], [230, 110, 20], [120, 30, 120], [90, 160, 210]], float)
PALETTE_BUILDINGS = np.array([[200, 180, 150], [160, 80, 60], [140, 140, 145], [110, 125, 150], [220, 210, 190],
                              [175, 120, 90]], float)
ASPHALT, SHOULDER, WHITE, YELLOW = (78, 78, 84), (128, 118, 100), (235, 235, 230), (235, 190, 40)
GLASS, TRUNK = np.array([45, 55, 70.0]), np.array([95, 65, 40.0])
TAIL_LIGHT, HEAD_LIGHT = np.array([230, 30, 25.0]), np.array([250, 245, 200.0])


@dataclass
class Vehicle:
    kind: str
    lane: float  # lateral offset d
    s0: float  # arc length of the centre at t = 0
    speed: float  # m/s along the road (negative: oncoming)
    size: tuple[float, float, float]  # bounding box length, width, height
    color: tuple[float, float, float]


@dataclass
class Scene:
    cfg: DrivingConfig
    road: Road
    plan: Plan
    size: int
    lanes: int
    oncoming: int
    states: np.ndarray
    actions: np.ndarray
    vehicles: list[Vehicle]
    static: Quads
    static_s: np.ndarray  # arc length of each static quad, sorted, to select what is in range
    K: np.ndarray
    backdrop: np.ndarray
    meta: dict = field(default_factory=dict)
    template: tuple | None = None  # vehicle quads in their own frames, built on first use
    _traffic: np.ndarray | None = None  # the vehicles' parameters as arrays, built on first use

    @property
    def frames(self) -> int:
        return len(self.states)

    def camera_pose(self, k: int) -> np.ndarray:
        return camera_pose(self.states[k], self.cfg)

    def vehicle_states(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Bounding-box centres (N, 3) and yaws (N,) of the other vehicles at frame k."""
        if not self.vehicles:
            return np.zeros((0, 3)), np.zeros(0)
        if self._traffic is None:  # (s0, speed, lane, half height, yaw offset) as arrays, once
            v = self.vehicles
            self._traffic = np.array([[x.s0, x.speed, x.lane, x.size[2] / 2, np.pi if x.speed < 0 else 0.0] for x in v]).T
        s0, speed, lane, half_h, flip = self._traffic
        s = s0 + speed * (k / self.cfg.fps)
        xy = self.road.point(s, lane)
        return np.column_stack([xy, half_h]), self.road.heading(s) + flip


def camera_pose(state: np.ndarray, cfg: DrivingConfig) -> np.ndarray:
    """World-from-camera 4x4 (OpenCV axes: x right, y down, z forward) of the camera on the ego car."""
    x, y, yaw = state[0], state[1], state[2]
    p = np.radians(cfg.camera_pitch_deg)
    forward = np.array([np.cos(yaw) * np.cos(p), np.sin(yaw) * np.cos(p), -np.sin(p)])
    right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    down = np.array([-np.sin(p) * np.cos(yaw), -np.sin(p) * np.sin(yaw), -np.cos(p)])  # forward x right
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2] = right, down, forward
    pose[:3, 3] = (x + cfg.camera_forward * np.cos(yaw), y + cfg.camera_forward * np.sin(yaw), cfg.camera_height)
    return pose


def _make_plan(rng: np.random.Generator, scenario: str, lanes: int, duration: float, cfg: DrivingConfig):
    w = cfg.lane_width
    lane_center = lambda i: -(i + 0.5) * w  # lane 0 is next to the divider; right-hand traffic
    t_start = min(0.5, 0.1 * duration)
    maneuver = float(np.clip(0.8 * duration, 2.0, 4.0))
    v = float(rng.uniform(8.0, 16.0))
    ego_lane = int(rng.integers(lanes))
    lane_to = ego_lane
    v_to, accel = v, 0.0
    if scenario == "lane_change_left":
        ego_lane = int(rng.integers(1, lanes))
        lane_to = ego_lane - 1
    elif scenario == "lane_change_right":
        ego_lane = int(rng.integers(0, lanes - 1))
        lane_to = ego_lane + 1
    elif scenario == "speed_up":
        v = float(rng.uniform(3.0, 8.0))
        v_to, accel = v + float(rng.uniform(7.0, 11.0)), 2.8
    elif scenario == "slow_down":
        v = float(rng.uniform(14.0, 20.0))
        v_to, accel = float(rng.uniform(1.0, 5.0)), 4.5
    return Plan(scenario, lane_center(ego_lane), lane_center(lane_to), t_start, maneuver, v, v_to, accel)


def _make_road(rng: np.random.Generator, scenario: str, plan: Plan, duration: float, cfg: DrivingConfig) -> Road:
    v_max = max(plan.v_from, plan.v_to)
    # Room for the fastest vehicle (ego, traffic up to 18 m/s, or the ego + 2 m/s fallback) plus the
    # longest draw distance, so that nobody drives off the tessellated road and scenes match across sizes.
    length = max(v_max + 2.0, 18.0) * duration + 160.0 + 60.0
    if scenario in ("curve_left", "curve_right"):
        sign = 1.0 if scenario == "curve_left" else -1.0
        radius = float(rng.uniform(45.0, 110.0))
        # The curve begins early enough that a short episode drives into it.
        entry = plan.v_from * float(rng.uniform(0.1, 0.3)) * duration
        ramp = 15.0
        arc = radius * float(rng.uniform(0.6, 1.4))
        k = sign / radius
        segments = [(40.0 + entry, 0.0, 0.0), (ramp, 0.0, k), (arc, k, k), (ramp, k, 0.0)]
    else:
        # Gentle bends: a few long arcs of radius >= 500 m.
        segments = [(40.0, 0.0, 0.0)]
        k = 0.0
        while sum(seg[0] for seg in segments) < length + 40:
            k_next = float(rng.uniform(-1 / 500, 1 / 500)) if rng.random() < 0.6 else 0.0
            segments.append((30.0, k, k_next))
            segments.append((float(rng.uniform(40, 120)), k_next, k_next))
            k = k_next
    total = sum(seg[0] for seg in segments)
    if total < length + 40:
        segments.append((length + 40 - total, 0.0, 0.0))
    return Road(segments, start=-40.0)


def _place_vehicles(rng, cfg: DrivingConfig, lanes: int, oncoming: int, road: Road, states: np.ndarray,
                    ego_sd: np.ndarray) -> list[Vehicle]:
    """Vehicles in random lanes that never come near the ego car over the episode."""
    w = cfg.lane_width
    t = np.arange(len(states)) / cfg.fps
    lane_offsets = [-(i + 0.5) * w for i in range(lanes)] + [(j + 0.5) * w for j in range(oncoming)]
    out = []
    for _ in range(cfg.vehicles):
        truck = rng.random() < 0.2
        size = (8.4, 2.5, 3.4) if truck else (float(rng.uniform(4.0, 4.8)), 1.8, 1.5)
        color = tuple(PALETTE_CARS[rng.integers(len(PALETTE_CARS))])
        placed = None
        for _attempt in range(60):
            lane = lane_offsets[int(rng.integers(len(lane_offsets)))]
            if lane > 0:  # oncoming: starts ahead, drives towards us
                speed = -float(rng.uniform(8.0, 16.0))
                s0 = float(rng.uniform(20.0, 100.0)) + float(-speed * t[-1] * rng.uniform(0.3, 1.0))
            else:
                speed = float(rng.uniform(6.0, 18.0))
                s0 = float(rng.uniform(8.0, 110.0))
            s_v = s0 + speed * t
            clear = size[0] / 2 + 2.4 + 4.0
            conflict = (np.abs(lane - ego_sd[:, 1]) < 2.6) & (np.abs(s_v - ego_sd[:, 0]) < clear)
            crowded = any(o.lane == lane and np.min(np.abs(o.s0 + o.speed * t - s_v)) < (o.size[0] + size[0]) / 2 + 3
                          for o in out)
            if not conflict.any() and not crowded:
                placed = Vehicle("truck" if truck else "car", lane, s0, speed, size, color)
                break
        if placed is None:  # always ahead and faster than the ego car: no conflict possible
            lane = lane_offsets[int(rng.integers(lanes))]
            s0 = 30.0 + 12.0 * len(out)
            placed = Vehicle("truck" if truck else "car", lane, s0, float(states[:, 3].max()) + 2.0, size, color)
        out.append(placed)
    s_max = road.end - 5
    for v in out:  # keep everyone on the tessellated road
        v.s0 = float(np.clip(v.s0, road.s[0] + 5, s_max - abs(v.speed) * t[-1]))
    return out


def _roadside(rng, cfg: DrivingConfig, road: Road, left_edge: float, right_edge: float, group0: int):
    """Trees, street lamps and buildings on both sides; returns quads and each quad's arc length.

    Slots every 5-11 m on each side hold a tree (45%), a building (15%) or nothing; lamps stand on
    the right edge every 30 m. All random draws are made in bulk (a fixed number per slot), then
    each kind is built in one batched call.
    """
    span = road.end - 5 - (road.s[0] + 2.0)
    steps = rng.uniform(5.0, 11.0, int(span / 5.0) + 2)
    s_slots = road.s[0] + 2.0 + np.concatenate([[0.0], np.cumsum(steps)[:-1]])
    s_slots = s_slots[s_slots < road.end - 5]
    n = len(s_slots)
    side = np.tile([-1.0, 1.0], n)
    s_all = np.repeat(s_slots, 2)
    edge = np.where(side < 0, right_edge, left_edge)
    kind = rng.random(2 * n)
    u = rng.random((2 * n, 7))  # per-slot parameters, used according to the kind
    groups = group0 + np.arange(2 * n)

    tree = kind < 0.45
    t_s, t_d = s_all[tree], (edge + side * (2.5 + 9.5 * u[:, 0]))[tree]
    trunk_h, crown_w, crown_h = (1.8 + 1.2 * u[:, 1])[tree], (2.2 + 1.8 * u[:, 2])[tree], (2.5 + 2.5 * u[:, 3])[tree]
    greens = np.array([40, 110, 40.0]) * (0.7 + 0.6 * u[:, 4:5])[tree]
    t_yaw = (np.pi / 2 * u[:, 5])[tree]
    trees = np.column_stack([t_s, t_d, trunk_h, crown_w, crown_h, t_yaw, greens, groups[tree]])

    bldg = (kind >= 0.45) & (kind < 0.6)
    depth = 8.0 + 8.0 * u[:, 0]
    b_d = edge + side * (6.0 + 8.0 * u[:, 1] + depth / 2)
    b_h, b_len = 5.0 + 17.0 * u[:, 2], 8.0 + 12.0 * u[:, 3]
    b_color = PALETTE_BUILDINGS[(u[:, 4] * len(PALETTE_BUILDINGS)).astype(int)]
    buildings = np.column_stack([s_all, b_d, b_len, depth, b_h, b_color, groups])[bldg]

    lamp_s = np.arange(road.s[0] + 30.0 * rng.random(), road.end - 5, 30.0)
    lamps = np.column_stack([lamp_s, np.full(len(lamp_s), right_edge - 1.0),
                             group0 + 2 * n + np.arange(len(lamp_s))])
    group = group0 + 2 * n + len(lamp_s)

    parts, s_of = [], []
    if len(trees):  # crown (tapered box) then trunk, drawn in that order
        t = trees
        xy = road.point(t[:, 0], t[:, 1])
        trunk_h, crown_w, crown_h = t[:, 2], t[:, 3], t[:, 4]
        center = np.column_stack([xy, trunk_h + crown_h / 2])
        parts.append(box_quads(center, t[:, 5], np.column_stack([crown_w, crown_w, crown_h]), t[:, 6:9],
                               t[:, 9].astype(int), order=0, taper=np.full(len(t), 0.25)))
        parts.append(box_quads(np.column_stack([xy, trunk_h / 2]), t[:, 5],
                               np.column_stack([np.full(len(t), 0.35), np.full(len(t), 0.35), trunk_h]), TRUNK,
                               t[:, 9].astype(int), order=1, center=center))
        s_of += [np.repeat(t[:, 0], 6)] * 2
    if len(buildings):
        b = buildings
        xy = road.point(b[:, 0], b[:, 1])
        parts.append(box_quads(np.column_stack([xy, b[:, 4] / 2]), road.heading(b[:, 0]), b[:, 2:5], b[:, 5:8],
                               b[:, 8].astype(int)))
        s_of.append(np.repeat(b[:, 0], 6))
    if len(lamps):  # pole, then an arm reaching over the road
        p = lamps
        n = len(p)
        xy, arm_xy, yaw = road.point(p[:, 0], p[:, 1]), road.point(p[:, 0], p[:, 1] + 0.9), road.heading(p[:, 0])
        pole_c = np.column_stack([xy, np.full(n, 3.5)])
        grey = [150, 150, 155.0]
        parts.append(box_quads(pole_c, yaw, np.tile([0.22, 0.22, 7.0], (n, 1)), grey, p[:, 2].astype(int), order=0))
        parts.append(box_quads(np.column_stack([arm_xy, np.full(n, 6.9)]), yaw, np.tile([0.2, 1.8, 0.2], (n, 1)), grey,
                               p[:, 2].astype(int), order=1, center=pole_c))
        s_of += [np.repeat(p[:, 0], 6)] * 2
    return Quads.concat(parts), (np.concatenate(s_of) if s_of else np.zeros(0)), group


def _ground(cfg: DrivingConfig, road: Road, lanes: int, oncoming: int, rng: np.random.Generator):
    """Shoulder, asphalt and lane markings as flat quads, with each quad's arc length."""
    w, mw = cfg.lane_width, cfg.marking_width
    right, left = -lanes * w, oncoming * w
    s_edges = np.arange(road.s[0], road.end - 1e-6, cfg.segment)
    s0, s1 = s_edges[:-1], s_edges[1:]

    def strip(d0, d1, sa, sb):
        a, b = road.point(sa, d0), road.point(sb, d0)
        c, d = road.point(sb, d1), road.point(sa, d1)
        v = np.stack([a, b, c, d], axis=1)
        return np.concatenate([v, np.zeros(v.shape[:2] + (1,))], axis=-1)

    parts = [ground_quads(strip(right - 2.0, left + 2.0, s0, s1), SHOULDER, 0),
             ground_quads(strip(right - 0.3, left + 0.3, s0, s1), ASPHALT, 1)]
    s_of = [(s0 + s1) / 2, (s0 + s1) / 2]
    solid = [right + mw, left - mw if oncoming == 0 else None]
    for d in solid:
        if d is not None:
            parts.append(ground_quads(strip(d - mw / 2, d + mw / 2, s0, s1), WHITE, 2))
            s_of.append((s0 + s1) / 2)
    if oncoming:
        for d in (-mw * 0.8, mw * 0.8):  # double yellow centre line
            parts.append(ground_quads(strip(d - mw / 2, d + mw / 2, s0, s1), YELLOW, 2))
            s_of.append((s0 + s1) / 2)
        parts.append(ground_quads(strip(left - mw * 1.5, left - mw / 2, s0, s1), WHITE, 2))
        s_of.append((s0 + s1) / 2)
    painted, gap = cfg.dash
    phase = float(rng.uniform(0, painted + gap))
    da = np.arange(road.s[0] + phase, road.end - painted, painted + gap)
    dashed = [-i * w for i in range(1, lanes)] + [j * w for j in range(1, oncoming)]
    for d in dashed:
        parts.append(ground_quads(strip(d - mw / 2, d + mw / 2, da, da + painted), WHITE, 2))
        s_of.append(da + painted / 2)
    return Quads.concat(parts), np.concatenate(s_of)


def make_scene(rng: np.random.Generator, frames: int, size: int = 64, scenario: str | None = None,
               cfg: DrivingConfig | None = None) -> Scene:
    """Everything about one episode except the pixels: road, plan, ego trajectory, traffic, scenery."""
    cfg = cfg or DrivingConfig()
    if scenario is None:
        scenario = list(SCENARIOS)[int(rng.integers(len(SCENARIOS)))]
    if scenario not in SCENARIOS:
        raise ValueError(f"driving: unknown scenario {scenario!r}; choose one of: {', '.join(SCENARIOS)}")
    duration = frames / cfg.fps
    lanes = int(rng.integers(2, 4))
    oncoming = 2 if rng.random() < 0.5 else 0
    plan = _make_plan(rng, scenario, lanes, duration, cfg)
    road = _make_road(rng, scenario, plan, duration, cfg)
    states, actions = simulate_ego(road, plan, frames, cfg)
    ego_sd = np.zeros((frames, 2))
    hint = 0.0
    for k in range(frames):
        ego_sd[k] = road.locate(states[k, 0], states[k, 1], hint)
        hint = ego_sd[k, 0]
    vehicles = _place_vehicles(rng, cfg, lanes, oncoming, road, states, ego_sd)
    ground, ground_s = _ground(cfg, road, lanes, oncoming, rng)
    scenery, scenery_s, _ = _roadside(rng, cfg, road, oncoming * cfg.lane_width + 2.0, -lanes * cfg.lane_width - 2.0,
                                      group0=1 + len(vehicles))
    static = Quads.concat([ground, scenery])
    static_s = np.concatenate([ground_s, scenery_s])
    order = np.argsort(static_s, kind="stable")
    K = pinhole_intrinsics(size, size, cfg.hfov_deg)
    sky_top, sky_horizon = (70, 120, 200), (185, 205, 230)
    grass = np.array([70, 120, 50.0]) * float(rng.uniform(0.8, 1.15))
    backdrop = background(size, size, K, np.radians(cfg.camera_pitch_deg), sky_top, sky_horizon, grass,
                          grass * 0.5 + np.array(sky_horizon) * 0.5)
    meta = {
        "scenario": scenario,
        "lanes": lanes,
        "oncoming_lanes": oncoming,
        "lane_width": cfg.lane_width,
        "ego_lane_from": plan.lane_from,
        "ego_lane_to": plan.lane_to,
        "speed_from": plan.v_from,
        "speed_to": plan.v_to,
        "wheelbase": cfg.wheelbase,
        "integrator": f"rk4 x{SUBSTEPS} per frame, action held constant between frames",
        "camera_mount": {"forward": cfg.camera_forward, "height": cfg.camera_height,
                         "pitch_deg": cfg.camera_pitch_deg, "hfov_deg": cfg.hfov_deg},
        "vehicles": [{"kind": v.kind, "size": list(v.size), "color": list(v.color), "lane": v.lane,
                      "speed": v.speed} for v in vehicles],
        "vehicle_ids": list(range(1, len(vehicles) + 1)),
    }
    return Scene(cfg, road, plan, size, lanes, oncoming, states, actions, vehicles, static.select(order),
                 static_s[order], K, backdrop, meta)


def _vehicle_template(vehicles: list[Vehicle]) -> tuple[Quads, np.ndarray, np.ndarray]:
    """Every vehicle's boxes in its own frame (bounding-box centre at the origin, heading +x).

    Returns the quads, their unshaded colours and the index of the vehicle owning each quad; a frame
    then only rotates and translates them (`vehicle_quads`), which is far cheaper than rebuilding boxes.
    """
    if not vehicles:
        return Quads.concat([]), np.zeros((0, 3)), np.zeros(0, int)
    n = len(vehicles)
    sizes = np.array([v.size for v in vehicles])
    colors = np.array([v.color for v in vehicles])
    owner = np.arange(n)
    car = np.array([v.kind == "car" for v in vehicles])
    zero = np.zeros(n)
    parts, base, owners = [], [], []

    def add(mask, centers, dims, color, order, center=None, taper=None):
        q = box_quads(centers[mask], zero[mask], dims[mask], color[mask], owner[mask] + 1, order=order,
                      center=None if center is None else center[mask], taper=None if taper is None else taper[mask])
        parts.append(q)
        base.append(np.repeat(color[mask], 6, axis=0))
        owners.append(np.repeat(owner[mask], 6))

    L, W, H = sizes[:, 0], sizes[:, 1], sizes[:, 2]
    origin = np.zeros((n, 3))
    # Cars: body, then a tapered glass cabin on top, set back a little (drawn after the body).
    body_h = 0.95
    add(car, np.column_stack([zero, zero, body_h / 2 - H / 2]), np.column_stack([L, W, np.full(n, body_h)]), colors,
        0, center=origin)
    add(car, np.column_stack([np.full(n, -0.25), zero, body_h + (H - body_h) / 2 - H / 2]),
        np.column_stack([L * 0.5, W * 0.9, H - body_h]), np.tile(GLASS, (n, 1)), 1, center=origin,
        taper=np.full(n, 0.8))
    # Lights, drawn after the body they stick out of: red at the back, pale yellow at the front.
    for along, color in ((-1.0, TAIL_LIGHT), (1.0, HEAD_LIGHT)):
        for across in (-1.0, 1.0):
            add(car, np.column_stack([along * (L / 2 + 0.02), across * (W / 2 - 0.3), np.full(n, 0.7) - H / 2]),
                np.tile([0.08, 0.4, 0.16], (n, 1)), np.tile(color, (n, 1)), 2, center=origin)
    # Trucks: cab in front, cargo box behind, each sorted by its own centre.
    truck = ~car
    add(truck, np.column_stack([L / 2 - 1.1, zero, 1.3 - H / 2]), np.column_stack([np.full(n, 2.2), W * 0.96,
                                                                                  np.full(n, 2.6)]), colors, 0)
    add(truck, np.column_stack([np.full(n, -1.2), zero, zero]),
        np.column_stack([L - 2.4, W, H]), np.tile([225, 225, 220.0], (n, 1)), 0)
    return Quads.concat(parts), np.concatenate(base), np.concatenate(owners)


def vehicle_quads(scene: Scene, k: int) -> Quads:
    """The other vehicles at frame k: their template quads rotated by yaw and moved to their centres."""
    if scene.template is None:
        scene.template = _vehicle_template(scene.vehicles)
    local, base, owner = scene.template
    if len(local) == 0:
        return local
    centers, yaws = scene.vehicle_states(k)
    c, s = np.cos(yaws)[owner], np.sin(yaws)[owner]

    def pose(p):  # rotate about z by the owner's yaw, then translate to its centre
        x, y = p[..., 0], p[..., 1]
        return np.stack([c * x - s * y, s * x + c * y, p[..., 2]], axis=-1)

    verts = np.stack([pose(local.verts[:, i]) for i in range(4)], axis=1) + centers[owner][:, None, :]
    normal = pose(local.normal)
    return Quads(verts, shade(base, normal), normal, local.layer, local.group, local.order,
                 pose(local.center) + centers[owner])


def render_frame(scene: Scene, k: int, with_ids: bool = False):
    """The RGB frame k (size, size, 3) uint8, and with `with_ids` the supersampled object-id image."""
    cfg = scene.cfg
    ss = cfg.supersample or (2 if scene.size < 256 else 1)
    pose = scene.camera_pose(k)
    s_cam, _ = scene.road.locate(pose[0, 3], pose[1, 3], _s_guess(scene, k))
    far = cfg.far or float(min(160.0, 100.0 * scene.size / 64))
    lo, hi = np.searchsorted(scene.static_s, [s_cam - 15.0, s_cam + far + 10.0])
    quads = Quads.concat([scene.static.select(slice(lo, hi)), vehicle_quads(scene, k)])
    return render(quads, pose, scene.K, scene.backdrop, ss=ss, far=far, with_ids=with_ids)


def _s_guess(scene: Scene, k: int) -> float:
    # Arc length travelled is close to the path length of the ego car.
    return float(np.sum(scene.states[:k, 3]) / scene.cfg.fps)


def generate(
    episodes: int,
    frames: int,
    size: int = 64,
    seed: int = 0,
    scenario: str | None = None,
    vehicles: int = 5,
    fps: float = FPS,
    **options,
) -> Iterator[Episode]:
    """Yield driving episodes. `scenario` (one of SCENARIOS) fixes the manoeuvre; default: drawn per episode.

    Columns (row k = frame k): `ego.pose` (T, 3) x, y, yaw (m, rad, world frame, yaw unwrapped),
    `ego.speed` (T,), `ego.steering` (T,) front wheel angle (rad), `action` (T, 2) acceleration
    (m/s^2) and steering rate (rad/s) applied from frame k to k+1, `observation.state` (T, 5)
    x, y, yaw, speed, steering, `camera.pose` (T, 4, 4) world-from-camera (OpenCV axes),
    `camera.intrinsics` (T, 3, 3), `vehicles.position` (T, N, 3) bounding-box centres,
    `vehicles.yaw` (T, N).
    """
    cfg_fields = DrivingConfig.__dataclass_fields__
    unknown = set(options) - set(cfg_fields)
    if unknown:
        raise ValueError(f"driving: unknown options {sorted(unknown)} (scenario, vehicles, fps, {', '.join(cfg_fields)})")
    if fps <= 0 or vehicles < 0:
        raise ValueError(f"driving: need fps > 0 and vehicles >= 0 (got {fps}, {vehicles})")
    cfg = DrivingConfig(fps=float(fps), vehicles=int(vehicles), **options)
    for k in range(episodes):
        rng = np.random.default_rng(episode_rng_seed(seed, k))
        scene = make_scene(rng, frames, size, scenario, cfg)
        images = np.stack([render_frame(scene, t)[0] for t in range(frames)])
        yield episode_from_scene(scene, images, seed, k)


def episode_from_scene(scene: Scene, images: np.ndarray, seed: int, index: int) -> Episode:
    T = scene.frames
    poses = np.stack([scene.camera_pose(t) for t in range(T)])
    vstates = [scene.vehicle_states(t) for t in range(T)]
    n = len(scene.vehicles)
    columns = {
        "observation.state": scene.states.astype(np.float32),
        "action": scene.actions.astype(np.float32),
        "ego.pose": scene.states[:, :3].astype(np.float32),
        "ego.speed": scene.states[:, 3].astype(np.float32),
        "ego.steering": scene.states[:, 4].astype(np.float32),
        "camera.pose": poses.astype(np.float32),
        "camera.intrinsics": np.broadcast_to(scene.K, (T, 3, 3)).astype(np.float32),
        "vehicles.position": np.stack([p for p, _ in vstates]).reshape(T, n, 3).astype(np.float32),
        "vehicles.yaw": np.stack([y for _, y in vstates]).reshape(T, n).astype(np.float32),
    }
    meta = {"source": NAME, "seed": seed, "episode": index, "fps": scene.cfg.fps, **scene.meta}
    return Episode(images, columns, SCENARIOS[scene.plan.scenario], scene.cfg.fps, meta)
