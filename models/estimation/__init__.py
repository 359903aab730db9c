"""Point estimation: does a finite maximiser exist (:mod:`~models.estimation.existence`,
:mod:`~models.estimation.separation`), and where is it (:mod:`~models.estimation.maximise`,
:mod:`~models.estimation.estimators`)."""
