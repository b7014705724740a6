"""`loralab serve`: one base model, many adapters, mixed-adapter batches, classify and
OpenAI-compatible routes, feedback, metrics and the web page."""
