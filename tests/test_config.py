"""worldsmith.config: dotted overrides, bad overrides, save/load round trips, bad files."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from worldsmith.config import ConfigError, apply_overrides, from_dict, load_config, save_json, to_dict


@dataclass
class Optim:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.99)


@dataclass
class Model:
    width: int = 64
    depth: int = 2
    causal: bool = True
    name: str = "dit"
    dropout: float | None = None


@dataclass
class Run:
    model: Model = field(default_factory=Model)
    optim: Optim = field(default_factory=Optim)
    sources: list[str] = field(default_factory=lambda: ["robot"])
    seed: int = 0


def test_overrides_parse_and_coerce():
    cfg = apply_overrides(Run(), ["model.width=128", "model.causal=false", "optim.lr=3e-4", "seed=7",
                                  "model.dropout=0.1", "sources=robot,camera", "model.name=gpt"])
    assert cfg.model.width == 128 and isinstance(cfg.model.width, int)
    assert cfg.model.causal is False and cfg.optim.lr == pytest.approx(3e-4) and cfg.seed == 7
    assert cfg.model.dropout == pytest.approx(0.1) and cfg.sources == ["robot", "camera"] and cfg.model.name == "gpt"
    assert apply_overrides(Run(), ['sources=["a", "b"]']).sources == ["a", "b"]
    assert apply_overrides(Run(), ["model.dropout=null"]).model.dropout is None
    assert apply_overrides(Run(), ["optim.betas=[0.5, 0.6]"]).optim.betas == (0.5, 0.6)
    assert apply_overrides(Run(), []) == Run()
    base = Run()
    apply_overrides(base, ["seed=3"])
    assert base.seed == 0  # the input config is not mutated


@pytest.mark.parametrize("override, message", [
    ("seed", "expected key=value"),
    ("model.heads=4", "no field 'heads'"),
    ("seed.x=1", "'seed' is not a config section"),
    ("model.width=wide", "is not a int"),
    ("model.causal=maybe", "is not a boolean"),
])
def test_bad_override_is_one_clear_error(override, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(Run(), [override])


def test_save_load_round_trip(tmp_path):
    cfg = apply_overrides(Run(), ["model.width=96", "optim.betas=[0.8, 0.95]", "sources=a,b", "model.dropout=0.2"])
    path = tmp_path / "run" / "config.json"
    save_json(cfg, path)
    assert json.loads(path.read_text())["model"]["width"] == 96
    assert not list(path.parent.glob(".*tmp*"))  # written atomically
    back = load_config(Run, path)
    assert back == cfg and isinstance(back.model, Model) and back.optim.betas == (0.8, 0.95)
    assert from_dict(Run, to_dict(cfg)) == cfg


def test_bad_config_files(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(Run, tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{ nope")
    with pytest.raises(ConfigError, match=r"bad.json: not valid JSON"):
        load_config(Run, bad)
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"model": {"width": 8, "heads": 2}}))
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['heads'\] for Model"):
        load_config(Run, unknown)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"model": 5}))
    with pytest.raises(ConfigError, match="expected a mapping for Model"):
        load_config(Run, wrong)
