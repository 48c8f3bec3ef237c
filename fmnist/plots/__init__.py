"""Matplotlib figures of analysis results. Each function takes numbers and returns a Figure."""

import matplotlib

matplotlib.use("Agg")  # figures are written to files and TensorBoard, never shown
