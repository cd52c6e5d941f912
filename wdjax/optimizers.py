"""The one optimizer vocabulary: every named optimizer, defined once, reached by one name.

Each entry of the registry is a Python preset (`wdjax.adamw`, `wdjax.sgd_l2`, ...) plus the
names of its arguments that are *hyperparameters*: values that may be traced, so that
`jax.vmap`/`wdjax.sweep.run` over them compiles once. The same name works from Python,
from `make_train_fn(optimizer=...)` and from a config (`[optimizer] name = "sgdw"`, with the
Python function's argument names as keys):

  >>> from wdjax import optimizers
  >>> build = optimizers.get("adamw", scale_by="schedule")   # static options
  >>> build.hparam_names                                      # swept as traced values
  ('b1', 'b2', 'eps', 'learning_rate', 'weight_decay')
  >>> tx = build({"learning_rate": 1e-3, "weight_decay": 1e-2})

| name            | update (Optax sign: params ← params + u)                    | Python                  |
|-----------------|-------------------------------------------------------------|-------------------------|
| sgd             | plain SGD; with `penalty`/`coupling`, see `compose`          | `optax.sgd`             |
| adam            | plain Adam; with `penalty`/`coupling`, see `compose`         | `optax.adam`            |
| sgd_l2          | SGD on g + λw (coupled)                                      | `wdjax.sgd_l2`          |
| adam_l2         | Adam on g + λw (coupled)                                     | `wdjax.adam_l2`         |
| adamw           | Adam step − c_t·λ·w (c_t = η_t by default)                   | `wdjax.adamw`           |
| sgdw            | SGD step − c_t·λ·w (c_t = s_t by default)                    | `wdjax.sgdw`            |
| proximal_sgd    | w⁺ = prox_{η_t R}(w − η_t g)                                 | `wdjax.proximal_sgd`    |
| proximal_adam   | w⁺ = prox_{η_t R/D}(w − η_t m̂/D), D = √v̂ + ε                | `wdjax.proximal_adam`   |
| adamc           | AdamW with c_t = η_t²/η_peak on normalized leaves            | `wdjax.adamc`           |
| adams           | AdamW with the decay divided by √mean(v̂)                    | `wdjax.adams`           |
| cautious_adamw  | Adam step − c_t·λ·1[u⊙w ≤ 0]⊙w                              | `wdjax.cautious_adamw`  |
| lion            | Lion's sign step − c_t·λ·w (its own decay off)               | `wdjax.lion`            |
| muon            | Muon on matrices, AdamW elsewhere, each with its own c_t     | `wdjax.muon`            |
| schedule_free_adamw | decay inside the schedule-free wrapper                  | `wdjax.schedule_free_adamw` |
| adamw_sp        | Adam step − c_t·λ·(w − w₀) (L2-SP, toward a reference)       | `wdjax.adamw_sp`        |
| adam_spd        | Adam with selective projection decay toward w₀               | `wdjax.adam_spd`        |
| adamcpr         | Adam, then a per-matrix bound R(W) ≤ κ (CPR)                 | `wdjax.adamcpr`         |

Older training names are aliases of these (`ALIASES`: `sgd_coupled_l2` is `sgd_l2`,
`proximal_l1` is `proximal_sgd` with `prox="l1"`, ...). A new optimizer is added once, with
`register(name, factory, hparams=(...))`; a user's own function
`hparams -> optax.GradientTransformation` is accepted wherever a name is.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
from typing import Any, Callable, Mapping

import optax

from wdjax import (_validate, aliases, constrained, leafwise, masks, modern, penalties, prox,
                   reference, transforms, variants)

#: Penalties and prox operators by the names configs use (defined in their modules).
PENALTIES = penalties.BY_NAME
PROXES = prox.BY_NAME
#: Masks by the names configs use ("everything": every leaf, biases and norms included).
MASKS: dict[str, Any] = {"weights_only": masks.weights_only, "everything": None}
#: Decoupled decay rules by name, each with `wdjax.decoupled`'s signature.
DECAYS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "decoupled": transforms.decoupled, "cautious": variants.cautious}
COUPLINGS = ("coupled", "decoupled", "proximal")


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
  """A registered optimizer: its factory and which of its arguments are hyperparameters."""
  name: str
  factory: Callable[..., optax.GradientTransformation]
  hparams: tuple[str, ...]

  @functools.cached_property
  def parameters(self) -> Mapping[str, inspect.Parameter]:
    return inspect.signature(self.factory).parameters

  @property
  def required(self) -> tuple[str, ...]:
    return tuple(n for n, p in self.parameters.items()
                 if p.default is inspect.Parameter.empty
                 and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))


REGISTRY: dict[str, OptimizerSpec] = {}
#: Alternative names: alias -> (registered name, fixed options).
ALIASES: dict[str, tuple[str, dict[str, Any]]] = {}


def register(name: str, factory: Callable[..., optax.GradientTransformation], *,
             hparams: tuple[str, ...]) -> OptimizerSpec:
  """Registers `factory` as optimizer `name`; `hparams` are the arguments that may be traced.

  Example:
    >>> import optax
    >>> from wdjax import optimizers
    >>> def lion_l2(learning_rate, weight_decay=0.0, *, mask=None):
    ...   return optax.chain(optax.add_decayed_weights(weight_decay, mask), optax.lion(learning_rate))
    >>> _ = optimizers.register("lion_l2_demo", lion_l2, hparams=("learning_rate", "weight_decay"))
    >>> optimizers.get("lion_l2_demo").hparam_names
    ('learning_rate', 'weight_decay')
    >>> optimizers.unregister("lion_l2_demo")
  """
  params = inspect.signature(factory).parameters
  unknown = [h for h in hparams if h not in params]
  if unknown:
    raise ValueError(f"register({name!r}): {unknown} are not arguments of "
                     f"{getattr(factory, '__name__', factory)}.")
  if name in REGISTRY or name in ALIASES:
    raise ValueError(f"optimizer {name!r} is already registered; pick another name.")
  spec = OptimizerSpec(name, factory, tuple(sorted(hparams)))
  REGISTRY[name] = spec
  return spec


def unregister(name: str) -> None:
  """Removes a registered optimizer (for tests and interactive sessions)."""
  REGISTRY.pop(name, None)


def names() -> list[str]:
  """Every name `get` accepts, registered names first, then aliases."""
  return sorted(REGISTRY) + sorted(ALIASES)


def spec(name: str) -> OptimizerSpec:
  """The `OptimizerSpec` registered as `name` (an alias gives its target's)."""
  target = ALIASES.get(name, (name, {}))[0]
  if target not in REGISTRY:
    raise ValueError(f"unknown optimizer {name!r}; use one of {names()} or pass a function "
                     "hparams -> optax.GradientTransformation.")
  return REGISTRY[target]


@dataclasses.dataclass(frozen=True, eq=False)
class Builder:
  """`hparams -> optax.GradientTransformation` for a registered optimizer and its options.

  `hparams` is a dict of (possibly traced) values keyed by `hparam_names`; `options` are
  static arguments fixed when the builder was made. `schedule` (optional) maps the traced
  learning rate η to a schedule `count -> η_t` (e.g. a cosine decay from η); the factory
  then gets the schedule as `learning_rate` and η as its `peak_learning_rate`.
  """
  spec: OptimizerSpec
  options: Mapping[str, Any]
  schedule: Callable[[Any], Callable[[Any], Any]] | None = None
  schedule_name: str = ""

  @property
  def name(self) -> str:
    return self.spec.name

  @property
  def hparam_names(self) -> tuple[str, ...]:
    return tuple(h for h in self.spec.hparams if h not in self.options)

  @property
  def required_hparams(self) -> tuple[str, ...]:
    return tuple(h for h in self.spec.required if h not in self.options)

  def __call__(self, hparams: Mapping[str, Any]) -> optax.GradientTransformation:
    unknown = sorted(set(hparams) - set(self.hparam_names))
    if unknown:
      raise ValueError(f"optimizer {self.name!r} has no hyperparameter {unknown}; it reads "
                       f"{list(self.hparam_names)}" + (
                           f" ({sorted(set(unknown) & set(self.options))} fixed as options)"
                           if set(unknown) & set(self.options) else "") + ".")
    missing = sorted(set(self.required_hparams) - set(hparams))
    if missing:
      raise ValueError(f"optimizer {self.name!r} needs hyperparameter(s) {missing}.")
    kwargs = {**self.options, **hparams}
    if self.schedule is not None and "learning_rate" in kwargs:
      peak = kwargs["learning_rate"]
      kwargs["learning_rate"] = self.schedule(peak)
      if "peak_learning_rate" in self.spec.parameters:
        kwargs.setdefault("peak_learning_rate", peak)
    return self.spec.factory(**kwargs)

  def describe(self) -> str:
    """A description stable across processes (the checkpoint fingerprint uses it)."""
    opts = ", ".join(f"{k}={describe_value(v)}" for k, v in sorted(self.options.items()))
    return f"{self.name}({opts}){'/' + self.schedule_name if self.schedule_name else ''}"


def describe_value(obj: Any) -> str:
  """`obj` as a string without memory addresses (functions by module and qualified name)."""
  if isinstance(obj, functools.partial):
    kw = ", ".join(f"{k}={describe_value(v)}" for k, v in sorted(obj.keywords.items()))
    return f"partial({describe_value(obj.func)}, {', '.join(map(describe_value, obj.args))}; {kw})"
  if isinstance(obj, leafwise.PerLeaf):
    rules = ", ".join(f"{describe_value(k)}: {describe_value(v)}" for k, v in obj.rules)
    return f"per_group({{{rules}}}, default={describe_value(obj.default)})"
  if callable(obj) and hasattr(obj, "__qualname__"):
    return f"{getattr(obj, '__module__', '')}.{obj.__qualname__}"
  return repr(obj)


def get(name: str, *, schedule: Callable[[Any], Callable[[Any], Any]] | None = None,
        schedule_name: str = "", **options: Any) -> Builder:
  """The builder `hparams -> GradientTransformation` of optimizer `name` with static options.

  Args:
    name: a registered name or alias (`names()`).
    schedule: optional map from the traced peak learning rate to a schedule.
    schedule_name: a stable name of `schedule` for fingerprints ("cosine(1000)").
    **options: static arguments of the optimizer's Python function (e.g. `mask=`,
      `scale_by=`, `prox="l1"`). An argument given here is no longer a hyperparameter.

  Raises:
    ValueError: for an unknown name or an argument the optimizer does not have.
  """
  target, fixed = ALIASES.get(name, (name, {}))
  s = spec(target)
  options = {**fixed, **options}
  var_kw = any(p.kind == p.VAR_KEYWORD for p in s.parameters.values())
  bad = sorted(k for k in options if k not in s.parameters and not var_kw)
  if bad:
    raise ValueError(f"optimizer {name!r} has no argument {bad}; its arguments: "
                     f"{sorted(s.parameters)}.")
  return Builder(s, dict(options), schedule, schedule_name)


def resolve(optimizer: str | Builder | Callable[[dict], optax.GradientTransformation]
            ) -> Callable[[dict], optax.GradientTransformation]:
  """A name becomes `get(name)`; a `Builder` or a user function is returned as is."""
  if isinstance(optimizer, str):
    return get(optimizer)
  if not callable(optimizer):
    raise TypeError("optimizer must be a name in wdjax.optimizers.names(), a "
                    "wdjax.optimizers.Builder or a function hparams -> "
                    f"optax.GradientTransformation; got {type(optimizer).__name__}.")
  return optimizer


# ----------------------------------------------------------------------------- composer


def compose(base: optax.GradientTransformation, weight_decay: Any = 0.0, *,
            learning_rate: Any = None, penalty: str | None = None,
            coupling: str | None = None, scale_by: str = "lr",
            peak_learning_rate: Any = None, decay: str = "decoupled", l1_ratio: Any = None,
            mask: masks.Mask | None = transforms.DEFAULT_MASK,
            adam_preconditioned: Callable[..., optax.GradientTransformation] | None = None,
            ) -> optax.GradientTransformation:
  """A base optimizer × a penalty × where it enters (the grammar of configs).

  - coupling=None: `base` alone (no penalty; `weight_decay` must be 0).
  - "coupled": `chain(coupled(PENALTIES[penalty], λ), base)`: g ← g + ∇R(w).
  - "decoupled": `chain(base, DECAYS[decay](λ, learning_rate=η_t, scale_by=...))`:
    u ← u − c_t·λ·w (L2 only: decoupled decay is multiplicative shrinkage).
  - "proximal": `chain(base, proximal(PROXES[penalty], λ, learning_rate=η_t))`:
    w⁺ = prox_{η_t·R}(w + u). Pass `adam_preconditioned` to use the preconditioned prox
    instead (the `adam` entry does: `wdjax.proximal_adam`).

  Example:
    >>> import optax
    >>> from wdjax import optimizers
    >>> tx = optimizers.compose(optax.sgd(0.1), 1e-3, learning_rate=0.1, penalty="l1",
    ...                         coupling="proximal")    # ISTA
  """
  if coupling is None:
    return base
  _known(coupling, dict.fromkeys(COUPLINGS), "coupling")
  penalty = penalty or "l2"
  if coupling == "coupled":
    pen = PENALTIES[_known(penalty, PENALTIES, "penalty")]
    if l1_ratio is not None:
      pen = functools.partial(pen, l1_ratio=l1_ratio)
    return modern.chain(transforms.coupled(pen, weight_decay, mask=mask), base)
  if coupling == "decoupled":
    if penalty != "l2":
      raise ValueError(f"penalty={penalty!r} with coupling='decoupled': decoupled decay is L2 "
                       "shrinkage (u ← u − c_t·λ·w); use coupling='proximal' for other "
                       "penalties.")
    rule = DECAYS[_known(decay, DECAYS, "decay")]
    return modern.chain(base, rule(weight_decay, learning_rate=learning_rate,
                                   scale_by=scale_by, peak_learning_rate=peak_learning_rate,
                                   mask=mask))
  op = PROXES[_known(penalty, PROXES, "penalty")]
  if l1_ratio is not None:
    op = functools.partial(op, l1_ratio=l1_ratio)
    op.separable = True
  if adam_preconditioned is not None:
    return adam_preconditioned(op)
  return modern.chain(base, transforms.proximal(op, weight_decay, learning_rate=learning_rate,
                                                mask=mask))


def _known(name: str, table: Mapping[str, Any], what: str) -> str:
  if name not in table:
    close = difflib.get_close_matches(str(name), list(table), n=1)
    raise ValueError(f"unknown {what} {name!r}; " + (f"did you mean {close[0]!r}? " if close
                                                     else "") + f"choose one of {sorted(table)}.")
  return name


def sgd(learning_rate: Any, momentum: Any = None, nesterov: bool = False,
        accumulator_dtype: Any = None, weight_decay: Any = 0.0, *, penalty: str = "l2",
        coupling: str | None = None, scale_by: str = "lr", peak_learning_rate: Any = None,
        decay: str = "decoupled", l1_ratio: Any = None,
        mask: masks.Mask | None = transforms.DEFAULT_MASK) -> optax.GradientTransformation:
  """`optax.sgd` (same positional arguments), optionally with a penalty placed by `compose`.

  With coupling="proximal" and momentum β the prox uses η_t/(1 − β) (see
  `wdjax.proximal_sgd`).

  Example:
    >>> from wdjax import optimizers
    >>> tx = optimizers.sgd(0.1, momentum=0.9, weight_decay=1e-4, coupling="coupled")
  """
  _validate.check_optax_order(sgd, nesterov=nesterov, accumulator_dtype=accumulator_dtype)
  _validate.check_positive("learning_rate", learning_rate)
  if coupling == "proximal":
    op = PROXES[_known(penalty or "l2", PROXES, "penalty")]
    return aliases.proximal_sgd(learning_rate, op, weight_decay, momentum=momentum,
                                nesterov=nesterov, accumulator_dtype=accumulator_dtype,
                                l1_ratio=l1_ratio, mask=mask)
  base = optax.sgd(learning_rate, momentum, nesterov, accumulator_dtype)
  _no_decay_without_coupling(coupling, weight_decay)
  return compose(base, weight_decay, learning_rate=learning_rate, penalty=penalty,
                 coupling=coupling, scale_by=scale_by, peak_learning_rate=peak_learning_rate,
                 decay=decay, l1_ratio=l1_ratio, mask=mask)


def adam(learning_rate: Any, b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8,
         eps_root: Any = 0.0, mu_dtype: Any = None, weight_decay: Any = 0.0, *,
         nesterov: bool = False, penalty: str = "l2", coupling: str | None = None,
         scale_by: str = "lr", peak_learning_rate: Any = None, decay: str = "decoupled",
         l1_ratio: Any = None,
         mask: masks.Mask | None = transforms.DEFAULT_MASK) -> optax.GradientTransformation:
  """`optax.adam` (same positional arguments), optionally with a penalty placed by `compose`.

  coupling="proximal" is the preconditioned prox (`wdjax.proximal_adam`).

  Example:
    >>> from wdjax import optimizers
    >>> tx = optimizers.adam(1e-3, weight_decay=1e-2, coupling="decoupled")  # = wdjax.adamw
  """
  _validate.check_optax_order(adam, nesterov=nesterov, mu_dtype=mu_dtype, b1=b1, b2=b2)
  _validate.check_positive("learning_rate", learning_rate)
  base = optax.adam(learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov)
  _no_decay_without_coupling(coupling, weight_decay)

  def preconditioned(op):
    return aliases.proximal_adam(learning_rate, op, weight_decay, b1=b1, b2=b2, eps=eps,
                                 eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov,
                                 mask=mask)

  return compose(base, weight_decay, learning_rate=learning_rate, penalty=penalty,
                 coupling=coupling, scale_by=scale_by, peak_learning_rate=peak_learning_rate,
                 decay=decay, l1_ratio=l1_ratio, mask=mask,
                 adam_preconditioned=preconditioned)


def _no_decay_without_coupling(coupling: str | None, weight_decay: Any) -> None:
  # A traced λ cannot be inspected: without a coupling any λ but the Python 0 is refused,
  # since a sweep over it would silently train the same model at every grid point.
  if coupling is None and not (isinstance(weight_decay, (int, float)) and weight_decay == 0):
    raise ValueError(f"weight_decay={weight_decay} without a coupling would be ignored; pass "
                     "coupling='coupled', 'decoupled' or 'proximal', or use a preset such as "
                     "'adamw' or 'sgd_l2'.")


_SGD_H = ("learning_rate", "momentum", "weight_decay", "l1_ratio")
_ADAM_H = ("learning_rate", "b1", "b2", "eps", "weight_decay", "l1_ratio")
register("sgd", sgd, hparams=_SGD_H)
register("adam", adam, hparams=_ADAM_H)
register("sgd_l2", aliases.sgd_l2, hparams=("learning_rate", "momentum", "weight_decay"))
register("adam_l2", aliases.adam_l2, hparams=("learning_rate", "b1", "b2", "eps", "weight_decay"))
register("adamw", aliases.adamw, hparams=("learning_rate", "b1", "b2", "eps", "weight_decay"))
register("sgdw", aliases.sgdw, hparams=("learning_rate", "momentum", "weight_decay"))
register("proximal_sgd", aliases.proximal_sgd,
         hparams=("learning_rate", "momentum", "weight_decay", "l1_ratio"))
register("proximal_adam", aliases.proximal_adam,
         hparams=("learning_rate", "b1", "b2", "eps", "weight_decay", "l1_ratio"))
register("adamc", variants.adamc, hparams=("learning_rate", "b1", "b2", "eps", "weight_decay"))
register("adams", variants.adams, hparams=("learning_rate", "b1", "b2", "eps", "weight_decay"))
register("cautious_adamw", variants.cautious_adamw,
         hparams=("learning_rate", "b1", "b2", "eps", "weight_decay"))

register("lion", modern.lion, hparams=("learning_rate", "b1", "b2", "weight_decay"))
register("muon", modern.muon, hparams=("learning_rate", "beta", "eps", "weight_decay",
                                       "adam_b1", "adam_b2", "adam_weight_decay",
                                       "adam_learning_rate"))
register("schedule_free_adamw", modern.schedule_free_adamw,
         hparams=("learning_rate", "b1", "b2", "eps", "weight_decay"))

# The training names of earlier versions, kept so that code and configs written for them
# keep meaning the same thing.
ALIASES.update({
    "sgd_coupled_l2": ("sgd_l2", {}),
    "sgd_coupled_l1": ("sgd", {"penalty": "l1", "coupling": "coupled"}),
    "proximal_l1": ("proximal_sgd", {"prox": "l1"}),
    "proximal_elastic_net": ("proximal_sgd", {"prox": "elastic_net"}),
    "proximal_adam_l1": ("proximal_adam", {"prox": "l1"}),
})

# ------------------------------------------------ decay toward a reference; constraints
# (issue 13: L2-SP / SPD in wdjax.reference, CPR in wdjax.constrained)

register("adamw_sp", reference.adamw_sp,
         hparams=("learning_rate", "b1", "b2", "eps", "weight_decay"))
register("adam_spd", reference.adam_spd,
         hparams=("learning_rate", "b1", "b2", "eps", "weight_decay"))
register("adamcpr", constrained.adamcpr,
         hparams=("learning_rate", "b1", "b2", "eps", "lagmul_rate", "kappa_init_param"))
