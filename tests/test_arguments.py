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


# The slots a PyTorch-style positional call fills wrongly in optax's order: torch.optim.SGD
# (lr, momentum, dampening, weight_decay, nesterov) puts dampening where optax has nesterov
# and λ where it has accumulator_dtype; torch's Adam/AdamW take betas=(b1, b2) as a tuple
# where optax has b1. Each must be a TypeError naming the order, not a silent Nesterov or
# an error from inside JAX at the first update.
TORCH_SLOTS = {"nesterov": 0.5, "accumulator_dtype": 5e-4, "mu_dtype": 1e-2,
               "b1": (0.9, 0.999), "b2": [0.999]}


@pytest.mark.parametrize("name", NAMES)
def test_torch_style_values_in_optax_slots_are_named(name):
  params = optimizers.spec(name).parameters
  slots = [k for k in TORCH_SLOTS if k in params]
  for slot in slots:
    with pytest.raises(TypeError, match=f"{slot} must be .*PyTorch's positional order"):
      _build(name, **{slot: TORCH_SLOTS[slot]})
  if "nesterov" in params:   # a bool (Python's or NumPy's) stays valid
    import numpy as np
    _build(name, nesterov=np.bool_(True))


def test_torch_sgd_call_copied_positionally_is_refused():
  import jax.numpy as jnp
  import wdjax
  with pytest.raises(TypeError, match="dampening"):
    wdjax.sgd_l2(0.1, 0.9, 0.5)              # torch: dampening 0.5
  with pytest.raises(TypeError, match="accumulator_dtype must be None or a dtype"):
    wdjax.sgd_l2(0.1, 0.9, 0, 5e-4)          # torch: dampening 0, λ 5e-4
  wdjax.sgd_l2(0.1, 0.9, True, jnp.bfloat16, 5e-4)   # optax's order: valid
  wdjax.optimizers.adam(1e-3, mu_dtype="bfloat16")


def test_adamcpr_refuses_a_weight_decay_in_its_mask_slot():
  from wdjax import constrained
  # optax.adamw(lr, b1, b2, eps, eps_root, mu_dtype, 1e-2) ported: the λ lands in mask
  with pytest.raises(TypeError, match="adamcpr has no weight_decay"):
    constrained.adamcpr(0.1, 0.9, 0.999, 1e-8, 0.0, None, 1e-2)


def test_out_of_range_betas_and_negative_learning_rate_are_named():
  import wdjax
  with pytest.raises(ValueError, match=r"b1 must be in \[0, 1\]"):
    wdjax.adamw(0.1, 1.5)
  with pytest.raises(ValueError, match="negative learning rate ascends the loss"):
    wdjax.adamw(-0.1)
  import numpy as np
  with pytest.raises(ValueError, match=r"b2 must be in \[0, 1\]"):
    wdjax.adamw(0.1, b2=np.float32(1.5))
  wdjax.sgd_l2(0.1, 0.9, nesterov=1)   # optax takes 0/1
