#!/usr/bin/env bash
# The GPU acceptance checks of the pretraining and NER issues in one call, for a GPU machine lent for minutes:
#   1. pretraining throughput, ours (bf16, eager and torch.compile'd) vs the naive Hugging Face baseline (fp32 and
#      bf16), small and base presets;
#   2. a quality run: the small preset pretrained on the Wikipedia shards for MINUTES of wall time (tokenization
#      included), held-out RTD accuracy against the all-original baseline;
#   3. CoNLL-2003 fine-tuning from that discriminator and from random initialisation, side by side, same settings;
#   4. inference latency: torch eager fp16 vs the exported fp16 model on onnxruntime-gpu (CUDA execution provider,
#      TensorRT's where it loads), when this machine's onnxruntime has CUDA; it says so and times torch alone if not.
# Usage: benchmarks/gpu_checks.sh DATA_DIR OUT_DIR [MINUTES]
#   DATA_DIR holds corpus/ (wiki_en_train_0*.txt.gz, wiki_en_valid.txt.gz, sample.txt.gz) and conll2003/.
# Each phase has its own time limit, so one that fails or overruns still leaves the others' results in OUT_DIR.
# About MINUTES + 9 minutes in all. Needs the project's imports (pydantic, seqeval besides torch/transformers/
# tokenizers); on a machine without them, install wheels carried along first (benchmarks/RESULTS.md says how it ran).
set -u
DATA=${1:?usage: gpu_checks.sh DATA_DIR OUT_DIR [MINUTES]}
OUT=${2:?usage: gpu_checks.sh DATA_DIR OUT_DIR [MINUTES]}
MINUTES=${3:-4}  # whole minutes
WORK=$(mktemp -d)
export PYTHONUNBUFFERED=1 PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
mkdir -p "$OUT"

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/throughput_small.txt"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" \
  | tee -a "$OUT/throughput_small.txt"
timeout 120 python3 benchmarks/pretrain_throughput.py --preset small --batch-size 128 --warmup 3 --steps 10 \
  --corpus "$DATA/corpus/sample.txt.gz" >>"$OUT/throughput_small.txt" 2>&1
timeout 120 python3 benchmarks/pretrain_throughput.py --preset base --batch-size 256 --warmup 3 --steps 8 \
  --corpus "$DATA/corpus/sample.txt.gz" >"$OUT/throughput_base.txt" 2>&1
for preset in small base; do  # compilation happens in the warm-up steps
  timeout 240 python3 benchmarks/pretrain_throughput.py --preset $preset --batch-size $([ $preset = small ] && echo 128 || echo 256) \
    --warmup 4 --steps 8 --compile --corpus "$DATA/corpus/sample.txt.gz" >>"$OUT/throughput_base.txt" 2>&1
done

# Batch 256 costs about what 128 does on an H200 (the eager step is launch-bound); peak 2e-4 with 10% warmup kept
# the discriminator learning, where 1e-3 collapsed it (benchmarks/RESULTS.md).
timeout $((MINUTES * 60 + 90)) python3 benchmarks/pretrain_quality.py --preset small --minutes "$MINUTES" \
  --batch-size 256 --learning-rate 2e-4 \
  --corpus "$DATA"/corpus/wiki_en_train_0*.txt.gz --valid "$DATA/corpus/wiki_en_valid.txt.gz" \
  --tokenizer-lines 50000 --out "$WORK/quality" >"$OUT/quality.txt" 2>&1
cp "$WORK/quality/summary.json" "$OUT/quality_summary.json"
cp "$WORK/quality/curve.jsonl" "$OUT/quality_curve.jsonl"

# each arm with its own recipe (the random init without layer-wise decay), learning rate chosen on valid
timeout 240 python3 benchmarks/ner_real_data.py --init pretrained --layer-lr-decay 0.8 \
  --model-dir "$WORK/quality/pretrained" --data "$DATA/conll2003" --out "$WORK/ner-pretrained" --epochs 4 \
  --patience 2 --batch-size 32 --learning-rates 3e-4 1e-3 --seeds 1 --device cuda >"$OUT/ner_pretrained.txt" 2>&1 &
timeout 240 python3 benchmarks/ner_real_data.py --init random --layer-lr-decay 1.0 \
  --model-dir "$WORK/quality/pretrained" --data "$DATA/conll2003" --out "$WORK/ner-random" --epochs 4 \
  --patience 2 --batch-size 32 --learning-rates 3e-4 1e-3 --seeds 1 --device cuda >"$OUT/ner_random.txt" 2>&1 &
wait

timeout 300 python3 benchmarks/inference_latency.py --device cuda >"$OUT/inference_gpu.txt" 2>&1

for f in throughput_small throughput_base; do grep -E '^\||speedup|MFU|Error|error' "$OUT/$f.txt" | tail -8; done
grep -E '^prepared|held-out|steps|Error' "$OUT/quality.txt" | tail -4
for init in pretrained random; do echo "$init: $(grep -E 'test entity F1|Error' "$OUT/ner_$init.txt" | tail -2)"; done
grep -E '^\||providers|not timed|speedup|Error' "$OUT/inference_gpu.txt" | tail -12
