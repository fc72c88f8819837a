#!/usr/bin/env bash
# GPU check: run on a machine with a CUDA GPU, from the repository root, with the
# package importable (installed, or PYTHONPATH=src). Writes logs to ${OUT:-outputs/gpu}.
#   1. the device tests (tests/test_device.py: a cuda fit matches the CPU fit; save/load to CPU),
#      with the calibration and response-curve tests;
#   2. scale.py on cuda, complete default fits (epochs 0) at the real panel's size and the largest
#      size, each fitted twice in one process (the second fit without CUDA's start-up);
#   3. causal_recovery.py on cuda, seeds 0 and 1 (compare with the CPU rows in the README).
# (scale.py's 20-epoch mode is left out: on a GPU each size's fresh process spends more on
# CUDA's start than on 20 epochs, so its seconds per epoch measure the start.)
set -u -o pipefail
out=${OUT:-outputs/gpu}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
python3 -m pytest tests/test_device.py tests/test_calibration.py tests/test_response.py -rs \
    -p no:cacheprovider 2>&1 | tee "$out/device_tests.txt"
python3 benchmarks/scale.py --device cuda --epochs 0 --repeat 2 --sizes 190x109x13,2000x156x20 \
    --json "$out/scale_cuda_full.json" 2>&1 | tee "$out/scale_cuda_full.txt"
python3 benchmarks/causal_recovery.py --device cuda --seeds 0,1 2>&1 | tee "$out/causal_cuda.txt"
