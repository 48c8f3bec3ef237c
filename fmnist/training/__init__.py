"""Training: the LightningModule (``module``), one run from a composed config (``run``), the
checkpoint loader (``load``), resuming (``resume``), run directories (``rundir``) and DDP
under Hydra (``distributed``)."""
