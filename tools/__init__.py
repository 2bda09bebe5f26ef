"""Command-line tools: offline render, benchmark, validation."""
