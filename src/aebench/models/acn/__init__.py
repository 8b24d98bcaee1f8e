"""Associative compression networks (Graves, Menick & van den Oord 2018): the model (`model.py`,
registered as `acn`), its code-space search and coding cost (`coding.py`), and its evaluation
suites, the paper's claim metrics and the daydream figure (`eval.py`)."""

from aebench.models.acn.coding import chain_coding_cost, gather_from_ranks, nearest_codes, nearest_neighbour_chain
from aebench.models.acn.model import ACN, ACNConfig, PriorNetwork, mixture_log_prob

__all__ = ["ACN", "ACNConfig", "PriorNetwork", "chain_coding_cost", "gather_from_ranks", "mixture_log_prob",
           "nearest_codes", "nearest_neighbour_chain"]
