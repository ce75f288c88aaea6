from worldsmith.data.clips import ClipDataset
from worldsmith.eval.rollout import HELDOUT_ROBOT, HELDOUT_SPLITS, heldout_robot_set


def test_heldout_robot_set_is_made_once_and_every_episode_is_held_out(tmp_path):
    root = heldout_robot_set(tmp_path, episodes=2)
    assert root == str(tmp_path / HELDOUT_ROBOT)
    clips = sum(len(ClipDataset([root], clip_frames=21, stride=21, split=s, size=64, columns=[])) for s in HELDOUT_SPLITS)
    assert clips == 2   # one 21-frame window from each 33-frame episode, whatever split it fell in
    marker = tmp_path / HELDOUT_ROBOT / "kept"
    marker.write_text("")
    assert heldout_robot_set(tmp_path, episodes=5) == root and marker.exists()   # present: left as it is
