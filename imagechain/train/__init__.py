"""LoRA fine-tuning on scene-visual chains: settings, samples, loss masks, the training loop, the adapter."""
