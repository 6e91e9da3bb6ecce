"""`openai:` and `anthropic:` — remote APIs, their shared retry/cost code, price table and a local test server."""
