"""Shared test helpers."""
from pathlib import Path

import pytest

# The DT-DDNN model that ssbwatch shipped from stop 32 to stop 47 (weights SHA-256
# ef525e12...). Several guards of the pipeline (the neighbour guard, the IQ-image and
# k_SSB fits, the gain-step and clipping rules, the calibrated site's fall-back to the
# classical detector, the fake-PSS rules) were written against jammed verdicts this model
# gave on clean SSBs or missed on jammed ones. Their tests keep this model, so that each
# still shows the guard at work (with the guard off, the verdicts it exists for come
# back); what the shipped model does on such captures is measured by the benches
# (bench/receiver_eval.py) and, where a test asks, by that test too.
GUARD_MODEL_DIR = Path(__file__).resolve().parent / "models" / "guard"


@pytest.fixture
def guard_detector():
    from detector.pipeline import load_detector

    return load_detector(str(GUARD_MODEL_DIR))
