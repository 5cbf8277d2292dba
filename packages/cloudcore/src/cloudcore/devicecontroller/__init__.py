"""devicecontroller: Devices, DeviceModels and DeviceStatus between the API and the edges.

KubeEdge ``cloud/pkg/devicecontroller``; protocol.md section 7.
"""

from __future__ import annotations

from cloudcore.devicecontroller.controller import DeviceController
from cloudcore.devicecontroller.downstream import membership_content
from cloudcore.devicecontroller.upstream import merge_twins

__all__ = ["DeviceController", "membership_content", "merge_twins"]
