"""Bias Out-of-the-Box (Kirk et al., NeurIPS 2021): occupational bias of GPT-2-class LMs by gender x identity."""
