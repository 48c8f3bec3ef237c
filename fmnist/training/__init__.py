"""Training: metric names and modes (``metrics``), the LightningModule (``module``) and one
run from a composed config (``run``)."""
