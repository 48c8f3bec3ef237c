"""Using a trained model: people's image files (``images``, ``convert``), the OOD flag
(``ood``), prediction (``predict``), export (``export``) and serving (``serve``)."""
