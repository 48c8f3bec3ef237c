"""A run as a process: command-line entry points and their errors (``cli``), building objects
from configs (``config``), safe files (``files``), resuming (``resume``), DDP under Hydra
(``distributed``) and multirun sweeps (``sweep``)."""
