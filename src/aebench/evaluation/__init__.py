"""The evaluator: one pass over a trained model's test split that runs every suite that applies.

- `evaluator.py`: `evaluate`, the entry point of the evaluate stage (encodes the splits once,
  runs the suites, writes `metrics.json`, `plots/` and the training curve);
- `context.py`: `EvalContext`, what the suites read, with the results they share as cached
  properties (reconstructions, the negative ELBO, the model's samples);
- `suites.py`: the shared suites, in the order they run; a model's own suites are declared
  on the model (`own_metrics`) and run by `model_suite`;
- `directions.py`: which way is better for every metric key, and the key metrics.

The figures are `aebench.figures`, a leaf below the models, which the models' own suites
draw with too.
"""
