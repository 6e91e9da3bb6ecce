"""Fine-tuning inside pricebench: recipes -> training -> adapters that are models."""
