"""Choosing λ by gradient: hypergradients through training, and by implicit differentiation.

Two routes to dV/d log λ, the derivative of a validation loss V with respect to the
(log) regularization strength:

- `hypergradient`: differentiate through the unrolled training. A `wdjax.train` function
  is a pure `lax.scan` over epochs and minibatches, so `jax.grad` of
  V(w_T(λ)) with respect to log λ (and log η, or any traced hyperparameter) is exact for
  the finite training run, at the memory cost of storing the trajectory.
- `lasso_hypergradient`: for the full-batch lasso, differentiate the optimality condition
  at the solution instead (implicit function theorem). On the support S with signs s,
  Q_SS w_S = Xᵀ_S y/n − λ s, so dw_S/dλ = −Q_SS⁻¹ s and dV/dλ = ∇V(w)_Sᵀ dw_S/dλ, valid
  where the support does not change (almost every λ).

`search` runs Adam on log-hyperparameters with `hypergradient`, keeping the best point.

Differentiating through Adam: √v̂ has an infinite derivative at v̂ = 0, which happens on
coordinates whose gradient is exactly 0 (constant input pixels, dead ReLU units), and the
hypergradient becomes NaN. Train with `optax.adam(..., eps_root=1e-8)` (or any small
eps_root) when you differentiate through it. ReLU networks make the validation loss only
piecewise smooth in λ: the gradient is exact for the local piece, so compare it with
finite differences at small steps only.

References:
  Maclaurin et al, Gradient-based Hyperparameter Optimization through Reversible
  Learning, 2015. https://arxiv.org/abs/1502.03492
  Bertrand et al, Implicit differentiation of Lasso-type models for hyperparameter
  optimization, 2020. https://arxiv.org/abs/2002.08943
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from wdjax import path as _path
from wdjax._validate import positive_int


def _check_wrt(hparams: dict, wrt: Sequence[str]) -> tuple[str, ...]:
  wrt = (wrt,) if isinstance(wrt, str) else tuple(wrt)
  if not wrt:
    raise ValueError("wrt is empty: name at least one hyperparameter, e.g. wrt=('weight_decay',).")
  for k in wrt:
    if k not in hparams:
      raise ValueError(f"wrt names {k!r}, which is not in hparams {sorted(hparams)}.")
    v = np.asarray(hparams[k], np.float64)
    if not np.all(v > 0):
      raise ValueError(f"hparams[{k!r}] = {hparams[k]} must be > 0 to differentiate with "
                       "respect to its logarithm.")
  return wrt


def _objective(train_fn: Callable, hparams: dict, key: jax.Array, wrt: tuple[str, ...],
               objective: str) -> Callable[[dict], jax.Array]:
  def f(log_h: dict) -> jax.Array:
    h = dict(hparams)
    h.update({k: jnp.exp(v) for k, v in log_h.items()})
    metrics = train_fn(h, key)
    if objective not in metrics:
      raise ValueError(f"objective {objective!r} is not a metric of this training function; "
                       f"available: {sorted(metrics)}.")
    return metrics[objective][-1]
  return f


def _log(hparams: dict, wrt: tuple[str, ...]) -> dict:
  return {k: jnp.log(jnp.asarray(hparams[k], jnp.float32)) for k in wrt}


def hypergradient(train_fn: Callable[[dict, jax.Array], dict], hparams: dict, key: jax.Array, *,
                  wrt: str | Sequence[str] = ("weight_decay",),
                  objective: str = "val_loss") -> tuple[jax.Array, dict]:
  """V at the end of training and dV/d log h for each h in `wrt`, through the unrolled run.

  Args:
    train_fn: a function from `wdjax.train.make_train_fn`.
    hparams: the point (dict of positive scalars for the names in `wrt`).
    key: the PRNG key of the run (initialization, shuffling, dropout) — held fixed.
    wrt: the hyperparameters to differentiate with respect to (their logarithms).
    objective: the metric whose last-epoch value is V (default "val_loss").

  Returns:
    (V, {name: dV/d log h}).

  Example:
    >>> import jax
    >>> from wdjax import data, models, train, tune
    >>> ds = data.d2l_synthetic(dim=5, n_train=10, n_val=10)
    >>> fn = train.make_train_fn(models.for_dataset("linear", ds), ds,
    ...                          optimizer="sgd_coupled_l2", epochs=3)
    >>> v, g = tune.hypergradient(fn, {"learning_rate": 0.1, "weight_decay": 1.0},
    ...                           jax.random.key(0))
    >>> sorted(g)
    ['weight_decay']
  """
  wrt = _check_wrt(hparams, wrt)
  f = _objective(train_fn, hparams, key, wrt, objective)
  return jax.jit(jax.value_and_grad(f))(_log(hparams, wrt))


class SearchResult(NamedTuple):
  """Outcome of `search`: the best point seen and the whole trajectory."""
  best: dict              # hparams with the lowest objective seen
  best_value: float
  values: np.ndarray      # (steps,) objective at each iterate
  trajectory: dict        # name -> (steps,) hyperparameter values visited


def search(train_fn: Callable[[dict, jax.Array], dict], hparams: dict, key: jax.Array, *,
           wrt: str | Sequence[str] = ("weight_decay",), steps: int = 30,
           learning_rate: float = 0.2, objective: str = "val_loss",
           log_bounds: tuple[float, float] = (-20.0, 10.0)) -> SearchResult:
  """Gradient-based search over log-hyperparameters (Adam on log h), compiled once.

  Each step trains from scratch with the same key, computes V and dV/d log h by
  `hypergradient`, and takes an Adam step of size `learning_rate` in log space; log h is
  clipped to `log_bounds`. Returns the best point seen (V is not monotone along the way).
  """
  wrt = _check_wrt(hparams, wrt)
  positive_int("steps", steps)
  f = _objective(train_fn, hparams, key, wrt, objective)
  opt = optax.adam(learning_rate)

  @jax.jit
  def step(log_h, state):
    v, g = jax.value_and_grad(f)(log_h)
    g = jax.tree.map(lambda x: jnp.where(jnp.isfinite(x), x, 0.0), g)  # a diverged run: stay
    u, state = opt.update(g, state)
    new = jax.tree.map(lambda x: jnp.clip(x, *log_bounds), optax.apply_updates(log_h, u))
    return v, new, state

  log_h = _log(hparams, wrt)
  state = opt.init(log_h)
  values, traj = [], {k: [] for k in wrt}
  for _ in range(steps):
    v, new, state = step(log_h, state)
    values.append(float(v))
    for k in wrt:
      traj[k].append(float(jnp.exp(log_h[k])))
    log_h = new
  values_np = np.asarray(values)
  i = int(np.nanargmin(np.where(np.isfinite(values_np), values_np, np.nan)))
  best = dict(hparams)
  best.update({k: traj[k][i] for k in wrt})
  return SearchResult(best, float(values_np[i]), values_np,
                      {k: np.asarray(v) for k, v in traj.items()})


def lasso_hypergradient(X: Any, y: Any, X_val: Any, y_val: Any, strength: float, *,
                        tol: float = 1e-14) -> tuple[float, float, np.ndarray]:
  """Validation loss of the lasso solution and its derivative in λ, by implicit differentiation.

  w(λ) = argmin 1/(2n)‖y − Xw‖² + λ‖w‖₁ (no intercept; center the data first), and
  V(λ) = 1/(2m)‖y_val − X_val w(λ)‖². On the support S of w with signs s,
  dw_S/dλ = −(X_Sᵀ X_S / n)⁻¹ s and dV/dλ = −(X_val,Sᵀ (y_val − X_val w)/m)ᵀ dw_S/dλ.

  Returns:
    (V, dV/dλ, w).

  Example:
    >>> import numpy as np
    >>> from wdjax import tune
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0]]); y = np.array([2.0, 0.1])
    >>> v, g, w = tune.lasso_hypergradient(X, y, X, y, 0.5)
    >>> w  # X = I, n = 2: w = soft(y, nλ) = soft([2.0, 0.1], 1.0)
    array([1., 0.])
  """
  X, y = np.asarray(X, np.float64), np.asarray(y, np.float64)
  Xv, yv = np.asarray(X_val, np.float64), np.asarray(y_val, np.float64)
  if not (np.isfinite(strength) and strength > 0):
    raise ValueError(f"strength (λ) must be a finite number > 0, got {strength}.")
  w = _path.solve_lasso(X, y, float(strength), tol=tol, dtype=np.float64).coef
  n, m = len(y), len(yv)
  r_val = yv - Xv @ w
  v = 0.5 * float(r_val @ r_val) / m
  S = np.flatnonzero(w)
  if S.size == 0:
    return v, 0.0, w  # above λ_max the solution is 0 in a neighbourhood
  Q = X[:, S].T @ X[:, S] / n
  dw = -np.linalg.solve(Q, np.sign(w[S]))
  grad_v = -(Xv[:, S].T @ r_val) / m
  return v, float(grad_v @ dw), w
