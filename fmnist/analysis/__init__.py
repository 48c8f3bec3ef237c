"""The study around the model, as plain functions over tensors that return numbers and arrays.

Callbacks (``fmnist.callbacks``) and ``analyze.py`` (through ``fmnist.tasks``) both
call these; plotting lives in ``fmnist.plots``.
"""
