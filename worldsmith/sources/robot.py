"""`robot` source: a KUKA iiwa arm on a table with 1-3 coloured cubes, driven by a scripted, noisy policy.

Each episode picks one task on one cube: reach ("reach the red cube"), push left/right ("push the red cube left",
left/right as seen by the camera) or pick-and-lift ("pick up the blue cube"). The policy plans waypoints for the
tool point, eases between them, adds small smooth noise, and drives the arm by inverse kinematics
(`calculateInverseKinematics`) under position control.

The gripper: pybullet_data's iiwa has none, so a small two-finger gripper is built from primitives (a palm and two
prismatic fingers with collision) and held to the flange by a fixed constraint. Grasping uses the fingers' contact
plus, when the gripper is closed with a cube between its fingers, a fixed constraint from the palm to the cube
(friction alone slips in pybullet); opening removes it.

Columns (T frames; N = 3 cube slots, padded with zeros):
    action             (T, 7) float32: the command applied between frame k and frame k+1 (recorded at frame k):
                       [dx, dy, dz] change of the tool-point target (world metres), [droll, dpitch, dyaw] change of
                       the target orientation parameters (radians; orientation = Rz(yaw) Ry(pitch) Rx(roll) R_down,
                       R_down pointing the tool straight down), gripper (1 = close, 0 = open). Integrating the
                       deltas from ee.pose[0] follows ee.pose up to the controller's tracking error.
    observation.state  (T, 8) float32: 7 joint angles (rad) + gripper opening (m, distance between finger centres)
    ee.pose            (T, 7) float32: tool point (between the fingertips) xyz + orientation quaternion (x, y, z, w)
    object.pose        (T, N, 7) float32: cube centre xyz + quaternion (x, y, z, w)
    object.count       (T,) int64: number of real cubes; object.target (T,) int64: index of the task's cube
    camera.pose, camera.intrinsics: fixed camera, conventions in `_bullet` (OpenCV axes, pixels).
"""

from __future__ import annotations

import tempfile
from typing import Iterator

import numpy as np

from worldsmith.data.episode import Episode
from worldsmith.sources import episode_rng_seed
from worldsmith.sources._bullet import COLORS, Camera, add_body, add_ground, bullet_client, ground_texture, load_texture, look_at, render, smoothstep

NAME = "robot"
DESCRIPTION = "KUKA iiwa + 2-finger gripper on a table, scripted noisy reach/push/pick; GT action, joints, ee and cube poses"
FPS = 10.0
SIM_HZ = 240
IK_EVERY = 6  # physics steps between IK solves
TASKS = ("reach", "push", "pick")
MAX_OBJECTS = 3
FOV_Y_DEG = 55.0

EE_LINK = 6  # iiwa flange link
ARM_JOINTS = 7
PALM_OFFSET = 0.058  # flange frame -> palm centre along the tool axis (flange face is 0.048 below the link frame)
FINGER_DROP = 0.035  # palm centre -> finger centres (the tool point) along the tool axis
TOOL_OFFSET = PALM_OFFSET + FINGER_DROP
FINGER_OPEN, FINGER_CLOSED = 0.055, 0.008  # finger joint targets (m from the centre line); closed fingers nearly touch
CUBE_HALF = 0.03
TABLE_HEIGHT = 0.626  # floor to table top (as pybullet_data's table.urdf); the table top is z = 0

# Null-space IK (limits, ranges, rest pose) keeps the elbow up and the wrist inside its limits.
_LOWER = [-2.96, -2.09, -2.96, -2.09, -2.96, -2.09, -3.05]
_UPPER = [2.96, 2.09, 2.96, 2.09, 2.96, 2.09, 3.05]
_RANGES = [u - l for l, u in zip(_LOWER, _UPPER)]
_REST = [0.0, 0.5, 0.0, -1.5, 0.0, 1.1, 0.0]
_CUBE_COLORS = ["red", "green", "blue", "yellow", "purple", "orange"]


def generate(episodes: int, frames: int, size: int = 64, seed: int = 0, task: str | None = None, **options) -> Iterator[Episode]:
    """Yield `episodes` episodes of `frames` frames at size x size. `task` fixes reach / push / pick (default: random)."""
    if options:
        raise ValueError(f"robot source: unknown options {sorted(options)}")
    if task is not None and task not in TASKS:
        raise ValueError(f"robot source: unknown task {task!r}; choose one of: {', '.join(TASKS)}")
    for k in range(episodes):
        rng = np.random.default_rng(episode_rng_seed(seed, k))
        yield _episode(rng, frames, size, task, meta={"source": NAME, "seed": seed, "episode": k})


# ------------------------------------------------------------------------------------------ orientation


def target_quaternion(rpy) -> tuple:
    """Orientation for the action's (roll, pitch, yaw) parameters: Rz(yaw) Ry(pitch) Rx(roll) R_down."""
    import pybullet as p

    down = (0.0, 1.0, 0.0, 0.0)  # pi about y: the tool axis (flange z) points down
    return p.multiplyTransforms([0, 0, 0], p.getQuaternionFromEuler(list(map(float, rpy))), [0, 0, 0], down)[1]


def _rotate(quat, vec) -> np.ndarray:
    import pybullet as p

    return np.asarray(p.multiplyTransforms([0, 0, 0], quat, list(vec), [0, 0, 0, 1])[0])


# ------------------------------------------------------------------------------------------------ scene


class _Scene:
    """The arm, the gripper, the cubes and the calls that read and drive them."""

    def __init__(self, client: int, rng: np.random.Generator, tex_dir: str, n_cubes: int):
        import pybullet as p

        self.client = client
        p.setTimeStep(1.0 / SIM_HZ, physicsClientId=client)
        add_ground(client, load_texture(client, ground_texture(rng, squares=20), tex_dir, "floor"), z=-TABLE_HEIGHT)
        self._build_table(rng, tex_dir)
        self.arm = p.loadURDF("kuka_iiwa/model.urdf", [0.0, 0.0, 0.0], useFixedBase=True, physicsClientId=client)
        self.gripper = self._build_gripper()
        self.cubes, self.colors = self._place_cubes(rng, n_cubes)
        self.grasp: int | None = None  # constraint id while a cube is held

    def _build_table(self, rng, tex_dir: str) -> None:
        """A 1.5 x 1.0 m table (top at z = 0) from primitives with a procedural wood texture; the dimensions
        follow pybullet_data's table.urdf, whose 0.9 MB texture PNG alone took ~0.25 s to load per episode."""
        wood = np.array([0.74, 0.56, 0.36]) * rng.uniform(0.85, 1.15)
        yy, xx = np.mgrid[0:128, 0:128] / 128.0
        grain = 0.88 + 0.12 * np.sin(2 * np.pi * (6 * yy + 0.3 * np.sin(2 * np.pi * 2 * xx + rng.uniform(0, 6))))
        top_tex = load_texture(self.client, (np.clip(wood * grain[..., None], 0, 1) * 255).astype(np.uint8), tex_dir, "table")
        add_body(self.client, "box", (0.75, 0.5, 0.025), (0.5, 0.0, -0.025), texture=top_tex)
        for x in (-0.15, 1.15):
            for y in (-0.4, 0.4):
                add_body(self.client, "box", (0.04, 0.04, (TABLE_HEIGHT - 0.05) / 2), (x, y, -(TABLE_HEIGHT + 0.05) / 2),
                         (*(wood * 0.7), 1.0))

    def _build_gripper(self) -> int:
        import pybullet as p

        c = self.client
        palm_half, finger_half = [0.02, 0.07, 0.01], [0.02, 0.006, 0.025]
        grey, dark = [0.55, 0.55, 0.6, 1], [0.2, 0.2, 0.22, 1]
        palm_col = p.createCollisionShape(p.GEOM_BOX, halfExtents=palm_half, physicsClientId=c)
        palm_vis = p.createVisualShape(p.GEOM_BOX, halfExtents=palm_half, rgbaColor=grey, physicsClientId=c)
        finger_col = p.createCollisionShape(p.GEOM_BOX, halfExtents=finger_half, physicsClientId=c)
        finger_vis = p.createVisualShape(p.GEOM_BOX, halfExtents=finger_half, rgbaColor=dark, physicsClientId=c)
        gripper = p.createMultiBody(
            baseMass=0.2, baseCollisionShapeIndex=palm_col, baseVisualShapeIndex=palm_vis,
            linkMasses=[0.05, 0.05], linkCollisionShapeIndices=[finger_col] * 2, linkVisualShapeIndices=[finger_vis] * 2,
            linkPositions=[[0, 0, FINGER_DROP]] * 2, linkOrientations=[[0, 0, 0, 1]] * 2,
            linkInertialFramePositions=[[0, 0, 0]] * 2, linkInertialFrameOrientations=[[0, 0, 0, 1]] * 2,
            linkParentIndices=[0, 0], linkJointTypes=[p.JOINT_PRISMATIC] * 2, linkJointAxis=[[0, 1, 0]] * 2,
            physicsClientId=c,
        )
        for j in range(-1, p.getNumJoints(self.arm, physicsClientId=c)):
            for g in (-1, 0, 1):
                p.setCollisionFilterPair(self.arm, gripper, j, g, 0, physicsClientId=c)
        p.setCollisionFilterPair(gripper, gripper, 0, 1, 1, physicsClientId=c)  # closed fingers stop at each other
        p.changeDynamics(gripper, 0, lateralFriction=1.5, physicsClientId=c)
        p.changeDynamics(gripper, 1, lateralFriction=1.5, physicsClientId=c)
        # Constraint frames are relative to the link's centre of mass, which sits below the iiwa flange frame.
        com = p.getLinkState(self.arm, EE_LINK, physicsClientId=c)[2]
        weld = p.createConstraint(self.arm, EE_LINK, gripper, -1, p.JOINT_FIXED, [0, 0, 0],
                                  [-com[0], -com[1], PALM_OFFSET - com[2]], [0, 0, 0], physicsClientId=c)
        p.changeConstraint(weld, maxForce=2000, physicsClientId=c)
        return gripper

    def _place_cubes(self, rng, n: int) -> tuple[list[int], list[str]]:
        import pybullet as p

        colors = [_CUBE_COLORS[i] for i in rng.permutation(len(_CUBE_COLORS))[:n]]
        cubes, placed = [], []
        for color in colors:
            for _ in range(100):
                xy = np.array([rng.uniform(0.45, 0.68), rng.uniform(-0.2, 0.2)])
                if all(np.linalg.norm(xy - q) > 0.12 for q in placed):
                    break
            placed.append(xy)
            orn = p.getQuaternionFromEuler([0, 0, float(rng.uniform(-np.pi / 4, np.pi / 4))])
            cube = add_body(self.client, "box", CUBE_HALF, (*xy, CUBE_HALF), (*COLORS[color], 1.0), mass=0.1, orientation=orn)
            p.changeDynamics(cube, -1, lateralFriction=0.8, physicsClientId=self.client)
            cubes.append(cube)
        return cubes, colors

    # -- reading state
    def joints(self) -> np.ndarray:
        import pybullet as p

        return np.array([s[0] for s in p.getJointStates(self.arm, range(ARM_JOINTS), physicsClientId=self.client)])

    def finger_opening(self) -> float:
        import pybullet as p

        q = [s[0] for s in p.getJointStates(self.gripper, [0, 1], physicsClientId=self.client)]
        return float(q[0] - q[1])

    def flange(self) -> tuple[np.ndarray, tuple]:
        import pybullet as p

        state = p.getLinkState(self.arm, EE_LINK, computeForwardKinematics=True, physicsClientId=self.client)
        return np.asarray(state[4]), state[5]

    def tool_pose(self) -> np.ndarray:
        """Tool point (between the fingertips) xyz + flange orientation quaternion."""
        pos, orn = self.flange()
        return np.concatenate([pos + _rotate(orn, [0, 0, TOOL_OFFSET]), orn])

    def cube_pose(self, i: int) -> np.ndarray:
        import pybullet as p

        pos, orn = p.getBasePositionAndOrientation(self.cubes[i], physicsClientId=self.client)
        return np.concatenate([pos, orn])

    # -- driving
    def solve_ik(self, tool_xyz, rpy) -> list[float]:
        import pybullet as p

        orn = target_quaternion(rpy)
        flange_xyz = np.asarray(tool_xyz) - _rotate(orn, [0, 0, TOOL_OFFSET])
        q = p.calculateInverseKinematics(
            self.arm, EE_LINK, list(flange_xyz), orn, lowerLimits=_LOWER, upperLimits=_UPPER, jointRanges=_RANGES,
            restPoses=_REST, maxNumIterations=30, residualThreshold=1e-5, physicsClientId=self.client,
        )
        return list(q[:ARM_JOINTS])

    def reset_to(self, tool_xyz, rpy) -> None:
        """Teleport the arm (and gripper) to a tool pose before the episode starts."""
        import pybullet as p

        for j, qj in enumerate(_REST):  # start IK from the elbow-up rest pose, not the singular all-zero one
            p.resetJointState(self.arm, j, qj, physicsClientId=self.client)
        for _ in range(30):  # IK from the current joints converges in a few resets
            for j, qj in enumerate(self.solve_ik(tool_xyz, rpy)):
                p.resetJointState(self.arm, j, qj, physicsClientId=self.client)
        pos, orn = self.flange()
        palm = pos + _rotate(orn, [0, 0, PALM_OFFSET])
        p.resetBasePositionAndOrientation(self.gripper, list(palm), orn, physicsClientId=self.client)
        for j, q in ((0, FINGER_OPEN), (1, -FINGER_OPEN)):
            p.resetJointState(self.gripper, j, q, physicsClientId=self.client)

    def command(self, tool_xyz, rpy, grip: float) -> None:
        import pybullet as p

        c = self.client
        q = self.solve_ik(tool_xyz, rpy)
        p.setJointMotorControlArray(self.arm, range(ARM_JOINTS), p.POSITION_CONTROL, targetPositions=q,
                                    forces=[300.0] * ARM_JOINTS, positionGains=[0.3] * ARM_JOINTS, physicsClientId=c)
        finger = FINGER_CLOSED if grip > 0.5 else FINGER_OPEN
        p.setJointMotorControlArray(self.gripper, [0, 1], p.POSITION_CONTROL, targetPositions=[finger, -finger],
                                    forces=[100.0, 100.0], positionGains=[0.2, 0.2], physicsClientId=c)

    def update_grasp(self, grip: float) -> None:
        """Weld a cube that sits between the closed fingers to the palm; release it when the gripper opens."""
        import pybullet as p

        c = self.client
        if grip < 0.5:
            if self.grasp is not None:
                p.removeConstraint(self.grasp, physicsClientId=c)
                self.grasp = None
            return
        # Held means the closing fingers were stopped by a cube's width (fully closed fingers hold nothing).
        if self.grasp is not None or abs(self.finger_opening() - 2 * (CUBE_HALF + 0.006)) > 0.012:
            return
        palm_pos, palm_orn = p.getBasePositionAndOrientation(self.gripper, physicsClientId=c)
        inv_pos, inv_orn = p.invertTransform(palm_pos, palm_orn)
        for cube in self.cubes:
            pos, orn = p.getBasePositionAndOrientation(cube, physicsClientId=c)
            local_pos, local_orn = p.multiplyTransforms(inv_pos, inv_orn, pos, orn)
            if abs(local_pos[0]) < 0.03 and abs(local_pos[1]) < 0.02 and abs(local_pos[2] - FINGER_DROP) < 0.03:
                self.grasp = p.createConstraint(self.gripper, -1, cube, -1, p.JOINT_FIXED, [0, 0, 0], local_pos, [0, 0, 0],
                                                local_orn, [0, 0, 0, 1], physicsClientId=c)
                p.changeConstraint(self.grasp, maxForce=200, physicsClientId=c)
                return


# ----------------------------------------------------------------------------------------------- policy


def plan_task(rng, task: str, cube_xyz: np.ndarray, cube_yaw: float, start_xyz: np.ndarray, start_yaw: float):
    """Waypoints [(seconds to get there, tool xyz, yaw, gripper held while moving there)] and the task's words."""
    top = cube_xyz[2] + CUBE_HALF
    if task == "reach":
        hover = cube_xyz + [0, 0, CUBE_HALF + rng.uniform(0.04, 0.08)]
        return [(rng.uniform(1.6, 2.4), hover, cube_yaw, 0.0), (0.6, hover, cube_yaw, 0.0)], None
    if task == "push":
        side = rng.choice(["left", "right"])
        # The camera looks back at the arm from +x, so its right is roughly world +y.
        direction = np.array([0.0, -1.0 if side == "left" else 1.0, 0.0])
        behind = cube_xyz - direction * (CUBE_HALF + 0.045)
        behind[2] = top - 0.015
        distance = rng.uniform(0.12, 0.2)
        above = behind + [0, 0, 0.1]
        return [
            (rng.uniform(1.0, 1.6), above, 0.0, 1.0),
            (0.7, behind, 0.0, 1.0),
            (rng.uniform(1.2, 1.8), behind + direction * distance, 0.0, 1.0),
            (0.7, behind + direction * distance + [0, 0, 0.1], 0.0, 1.0),
        ], side
    # pick: align the fingers with a cube face, descend open, close, lift
    yaw = (cube_yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4
    above = cube_xyz + [0, 0, 0.12]
    grasp = cube_xyz + [0, 0, 0.008]
    lift = cube_xyz + [0, 0, rng.uniform(0.15, 0.25)]
    return [
        (rng.uniform(1.0, 1.6), above, yaw, 0.0),
        (0.8, grasp, yaw, 0.0),
        (0.6, grasp, yaw, 1.0),
        (rng.uniform(1.0, 1.5), lift, yaw, 1.0),
    ], None


def nominal_targets(waypoints, start_xyz, start_yaw, frames: int):
    """Eased per-frame targets (frames + 1 of them: frame k's target and the one after the last frame).

    If the plan is longer than the episode it is played faster so every episode shows the whole task;
    a shorter plan holds its last waypoint."""
    durations = np.array([w[0] for w in waypoints])
    scale = min(1.0, (frames - 1) / FPS / durations.sum()) if frames > 1 else 1.0
    ends = np.cumsum(durations * scale)
    xyz = np.empty((frames + 1, 3))
    yaw = np.empty(frames + 1)
    grip = np.empty(frames + 1)
    for k in range(frames + 1):
        t = k / FPS
        seg = int(np.searchsorted(ends, t, side="right"))
        if seg >= len(waypoints):
            xyz[k], yaw[k], grip[k] = waypoints[-1][1], waypoints[-1][2], waypoints[-1][3]
            continue
        begin = ends[seg - 1] if seg > 0 else 0.0
        p0 = (start_xyz, start_yaw) if seg == 0 else (waypoints[seg - 1][1], waypoints[seg - 1][2])
        s = smoothstep((t - begin) / max(ends[seg] - begin, 1e-9))
        xyz[k] = p0[0] + s * (np.asarray(waypoints[seg][1]) - p0[0])
        yaw[k] = p0[1] + s * (waypoints[seg][2] - p0[1])
        grip[k] = waypoints[seg][3]
    return xyz, yaw, grip


def smooth_noise(rng, n: int, dims: int, sigma: float, rho: float = 0.8) -> np.ndarray:
    """AR(1) noise with stationary std `sigma`: small, temporally correlated wobble on the commanded targets."""
    out = np.zeros((n, dims))
    for k in range(1, n):
        out[k] = rho * out[k - 1] + np.sqrt(1 - rho**2) * sigma * rng.standard_normal(dims)
    return out


# ---------------------------------------------------------------------------------------------- episode


def _episode(rng, frames: int, size: int, task: str | None, meta: dict) -> Episode:
    import pybullet as p

    task = task or TASKS[rng.integers(len(TASKS))]
    n_cubes = int(rng.integers(1, MAX_OBJECTS + 1))
    eye = np.array([rng.uniform(1.3, 1.45), rng.uniform(-0.25, 0.25), rng.uniform(0.65, 0.8)])
    camera = Camera(look_at(eye, [0.4, 0.0, 0.24]), size, size, FOV_Y_DEG)

    cols = {
        "action": np.zeros((frames, 7), np.float32),
        "observation.state": np.zeros((frames, ARM_JOINTS + 1), np.float32),
        "ee.pose": np.zeros((frames, 7), np.float32),
        "object.pose": np.zeros((frames, MAX_OBJECTS, 7), np.float32),
        "object.count": np.full(frames, n_cubes, np.int64),
        "object.target": np.zeros(frames, np.int64),
        "camera.pose": np.repeat(camera.pose[None].astype(np.float32), frames, 0),
        "camera.intrinsics": np.repeat(camera.K[None].astype(np.float32), frames, 0),
    }
    images = np.empty((frames, size, size, 3), np.uint8)

    with bullet_client() as client, tempfile.TemporaryDirectory(prefix="worldsmith-tex-") as tex_dir:
        scene = _Scene(client, rng, tex_dir, n_cubes)
        target = int(rng.integers(n_cubes))
        cols["object.target"][:] = target
        # Start well inside the workspace: closer to the base the elbow hits its joint limit.
        start_xyz = np.array([rng.uniform(0.42, 0.52), rng.uniform(-0.12, 0.12), rng.uniform(0.22, 0.32)])
        start_yaw = float(rng.uniform(-0.3, 0.3))
        scene.reset_to(start_xyz, [0.0, 0.0, start_yaw])
        scene.command(start_xyz, [0.0, 0.0, start_yaw], 0.0)
        for _ in range(SIM_HZ // 4):  # let the cubes and the gripper settle before the first frame
            p.stepSimulation(physicsClientId=client)

        start_xyz = scene.tool_pose()[:3]  # plan from where the tool really is, so target 0 == ee.pose 0
        cube = scene.cube_pose(target)
        cube_yaw = p.getEulerFromQuaternion(cube[3:])[2]
        waypoints, side = plan_task(rng, task, cube[:3], cube_yaw, start_xyz, start_yaw)
        xyz, yaw, grip = nominal_targets(waypoints, start_xyz, start_yaw, frames)
        # Noisy policy: correlated jitter on position (3 mm) and orientation (0.02 rad); none on the start.
        xyz[1:] += smooth_noise(rng, frames, 3, 0.003)
        rpy = np.stack([np.zeros(frames + 1), np.zeros(frames + 1), yaw], -1)
        rpy[1:] += smooth_noise(rng, frames, 3, 0.02)

        substeps = SIM_HZ // int(FPS)
        for k in range(frames):
            images[k] = render(client, camera)
            cols["observation.state"][k] = [*scene.joints(), scene.finger_opening()]
            cols["ee.pose"][k] = scene.tool_pose()
            for i in range(n_cubes):
                cols["object.pose"][k, i] = scene.cube_pose(i)
            cols["action"][k] = [*(xyz[k + 1] - xyz[k]), *(rpy[k + 1] - rpy[k]), grip[k]]
            # Apply action k: move the target linearly from target k to target k+1 over the frame interval.
            # IK is the costly call, so it is re-solved every IK_EVERY physics steps (the motors interpolate between).
            # Each solve aims at where the target will be at the end of its IK_EVERY steps.
            for s in range(substeps):
                if s % IK_EVERY == 0:
                    a = min(s + IK_EVERY, substeps) / substeps
                    scene.command(xyz[k] + a * (xyz[k + 1] - xyz[k]), rpy[k] + a * (rpy[k + 1] - rpy[k]), grip[k])
                p.stepSimulation(physicsClientId=client)
            scene.update_grasp(grip[k])
        final_cube = scene.cube_pose(target)[:3]

    color = scene.colors[target]
    words = {"reach": f"reach the {color} cube", "push": f"push the {color} cube {side}", "pick": f"pick up the {color} cube"}
    moved = final_cube - cube[:3]
    success = {
        "reach": bool(np.linalg.norm(cols["ee.pose"][-1, :3] - xyz[-1]) < 0.03),
        "push": bool(side is not None and moved[1] * (-1 if side == "left" else 1) > 0.05),
        "pick": bool(moved[2] > 0.05),
    }[task]
    meta = dict(meta, task_kind=task, cubes=scene.colors, target=target, success=success)
    return Episode(frames=images, columns=cols, task=words[task], fps=FPS, meta=meta)
