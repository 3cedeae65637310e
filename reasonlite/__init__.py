"""reasonlite: distill math reasoning from a large teacher (gpt-oss on vLLM) into a small student, as ReasonLite does.

The seed's commands are entry scripts at the repository root (vllm_start.py, infer.py, utils/, train/, eval/); the
code they run lives here, one plain module per thing (see the README's "Where things are").
"""
__version__ = "0.2.0"
