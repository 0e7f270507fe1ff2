"""compression: turns a trained PyTorch ReID model into the fast one the embedder runs.

Prune, distill, quantize, per-layer budget search, ONNX export and the speed/accuracy report
(ARCHITECTURE.md). Depends on ``reid``; nothing in serving (``indexer``, ``api``, ``ui``) may
import it. Its contents arrive with the compression issue.
"""
