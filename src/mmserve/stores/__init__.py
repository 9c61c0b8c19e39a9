"""Vector stores (``store`` plugins)."""
