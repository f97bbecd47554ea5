#!/usr/bin/env bash
# The GPU measurements of the pretraining issue in one call, for a GPU machine lent for minutes, most wanted first:
#   1. pretraining throughput, ours torch.compile'd (bf16) vs the naive Hugging Face baseline (fp32 and bf16
#      autocast), small and base presets; then ours eager, small, for the compiled/eager ratio;
#   2. a quality run: the small preset pretrained on the Wikipedia shards for MINUTES of wall time (tokenization
#      included; pretrain.budget_minutes fits the schedule), held-out RTD accuracy, recall and AUC;
#   3. CoNLL-2003 fine-tuning from that discriminator and from random initialisation, side by side, each arm with
#      its own recipe, learning rate chosen on valid;
#   4. SST-2 sentence classification from that discriminator and from random initialisation (issue 14's GPU line),
#      choices on a held-out slice of train, dev accuracy read once per model; skipped when DATA_DIR has no sst2/;
#   5. inference latency: torch eager fp16 vs the exported fp16 model on onnxruntime-gpu, when this machine's
#      onnxruntime has CUDA (it says so and times torch alone if not).
# Usage: benchmarks/gpu_checks.sh [--dry-run] DATA_DIR [OUT_DIR] [MINUTES]
#   DATA_DIR holds corpus/ (wiki_en_train_0*.txt.gz, wiki_en_valid.txt.gz, sample.txt.gz), conll2003/
#   ({train,valid,test}.txt.gz) and sst2/ ({train,dev}.tsv.gz, GLUE's label<TAB>sentence with a header). OUT_DIR defaults to $OUT. MINUTES (whole minutes, default 2) is the quality run's.
# Wall time: every phase runs under a time limit cut to what is left of TOTAL_S (540 s = 9 minutes; with MINUTES
# above 2 the later phases get less or are skipped), so one that fails or overruns still leaves the others'
# results; $OUT_DIR/phases.txt says how each phase ended and how long it took.
# --dry-run: the same phases on CPU with tiny settings (a few hundred lines of each data file, the tiny preset, a
# few steps, one learning rate, no torch.compile: inductor on 2 CPU cores takes minutes) within 300 s, to check the
# script before GPU time is spent.
# Needs the project's imports (pydantic, seqeval besides torch/transformers/tokenizers); on a machine without them,
# install wheels carried along first (benchmarks/RESULTS.md says how it ran).
set -u
DRY=0
if [ "${1:-}" = "--dry-run" ]; then DRY=1; shift; fi
DATA=${1:?usage: gpu_checks.sh [--dry-run] DATA_DIR [OUT_DIR] [MINUTES]}
OUT_DIR=${2:-${OUT:?usage: gpu_checks.sh [--dry-run] DATA_DIR [OUT_DIR] [MINUTES] (OUT_DIR defaults to \$OUT)}}
MINUTES=${3:-2}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export PYTHONUNBUFFERED=1 PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
mkdir -p "$OUT_DIR"
: >"$OUT_DIR/phases.txt"

if ((DRY)); then
  TOTAL_S=300 DEVICE=cpu COMPILE="" QUALITY_MINUTES=1 SMALL=tiny BASE=tiny NER_LRS="1e-3"
  THROUGHPUT_SMALL="--batch-size 2 --seq-len 64 --vocab-size 2000 --warmup 1 --steps 2"
  THROUGHPUT_BASE="--batch-size 2 --seq-len 64 --vocab-size 2000 --warmup 1 --steps 1"
  QUALITY="--batch-size 8 --seq-len 64 --vocab-size 2000 --tokenizer-lines 300 --valid-blocks 16 --log-every 2"
  NER="--epochs 1 --batch-size 16 --max-seq-len 64"
  SST2="--epochs 1 --batch-size 16 --max-seq-len 32" SST2_LRS="1e-3"
  INFERENCE="--batches 1 --runs 2 --seq-len 32"
  # a few hundred lines of each file, whatever DATA_DIR holds
  mkdir -p "$WORK/data/corpus" "$WORK/data/conll2003" "$WORK/data/sst2"
  for name in sample wiki_en_train_00 wiki_en_valid; do
    zcat "$DATA/corpus/$name.txt.gz" | head -n 300 | gzip >"$WORK/data/corpus/$name.txt.gz"
  done
  zcat "$DATA/conll2003/train.txt.gz" | head -n 2500 | gzip >"$WORK/data/conll2003/train.txt.gz"
  for split in valid test; do
    zcat "$DATA/conll2003/$split.txt.gz" | head -n 800 | gzip >"$WORK/data/conll2003/$split.txt.gz"
  done
  if [ -d "$DATA/sst2" ]; then
    zcat "$DATA/sst2/train.tsv.gz" | head -n 600 | gzip >"$WORK/data/sst2/train.tsv.gz"
    zcat "$DATA/sst2/dev.tsv.gz" | head -n 200 | gzip >"$WORK/data/sst2/dev.tsv.gz"
  else
    rmdir "$WORK/data/sst2"
  fi
  DATA=$WORK/data
else
  TOTAL_S=540 DEVICE=cuda COMPILE="--compile" QUALITY_MINUTES=$MINUTES SMALL=small BASE=base NER_LRS="3e-4 1e-3"
  THROUGHPUT_SMALL="--batch-size 128 --vocab-size 30522 --warmup 4 --steps 10"
  THROUGHPUT_BASE="--batch-size 256 --vocab-size 30522 --warmup 4 --steps 8"
  QUALITY="--batch-size 256 --vocab-size 30522 --warmup-fraction 0.1 --log-every 20 --tokenizer-lines 50000"
  NER="--epochs 3 --batch-size 32"
  SST2="--epochs 2 --patience 1 --batch-size 64 --max-seq-len 64" SST2_LRS="1e-4 3e-4"
  INFERENCE=""
fi
DEADLINE=$((SECONDS + TOTAL_S))

start_phase() {  # NAME WANTED_S: LIMIT becomes WANTED_S or what is left before the deadline; fails if under 20 s
  local left=$((DEADLINE - SECONDS))
  PHASE=$1 PHASE_START=$SECONDS LIMIT=$(($2 < left ? $2 : left))
  if ((LIMIT < 20)); then
    echo "$PHASE: skipped, ${left} s left of ${TOTAL_S} s" | tee -a "$OUT_DIR/phases.txt"
    return 1
  fi
}
end_phase() {
  echo "$PHASE: exit $1 after $((SECONDS - PHASE_START)) s (limit $LIMIT s)" | tee -a "$OUT_DIR/phases.txt"
}

{
  ((DRY)) && echo "dry run on CPU" || nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
} >"$OUT_DIR/environment.txt" 2>&1

# compilation happens in the warm-up steps
if start_phase throughput_small_compiled 90; then
  timeout "$LIMIT" python3 benchmarks/pretrain_throughput.py --preset $SMALL $THROUGHPUT_SMALL $COMPILE \
    --corpus "$DATA/corpus/sample.txt.gz" >"$OUT_DIR/throughput_small_compiled.txt" 2>&1
  end_phase $?
fi
if start_phase throughput_base_compiled 90; then
  timeout "$LIMIT" python3 benchmarks/pretrain_throughput.py --preset $BASE $THROUGHPUT_BASE $COMPILE \
    --corpus "$DATA/corpus/sample.txt.gz" >"$OUT_DIR/throughput_base_compiled.txt" 2>&1
  end_phase $?
fi
if start_phase throughput_small_eager 50; then
  timeout "$LIMIT" python3 benchmarks/pretrain_throughput.py --preset $SMALL $THROUGHPUT_SMALL \
    --corpus "$DATA/corpus/sample.txt.gz" >"$OUT_DIR/throughput_small_eager.txt" 2>&1
  end_phase $?
fi

# peak 2e-4 with 10% warmup kept the discriminator learning at batch 256, where 1e-3 collapsed it (RESULTS.md)
if start_phase quality $((QUALITY_MINUTES * 60 + 45)); then
  timeout "$LIMIT" python3 benchmarks/pretrain_quality.py --preset $SMALL --minutes "$QUALITY_MINUTES" \
    --learning-rate 2e-4 $QUALITY \
    --corpus "$DATA"/corpus/wiki_en_train_0*.txt.gz --valid "$DATA/corpus/wiki_en_valid.txt.gz" \
    --out "$WORK/quality" >"$OUT_DIR/quality.txt" 2>&1
  end_phase $?
  cp "$WORK/quality/summary.json" "$OUT_DIR/quality_summary.json" 2>/dev/null
  cp "$WORK/quality/curve.jsonl" "$OUT_DIR/quality_curve.jsonl" 2>/dev/null
fi

# NAME SCRIPT ARGS...: the pretrained and the random arm of a fine-tuning benchmark side by side, each with its own
# recipe (ELECTRA's layer-wise decay for the pretrained one, flat for random), learning rate chosen on held-out data
run_arms() {
  local name=$1 script=$2 init pids=() first second
  shift 2
  for init in pretrained random; do
    timeout "$LIMIT" python3 "$script" --init $init \
      --layer-lr-decay "$([ $init = pretrained ] && echo 0.8 || echo 1.0)" \
      --model-dir "$WORK/quality/pretrained" --out "$WORK/$name-$init" "$@" \
      --seeds 1 --device $DEVICE >"$OUT_DIR/${name}_$init.txt" 2>&1 &
    pids+=($!)
  done
  wait "${pids[0]}"; first=$?
  wait "${pids[1]}"; second=$?
  end_phase $((first > second ? first : second))
}

if start_phase ner_pair 130; then
  run_arms ner benchmarks/ner_real_data.py --data "$DATA/conll2003" $NER --patience 2 --learning-rates $NER_LRS
fi
# SST-2: all of train, choices on a held-out slice of it, dev read once per model
if [ ! -d "$DATA/sst2" ]; then
  echo "sst2: skipped, no $DATA/sst2" | tee -a "$OUT_DIR/phases.txt"
elif start_phase sst2_pair 110; then
  run_arms sst2 benchmarks/sst2_classification.py --data "$DATA/sst2" $SST2 --learning-rates $SST2_LRS
fi

if start_phase inference 60; then
  timeout "$LIMIT" python3 benchmarks/inference_latency.py --device $DEVICE $INFERENCE \
    >"$OUT_DIR/inference_$DEVICE.txt" 2>&1
  end_phase $?
fi

for f in throughput_small_compiled throughput_base_compiled throughput_small_eager; do
  [ -f "$OUT_DIR/$f.txt" ] && grep -E '^\||speedup|MFU|Error|error' "$OUT_DIR/$f.txt" | tail -8
done
[ -f "$OUT_DIR/quality.txt" ] && grep -E '^prepared|^budget|^warning|held-out|steps|Error' "$OUT_DIR/quality.txt" | tail -6
for init in pretrained random; do
  [ -f "$OUT_DIR/ner_$init.txt" ] && echo "$init: $(grep -E 'test entity F1|Error' "$OUT_DIR/ner_$init.txt" | tail -2)"
done
for init in pretrained random; do
  [ -f "$OUT_DIR/sst2_$init.txt" ] && echo "sst2 $init: $(grep -E 'dev accuracy|Error' "$OUT_DIR/sst2_$init.txt" | tail -2)"
done
[ -f "$OUT_DIR/inference_$DEVICE.txt" ] && grep -E '^\||providers|not timed|speedup|Error' "$OUT_DIR/inference_$DEVICE.txt" | tail -12
echo "phases:" && cat "$OUT_DIR/phases.txt"
