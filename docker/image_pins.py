"""Print the installed vllm, torch and transformers as pip constraints (`name==version`), one a line.

    python3 docker/image_pins.py > /tmp/image-pins.txt
    pip install -r requirements.txt -c /tmp/image-pins.txt     # pip stops instead of replacing one of them

The Dockerfiles use it so that a requirement that would move the image's own builds fails the build with pip's
message, instead of leaving an image whose vLLM cannot import its transformers.
"""
import importlib.metadata

for name in ("vllm", "torch", "transformers"):
    try:
        print(f"{name}=={importlib.metadata.version(name)}")
    except importlib.metadata.PackageNotFoundError:
        pass
