"""reasonlite: distill math reasoning from a teacher served by vLLM into a small student."""
