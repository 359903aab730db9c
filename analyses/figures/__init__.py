"""Each analysis's figures, one module per analysis (``analyses.figures.policy`` draws
``figures/policy/*.png``): functions that take the analysis's records and return a figure, so that
the analysis module itself only fits, tabulates and saves."""
