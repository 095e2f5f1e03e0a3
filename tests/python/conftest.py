"""Shared fixtures: a small synthetic session and untrained POSSM checkpoints (seeded), so the
tests need no data files and no training run. Run with PYTHONPATH=<build>/python (ctest sets it)."""

import pytest

import spikeflow


@pytest.fixture(scope="session")
def session():
    return spikeflow.synthesize_session(num_units=12, duration_s=12.0, seed=3)


def _checkpoint(tmp_path_factory, session, width_ms, name):
    path = tmp_path_factory.mktemp("ckpt") / name
    spikeflow.save_untrained_checkpoint(path, session.units, output_dim=2, width_ms=width_ms, dim=32,
                                        rnn_hidden=32, seed=7)
    return str(path)


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory, session):
    return _checkpoint(tmp_path_factory, session, 50.0, "possm50.ckpt")


@pytest.fixture(scope="session")
def checkpoint20(tmp_path_factory, session):
    return _checkpoint(tmp_path_factory, session, 20.0, "possm20.ckpt")


@pytest.fixture(scope="session")
def checkpoint60(tmp_path_factory, session):
    return _checkpoint(tmp_path_factory, session, 60.0, "possm60.ckpt")
