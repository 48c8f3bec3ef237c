"""Using a trained model: the one checkpoint loader (``checkpoint``), people's image files
(``images``), prediction (``predict``) and export (``export``)."""
