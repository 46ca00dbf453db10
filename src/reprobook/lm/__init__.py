"""The book's laboratory language models: offline corpus, tokenizer, tiny LLaMA models, pretraining."""
