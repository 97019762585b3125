"""Anisotropy across languages and contrastive search (Su & Collier, TMLR 2023): isotropy of token representations."""
