"""Engines give identical output; a run killed with SIGKILL and rerun equals an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from curate_helpers import SMALL_SETS, same_output, small_config

from worldsmith.curate.inputs import expand_inputs
from worldsmith.curate.run import curate

CLI = [sys.executable, "-m", "worldsmith.cli", "curate", "run"]


def _cmd(inputs: Path, out: Path, workers: int) -> list[str]:
    cmd = CLI + [str(inputs), "--out", str(out), "--workers", str(workers)]
    for s in SMALL_SETS:
        cmd += ["--set", s]
    return cmd


def test_sigkill_then_rerun_equals_clean_run(small_inputs, small_clean_run, tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(small_inputs, out, 1), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    work = out / "work"
    deadline = time.time() + 60
    done: list[Path] = []
    while time.time() < deadline and proc.poll() is None:
        done = sorted(work.glob("*.tar")) if work.exists() else []
        if done:
            break
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and anything it started
    proc.wait()
    done = sorted(work.glob("*.tar"))
    assert 1 <= len(done) < 5, f"kill did not land mid-run ({len(done)} inputs done)"
    stamps = {p: p.stat().st_mtime_ns for p in done}
    assert not list(out.glob("catalog.parquet")), "no catalog before all inputs are done"

    # the rerun uses the process pool: resumed pool output must equal the in-process reference too
    rerun = subprocess.run(_cmd(small_inputs, out, 2), capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped_done"] == len(done)  # finished inputs were not redone
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    same_output(out, small_clean_run)


def test_ray_engine_equals_local_engine(small_inputs, small_clean_run, tmp_path):
    items, _ = expand_inputs([str(small_inputs)])
    summary = curate(items, tmp_path / "ray", small_config(), engine="ray", workers=2)
    assert summary["processed_now"] == 5 and summary["engine"] == "ray"
    same_output(tmp_path / "ray", small_clean_run)
