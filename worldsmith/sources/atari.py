"""Atari games from ale-py under a sticky random policy: frames plus the discrete action per frame.

The ROMs ship inside the ale-py wheel, so nothing is downloaded. The policy is ours, not ALE's:
with probability `sticky` it repeats the previous action, otherwise it draws uniformly from the
game's minimal action set. ALE's own `repeat_action_probability` is set to 0 on purpose, so the
recorded action is exactly the one the emulator executed (ALE's stickiness would silently replace
it). ALE's `random_seed` is set from the episode seed before the ROM is loaded, which makes the
emulator a pure function of the seed; each episode starts from the emulator state saved right after
the ROM loaded, so the whole episode is a pure function of (seed, episode index).

Alignment: frame k is the screen before action k is applied; action k is held for `frame_skip`
emulator frames (the Atari runs at 60 Hz) and `reward` k is the reward summed over them. When the
game ends inside an episode, the game is reset and `terminal` marks the frame that ended it.
"""

from __future__ import annotations

from typing import Iterator

import cv2
import numpy as np

from worldsmith.data.episode import Episode
from worldsmith.sources import episode_rng_seed

NAME = "atari"
DESCRIPTION = "ale-py Atari games (breakout, pong, ...) under a sticky random policy; discrete action and reward per frame"
FRAME_SKIP = 4
FPS = 60.0 / FRAME_SKIP
DEFAULT_GAME = "breakout"


def _ale_module():
    import ale_py
    import ale_py.roms

    return ale_py


def available_games() -> list[str]:
    return sorted(_ale_module().roms.get_all_rom_ids())


def make_emulator(game: str, ale_seed: int):
    """A fresh ALE with a deterministic seed and no emulator-side sticky actions."""
    ale_py = _ale_module()
    games = ale_py.roms.get_all_rom_ids()
    if game not in games:
        raise ValueError(f"unknown Atari game {game!r}; ale-py ships: {', '.join(sorted(games))}")
    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # before construction: no banner on stderr
    ale = ale_py.ALEInterface()
    ale.setInt("random_seed", int(ale_seed))
    ale.setFloat("repeat_action_probability", 0.0)  # stickiness lives in our policy, where we record it
    ale.setInt("frame_skip", 1)  # we repeat actions ourselves so the reward sums are ours
    ale.loadROM(ale_py.roms.get_rom_path(game))
    return ale


def start_episode(ale, start_state) -> None:
    """Back to the state saved after loading, then a game reset, which also redraws the screen
    (restoreState alone leaves the previous episode's last screen in the frame buffer)."""
    ale.restoreState(start_state)
    ale.reset_game()


def sticky_random_policy(rng: np.random.Generator, n_actions: int, steps: int, sticky: float) -> np.ndarray:
    """Action indices: repeat the previous one with probability `sticky`, else draw uniformly."""
    actions = np.empty(steps, dtype=np.int64)
    prev = int(rng.integers(n_actions))
    for k in range(steps):
        if k > 0 and rng.random() < sticky:
            actions[k] = prev
        else:
            actions[k] = rng.integers(n_actions)
        prev = int(actions[k])
    return actions


def _screen(ale, size: int) -> np.ndarray:
    # Stretch 210x160 to a square, as Atari agents do (84x84 in DQN); INTER_AREA keeps thin sprites.
    return cv2.resize(ale.getScreenRGB(), (size, size), interpolation=cv2.INTER_AREA)


def generate(
    episodes: int,
    frames: int,
    size: int = 64,
    seed: int = 0,
    game: str = DEFAULT_GAME,
    sticky: float = 0.75,
    frame_skip: int = FRAME_SKIP,
    **options,
) -> Iterator[Episode]:
    """Yield `episodes` episodes of `frames` frames of `game` at size x size.

    Columns: `action` (T,) int64 index into the game's minimal action set (meta["action_names"]),
    `reward` (T,) float32, `terminal` (T,) int64 (1 where the game ended after that frame's action),
    `lives` (T,) int64, `ale.frame` (T,) int64 emulator frame number.
    """
    if options:
        raise ValueError(f"atari: unknown options {sorted(options)} (game, sticky, frame_skip)")
    if not 0.0 <= sticky <= 1.0:
        raise ValueError(f"atari: sticky must be in [0, 1], got {sticky}")
    if frame_skip < 1:
        raise ValueError(f"atari: frame_skip must be >= 1, got {frame_skip}")
    # One emulator per call (loading a ROM costs ~0.2 s); every episode starts from the state saved
    # right after loading, RNG included, so episode k is the same whether or not others came first.
    ale_seed = episode_rng_seed(seed, 0) % (2**31 - 1)
    ale = make_emulator(game, ale_seed)
    start_state = ale.cloneState(include_rng=True)
    action_set = list(ale.getMinimalActionSet())
    for k in range(episodes):
        start_episode(ale, start_state)
        rng = np.random.default_rng(episode_rng_seed(seed, k))
        actions = sticky_random_policy(rng, len(action_set), frames, sticky)
        images = np.empty((frames, size, size, 3), dtype=np.uint8)
        reward = np.zeros(frames, dtype=np.float32)
        terminal = np.zeros(frames, dtype=np.int64)
        lives = np.zeros(frames, dtype=np.int64)
        ale_frame = np.zeros(frames, dtype=np.int64)
        for t in range(frames):
            images[t] = _screen(ale, size)
            lives[t] = ale.lives()
            ale_frame[t] = ale.getEpisodeFrameNumber()
            for _ in range(frame_skip):
                reward[t] += ale.act(action_set[actions[t]])
                if ale.game_over():
                    terminal[t] = 1
                    ale.reset_game()
                    break
        yield Episode(
            frames=images,
            columns={"action": actions, "reward": reward, "terminal": terminal, "lives": lives, "ale.frame": ale_frame},
            task=f"play {game.replace('_', ' ')}",
            fps=60.0 / frame_skip,
            meta={
                "source": NAME,
                "game": game,
                "seed": seed,
                "episode": k,
                "ale_seed": int(ale_seed),
                "sticky": sticky,
                "frame_skip": frame_skip,
                "action_names": [a.name for a in action_set],
                "ale_version": _ale_module().__version__,
            },
        )
