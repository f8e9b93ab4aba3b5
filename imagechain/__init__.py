"""ImageChain: next-scene description over image chains (arXiv 2502.19409): data, training, evaluation.

- imagechain.data: stories (StoryFrames, vischain run folders, videos, Mementos sequences), buckets
  and splits, the Table 1 conversations, image modes (native, LLaVA-NeXT's single 576-token tile)
  and their rendering into token ids.
- imagechain.train: LoRA fine-tuning with per-scene frame averaging (TrainConfig, TrainRecipe),
  checkpoints, the adapter and its model card.
- imagechain.eval: next-scene prediction (chat backends, or in process from averaged scene features),
  the SimRate judge, cue F1, the Table 1 report, and Mementos' Table 3 with its synonym graphs.
- recipes/train, recipes/eval: YAML recipes; accelerate/: launch configs; synonyms/: cue F1 graphs.

The `imagechain` command is vischain/imagechain_cli.py; this package has no command-line code.
"""
