"""The screening network: a MONAI ResNet encoder, a face embedding and a cosine softmax head.

``phenotype.GestaltNet`` (registered on the runtime's architecture allow-list) takes an aligned
112 x 112 RGB crop in ``[0, 1]`` and gives an L2-normalised embedding and, for the conditions it
was trained on, logits ``s * cos(embedding, class centre)``. Training uses an additive cosine
margin (CosFace; Wang et al., CVPR 2018), the same family of losses as GestaltMatcher-Arc's
ArcFace, so that embeddings of one condition gather around a direction and a gallery ranked by
cosine distance works also for conditions the head never saw.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from medface.errors import ModelError
from medface.runtime import register_architecture

from . import model_hashes  # noqa: F401  (pins the bundled demo model's weights and card)

#: per-channel mean and SD of aligned phantom and portrait crops (rounded); applied in the network
_MEAN = (0.5, 0.45, 0.4)
_STD = (0.25, 0.25, 0.25)
OUTPUTS = ("logits", "embedding", "both")


@register_architecture("phenotype.GestaltNet")
class GestaltNet(nn.Module):
    """Encoder (``monai.networks.nets.ResNet``, basic blocks) + embedding + cosine head.

    ``output`` picks what ``forward`` returns: ``"logits"`` (training), ``"embedding"`` or
    ``"both"`` (a dict of embedding, logits and the stage features of the out-of-distribution
    gate; screening). ``scale`` is the cosine head's ``s``. ``flip_tta`` averages
    the embedding of the face and of its mirror image (test-time augmentation; the package's
    card turns it on for screening, so a Predictor on the package folder does it).
    """

    def __init__(self, num_classes: int, embedding_dim: int = 128, width: int = 32,
                 layers: tuple = (1, 1, 1, 1), scale: float = 16.0, output: str = "logits",
                 flip_tta: bool = False):
        super().__init__()
        from monai.networks.nets import ResNet

        if output not in OUTPUTS:
            raise ModelError(f"GestaltNet output must be one of {OUTPUTS}, got {output!r}",
                             hint="fix architecture.args.output in the package's card.json")
        if int(num_classes) < 2 or int(embedding_dim) < 2 or int(width) < 4:
            raise ModelError(f"GestaltNet needs num_classes >= 2, embedding_dim >= 2 and width >= 4, got "
                             f"{num_classes}, {embedding_dim} and {width}",
                             hint="fix architecture.args in the package's card.json")
        self.encoder = ResNet(block="basic", layers=list(layers), block_inplanes=[width, 2 * width, 4 * width,
                                                                                  8 * width],
                              spatial_dims=2, n_input_channels=3, conv1_t_size=7, conv1_t_stride=2,
                              feed_forward=False, num_classes=1)
        self.embedding = nn.Sequential(nn.Dropout(0.2), nn.Linear(8 * width, int(embedding_dim)),
                                       nn.BatchNorm1d(int(embedding_dim)))
        self.centres = nn.Parameter(torch.randn(int(num_classes), int(embedding_dim)) * 0.01)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        self.scale = float(scale)
        self.output = output
        self.flip_tta = bool(flip_tta)
        self.num_classes = int(num_classes)

    def _stages(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pooled output of the encoder, the channel means of its four stages concatenated): the
        encoder's own forward pass, with the stages' activations kept for the out-of-distribution
        gate (ood.py)."""
        enc = self.encoder
        x = enc.act(enc.bn1(enc.conv1((x - self.mean) / self.std)))
        if not enc.no_max_pool:
            x = enc.maxpool(x)
        means = []
        for stage in (enc.layer1, enc.layer2, enc.layer3, enc.layer4):
            x = stage(x)
            means.append(x.mean(dim=(2, 3)))
        return enc.avgpool(x).flatten(1), torch.cat(means, dim=1)

    def _embed_once(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled, features = self._stages(x)
        return nn.functional.normalize(self.embedding(pooled), dim=1), features

    def embed_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The embedding and the stage features (both averaged over the mirror images with flip TTA)."""
        if not self.flip_tta:
            return self._embed_once(x)
        e, f = self._embed_once(torch.cat([x, torch.flip(x, dims=(3,))]))
        n = len(x)
        return nn.functional.normalize(e[:n] + e[n:], dim=1), 0.5 * (f[:n] + f[n:])

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed_with_features(x)[0]

    def forward(self, x: torch.Tensor):
        e, features = self.embed_with_features(x)
        if self.output == "embedding":
            return e
        logits = self.scale * e @ nn.functional.normalize(self.centres, dim=1).T
        return logits if self.output == "logits" else {"embedding": e, "logits": logits, "features": features}


def cosface_loss(margin: float = 0.25, scale: float = 16.0):
    """Cross-entropy on cosine logits with ``scale * margin`` taken from the true class."""

    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled():  # validation: the plain loss, comparable across margins
            return nn.functional.cross_entropy(logits, target)
        onehot = nn.functional.one_hot(target, logits.shape[1]).to(logits.dtype)
        return nn.functional.cross_entropy(logits - scale * margin * onehot, target)

    loss.__name__ = f"cosface(m={margin},s={scale})"
    return loss


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature T minimising the negative log-likelihood of softmax(logits / T) on held-out
    data (Guo et al., ICML 2017): calibrated probabilities without changing the ranking."""
    from scipy.optimize import minimize_scalar

    z = np.asarray(logits, np.float64)
    y = np.asarray(labels, int)

    def nll(log_t: float) -> float:
        s = z / np.exp(log_t)
        s = s - s.max(axis=1, keepdims=True)
        logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
        return float(-logp[np.arange(len(y)), y].mean())

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(res.x))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """ECE of the top-1 probability over ``bins`` equal-width confidence bins."""
    p = np.asarray(probs)
    conf, pred = p.max(axis=1), p.argmax(axis=1)
    correct = pred == np.asarray(labels)
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)
