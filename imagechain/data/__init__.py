"""Stories and what models read of them: sources, buckets and splits, conversations, token ids."""
