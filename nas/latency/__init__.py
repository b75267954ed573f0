"""Latency: boards that measure INT8 models (host CPU via LiteRT, measurement files) and, next, the predictor."""

from nas.latency._board import Board, FileBoard, LiteRTCPUBoard, Measurement

__all__ = ["Board", "LiteRTCPUBoard", "FileBoard", "Measurement"]
