"""Posterior draws: NUTS on one model (:mod:`~models.sampling.nuts`) or on many data sets of one
model (:mod:`~models.sampling.many`, batched in JAX by :mod:`~models.sampling.batched`), every
``InferenceData`` built by :mod:`~models.sampling.idata`, every choice of back end and threshold in
:mod:`~models.sampling.dispatch`."""
