import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Property tests (tests/test_properties.py): a small, derandomised profile for CI and a
# longer randomised one for a local fuzzing pass (HYPOTHESIS_PROFILE=local).
_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile("ci", max_examples=30, deadline=None, derandomize=True, suppress_health_check=_SLOW_OK,
                          print_blob=True)
settings.register_profile("local", max_examples=1000, deadline=None, suppress_health_check=_SLOW_OK,
                          print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(autouse=True)
def _fixed_torch_seed():
    """torch's global generator seeded before every test (when torch is loaded): a layer built
    without an explicit initialisation draws its weights from it, so without this a test's
    draws would depend on which tests ran before it."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(0)
