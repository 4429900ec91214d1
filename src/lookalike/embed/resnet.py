"""ResNet-50 in plain PyTorch, with torchvision's exact ``state_dict`` layout.

torchvision cannot be imported in every environment lookalike runs in, yet its published
ResNet-50 weights are the standard ones. This module rebuilds the same architecture (ResNet v1.5:
the stride sits on the 3×3 convolution of each bottleneck) so that a torchvision-format
``state_dict`` loads with ``strict=True``: keys such as ``layer3.4.bn2.running_var``,
``layer1.0.downsample.0.weight`` and ``fc.weight`` are spelled exactly as torchvision spells them.

Importing this module imports torch; import it only inside functions that need a model.
"""

from __future__ import annotations

import torch
from torch import nn

RESNET50_LAYERS = (3, 4, 6, 3)
"""Bottleneck blocks per stage in ResNet-50."""

EXPANSION = 4
"""Output channels of a bottleneck = its width × 4."""


class Bottleneck(nn.Module):
    """1×1 reduce → 3×3 (strided) → 1×1 expand, plus the identity or a projection shortcut."""

    def __init__(self, in_channels: int, width: int, stride: int) -> None:
        super().__init__()
        out_channels = width * EXPANSION
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, 4·width, H/stride, W/stride)."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        result: torch.Tensor = self.relu(out + identity)
        return result


def _stage(in_channels: int, width: int, blocks: int, stride: int) -> nn.Sequential:
    """``blocks`` bottlenecks; the first one strides and projects the shortcut."""
    layers = [Bottleneck(in_channels, width, stride)]
    layers += [Bottleneck(width * EXPANSION, width, 1) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ResNet50(nn.Module):
    """ResNet-50 for 1000 ImageNet classes; ``features`` gives the last convolutional map."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = _stage(64, 64, RESNET50_LAYERS[0], stride=1)
        self.layer2 = _stage(256, 128, RESNET50_LAYERS[1], stride=2)
        self.layer3 = _stage(512, 256, RESNET50_LAYERS[2], stride=2)
        self.layer4 = _stage(1024, 512, RESNET50_LAYERS[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * EXPANSION, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images (N, 3, H, W) -> feature map (N, 2048, H/32, W/32)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images (N, 3, H, W) -> logits (N, num_classes)."""
        logits: torch.Tensor = self.fc(torch.flatten(self.avgpool(self.features(x)), 1))
        return logits
