"""``ReIDNet``: a torchreid backbone + BNNeck + identity classifier ("bag of tricks").

Luo et al., "Bag of Tricks and A Strong Baseline for Deep Person Re-identification" (2019): the
triplet loss sees the global feature *before* a BatchNorm1d (the BNNeck), the label-smoothed
cross-entropy sees the classifier's logits *after* it, and retrieval uses the post-BN feature.
Keeping the torchreid network as ``self.backbone`` means torchreid model-zoo checkpoints map onto
ours by adding a ``backbone.`` prefix (see ``weights.py``).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from reid.models.info import ModelInfo

__all__ = ["ReIDNet"]


class ReIDNet(nn.Module):
    """Embedding network: training mode gives ``(logits, feat)``, eval mode unit embeddings."""

    def __init__(self, backbone: nn.Module, info: ModelInfo, num_classes: int = 1) -> None:
        super().__init__()
        for attr in ("featuremaps", "global_avgpool"):
            if not hasattr(backbone, attr):
                raise ValueError(f"{info.name}: backbone lacks {attr!r} (not a torchreid model?)")
        # torchreid's own identity head would sit before our BNNeck: ours replaces it
        if hasattr(backbone, "classifier"):
            backbone.classifier = nn.Identity()
        self.backbone = backbone
        self.info = info
        self.bnneck = nn.BatchNorm1d(info.embed_dim)
        self.bnneck.bias.requires_grad_(False)  # BNNeck: no shift, so the feature stays centred
        self.classifier = nn.Linear(info.embed_dim, num_classes, bias=False)
        nn.init.ones_(self.bnneck.weight)
        nn.init.zeros_(self.bnneck.bias)
        nn.init.normal_(self.classifier.weight, std=0.001)  # as in the bag-of-tricks code
        dim = getattr(backbone, "feature_dim", None)  # every torchreid family records it
        if dim != info.embed_dim:
            raise ValueError(f"{info.name}: backbone gives {dim}-d features, registered {info}")

    @property
    def embed_dim(self) -> int:
        """Length of the eval-mode embedding."""
        return self.info.embed_dim

    @property
    def num_classes(self) -> int:
        """Identities the classifier was built for (1 when the model only embeds)."""
        return self.classifier.out_features

    def global_feature(self, x: Tensor) -> Tensor:
        """Pooled backbone feature, pre-BNNeck: exactly torchreid's eval-mode output ``v``.

        One path for training and evaluation, so the triplet loss and retrieval see the same
        network (torchreid's ``forward`` switches on ``self.training`` and hides the feature).
        """
        v = self.backbone.global_avgpool(self.backbone.featuremaps(x)).flatten(1)
        fc = getattr(self.backbone, "fc", None)
        return fc(v) if fc is not None else v

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        """Training: ``(logits, pre-BN feature)``; eval: unit post-BN ``(n, embed_dim)``."""
        feat = self.global_feature(x)
        neck = self.bnneck(feat)
        if self.training:
            return self.classifier(neck), feat
        return F.normalize(neck, dim=1)
