"""Next-scene evaluation: predictions per variant, SimRate and cue F1, results in the paper's Table 1 layout."""
