"""`baseline:` — the course's classical baselines (scikit-learn / gensim) with their recipes, features and fitted cache."""
