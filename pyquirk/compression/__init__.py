"""Networks can be compressed: pruning, lottery tickets, weight sharing + Huffman size, distillation,
sparse inference.

>>> from pyquirk.compression import prune_magnitude, apply_mask
>>> mask = prune_magnitude(net, theta, 0.9)                   # global, weights only, exact k
>>> res = fit(net, apply_mask(theta, mask), X, y, Adam(1e-3), mask=mask, steps=500)

Semantics (DESIGN §4 "Pruning"), presets, the size accounting and measured figures are in
``docs/compression.md``.
"""
from .distillation import distill, distill_loss_grad, soft_targets, train_ensemble, vjp_logits
from .huffman import (canonical_codes, decode, encode, huffman_lengths, is_prefix_free, layer_streams,
                      relative_index, size_report)
from .pruning import (SCOPES, apply_mask, layer_sparsity, output_layer, prune_magnitude, prune_random,
                      prune_structured, random_mask_like, scope_sparsity, scope_specs, sparsity)
from .results import DistillationResult, PruningCurve, SharedWeights, SizeReport, TicketResult
from .sharing import finetune_shared, kmeans_1d, share_weights
from .sparse import SparseNet, sparse_logits
from .tickets import PRESETS, lottery_ticket, per_round_fraction, pruning_curve, train_dense

__all__ = ["SCOPES", "PRESETS", "prune_magnitude", "prune_random", "prune_structured", "random_mask_like",
           "apply_mask", "scope_specs", "output_layer", "sparsity", "scope_sparsity", "layer_sparsity",
           "train_dense", "pruning_curve", "per_round_fraction", "lottery_ticket",
           "kmeans_1d", "share_weights", "finetune_shared",
           "huffman_lengths", "canonical_codes", "encode", "decode", "is_prefix_free", "relative_index",
           "layer_streams", "size_report",
           "vjp_logits", "train_ensemble", "soft_targets", "distill_loss_grad", "distill",
           "SparseNet", "sparse_logits",
           "PruningCurve", "TicketResult", "SharedWeights", "SizeReport", "DistillationResult"]
