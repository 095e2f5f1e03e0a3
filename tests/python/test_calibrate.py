"""spikeflow.calibrate: the CLI's calibration run from Python, its printed comparison and the
comparison as a dict. The base comes from `spikeflow pretrain` (SPIKEFLOW_CLI, set by ctest) on
two tiny synthetic sessions; everything is sized to run in seconds."""

import os
import subprocess

import pytest

import spikeflow

TINY = ["--dim", "16", "--rnn-hidden", "32", "--threads", "1", "--no-progress", "--batch", "8"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    cli = os.environ.get("SPIKEFLOW_CLI")
    assert cli, "SPIKEFLOW_CLI (the spikeflow executable) must be set; ctest sets it"
    d = tmp_path_factory.mktemp("calibrate")
    paths = []
    for i in range(3):
        s = spikeflow.synthesize_session(num_units=10 + 2 * i, duration_s=40.0, seed=11 + i)
        p = d / f"session_{i:02d}.sfs"
        s.save(str(p))
        paths.append(str(p))
    out = d / "base.ckpt"
    r = subprocess.run([cli, "pretrain", "-s", paths[0], "-s", paths[1], "-o", str(out), "--epochs", "2", *TINY],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return str(out), paths[2], d


def test_calibrate_prints_the_cli_comparison_and_returns_it(base, capsys):
    ckpt, session_path, d = base
    out = d / "new.ckpt"
    r = spikeflow.calibrate(ckpt, session_path, out, calibration_s=20, reid_epochs=2, finetune_epochs=1,
                            threads=1, progress=False, batch=8)
    printed = capsys.readouterr().out
    for k in ("calibrated     R2", "scratch        R2", "ridge (250 ms) R2", "kalman         R2",
              "unit re-identification", session_path):
        assert k in printed, (k, printed)
    assert "beats the calibrated model" in printed or "the calibrated model is best" in printed
    assert out.exists()
    for name in ("calibrated", "scratch", "ridge", "kalman"):
        assert len(r[name]["r2_per_dim"]) == 2
        assert f"{r[name]['r2_mean']:6.3f}" in printed
    assert r["winner"] in ("calibrated", "scratch", "ridge", "kalman")
    assert r["reid"]["epochs_run"] == 2
    assert r["base_sessions"] == ["session_00", "session_01"]
    # The calibrated checkpoint decodes the new session from Python.
    dec = spikeflow.Decoder(str(out))
    assert dec.output_dim == 2


def test_calibrate_takes_a_session_object_and_stays_quiet(base, capsys):
    ckpt, session_path, d = base
    r = spikeflow.calibrate(ckpt, spikeflow.load_session(session_path), d / "quiet.ckpt", calibration_s=20,
                            reid_epochs=1, finetune=False, scratch=False, threads=1, progress=False, report=False)
    assert capsys.readouterr().out == ""
    assert "scratch" not in r and r["finetune"]["epochs_run"] == 0
    assert set(r) >= {"calibrated", "ridge", "kalman", "winner"}


def test_bad_options_are_value_errors_naming_them(base):
    ckpt, session_path, d = base
    with pytest.raises(ValueError, match="calibration_s"):
        spikeflow.calibrate(ckpt, session_path, d / "x.ckpt", calibration_s=0.5)
    with pytest.raises(ValueError, match="unknown option 'learning_rate'"):
        spikeflow.calibrate(ckpt, session_path, d / "x.ckpt", learning_rate=0.1)
    with pytest.raises(RuntimeError, match="overlaps the held-out"):
        spikeflow.calibrate(ckpt, session_path, d / "x.ckpt", calibration_s=39, report=False)
