"""`baseline:` — the course's classical baselines (scikit-learn / gensim): recipes, features, fitted cache."""
