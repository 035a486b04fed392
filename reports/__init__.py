"""Report files for ward leaders: the progress chart (PNG) and the data exports (CSV, XLSX)."""
