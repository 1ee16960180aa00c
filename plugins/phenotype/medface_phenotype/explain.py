"""Attention maps: where in the aligned face the network looked for a condition (MONAI Grad-CAM).

Grad-CAM (Selvaraju et al., ICCV 2017) weights the last encoder stage's feature maps by the
gradient of one class's logit; the map is upsampled to the crop and scaled to [0, 1]. It shows
which regions raised that condition's score, not why, and is computed for a condition of the
softmax head (a condition matched through the gallery alone has no logit to explain).
"""

from __future__ import annotations

import copy

import numpy as np
import torch

TARGET_LAYER = "encoder.layer4"


def gradcam(model: torch.nn.Module, crop: np.ndarray, class_index: int) -> np.ndarray:
    """(H, W) Grad-CAM in [0, 1] of an aligned uint8 crop for logit ``class_index``."""
    from monai.visualize import GradCAM

    from medface.runtime import unwrap_model

    net = copy.deepcopy(unwrap_model(model)).float().cpu().eval()
    net.output, net.flip_tta = "logits", False
    x = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))).float().div(255.0)[None]
    cam = GradCAM(nn_module=net, target_layers=TARGET_LAYER)
    with torch.enable_grad():
        m = cam(x, class_idx=int(class_index))
    m = m.detach().numpy()[0, 0].astype(np.float32)
    m = m - m.min()
    return m / m.max() if m.max() > 0 else m


def overlay(display: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The heat map (resized to the display crop) blended over it in the 'inferno' colour map."""
    from matplotlib import colormaps
    from PIL import Image

    h, w = display.shape[:2]
    heat = np.asarray(Image.fromarray((np.clip(heat, 0, 1) * 255).astype(np.uint8)).resize(
        (w, h), Image.Resampling.BILINEAR), np.float32) / 255.0
    colour = colormaps["inferno"](heat)[..., :3] * 255.0
    a = alpha * (0.35 + 0.65 * heat[..., None])
    return np.clip(display * (1 - a) + colour * a, 0, 255).astype(np.uint8)
