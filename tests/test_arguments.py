"""Every registered optimizer checks its learning rate and λ when it is built, alike."""

import math

import pytest

from wdjax import optimizers

NAMES = sorted(optimizers.REGISTRY)
# CPR has a bound instead of a λ; the bases take a λ only with a coupling
WITH_LAMBDA = [n for n in NAMES if "weight_decay" in optimizers.spec(n).parameters]


def _build(name, **kw):
  extra = {"coupling": "coupled"} if name in ("sgd", "adam") and "weight_decay" in kw else {}
  return optimizers.spec(name).factory(**{"learning_rate": 0.1, **extra, **kw})


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("lr", [-0.1, 0.0, math.nan, math.inf, "0.1"])
def test_bad_learning_rate_is_refused_at_construction(name, lr):
  with pytest.raises((ValueError, TypeError), match="learning_rate"):
    _build(name, learning_rate=lr)


@pytest.mark.parametrize("name", WITH_LAMBDA)
@pytest.mark.parametrize("lam", [-1e-3, math.nan, math.inf, "0.1"])
def test_bad_weight_decay_is_refused_at_construction(name, lam):
  with pytest.raises((ValueError, TypeError), match="weight_decay|strength"):
    _build(name, weight_decay=lam)
