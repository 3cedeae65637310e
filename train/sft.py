"""Supervised fine-tuning of the student on format_data/ with trl's SFTTrainer, from an open-r1-style YAML config.

    bash train/stage1.sh <machine_rank> <main_process_ip>     # accelerate launch of this script on 4 nodes x 8 GPUs
    accelerate launch --config_file train/accelerate/zero1.yaml train/sft.py --config train/config_stage1.yaml
    python3 train/sft.py --config train/config_tiny.yaml --max_steps 5 --output_dir runs/train/try   # one process

Any key of the config may be overridden on the command line (`--key value`, trl's parser). The code is
reasonlite/sft.py (also installed as `reasonlite-sft`).
"""
from reasonlite.sft import main

if __name__ == "__main__":
    main()
