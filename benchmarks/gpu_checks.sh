#!/usr/bin/env bash
# The GPU measurements of the pretraining issue in one call, for a GPU machine lent for minutes. Each phase has a
# fixed time limit; the limits sum to at most TOTAL_S (540 s = 9 minutes, checked before anything runs), so the call
# fits by construction and every phase gets its whole limit. Most wanted first:
#   1. throughput_small: pretraining throughput of the small preset, ours eager (bf16) interleaved with the naive
#      Hugging Face baseline (fp32 and bf16 autocast), then ours torch.compile'd. The eager table is saved before
#      compilation starts, so a compile that runs out of time still leaves the eager figure (goals: >= 1.5M
#      tokens/s, >= 3x the naive bf16 baseline);
#   2. quality: the small preset pretrained on the Wikipedia shards for the phase's limit less start-up (well under
#      10 minutes; pretrain.budget_minutes fits the schedule), held-out RTD and MLM figures;
#   3. ner_pair: CoNLL-2003 fine-tuning from that discriminator and from random initialisation, side by side, one
#      learning rate each (goal: test entity F1 >= 85 after <= 10 minutes of pretraining);
#   4. throughput_base: as 1 for the base preset (goal: MFU >= 35%);
#   5. sst2_pair: SST-2 from that discriminator and from random initialisation, choices on a held-out slice of
#      train, dev accuracy read once per model (goal: dev accuracy >= 85%); skipped when DATA_DIR has no sst2/.
# Usage: benchmarks/gpu_checks.sh [--dry-run] DATA_DIR [OUT_DIR]
#        benchmarks/gpu_checks.sh --limits         (the GPU run's phase limits, one "name seconds" a line)
#   DATA_DIR holds corpus/ (wiki_en_train_0*.txt.gz, wiki_en_valid.txt.gz, sample.txt.gz), conll2003/
#   ({train,valid,test}.txt.gz) and sst2/ ({train,dev}.tsv.gz, GLUE's label<TAB>sentence with a header). OUT_DIR
#   defaults to $OUT.
# What comes back: OUT_DIR gets three files, rewritten after every phase (the device tool returns at most 8):
# summary.md (one row per goal: target, measured, met, how its phase ended; benchmarks/gpu_summary.py), phases.txt
# (how each phase ended and how long it took) and logs.tar.gz (every phase's log and figures). GPU_CHECKS_RAW=DIR
# keeps those logs unpacked in DIR as well.
# Carry: DATA_DIR, the wheels in GPU_CHECKS_WHEELS (default .whl, if present) and the tracked files travel together
# and must fit in 64 MiB; the script measures them first and stops if they do not (run --dry-run on the folders
# you will carry to check before spending GPU time). Corpus, CoNLL-2003 and SST-2 as in ../shared/data: 56.5 MB.
# --dry-run: the same phases on CPU with tiny settings (a few hundred lines of each data file, the tiny preset, a
# few steps) within DRY_TOTAL_S; the small throughput phase still compiles, as on the GPU, so on a CPU (where
# inductor takes minutes) it rehearses a compile that runs out of time.
# Needs the project's imports (pydantic, seqeval besides torch/transformers/tokenizers); on a machine without them,
# install wheels carried along first (benchmarks/RESULTS.md says how it ran).
set -u
TOTAL_S=540 DRY_TOTAL_S=300 CARRY_LIMIT_MIB=64
PHASES=(throughput_small quality ner_pair throughput_base sst2_pair)
declare -A GPU_LIMITS=([throughput_small]=100 [quality]=150 [ner_pair]=110 [throughput_base]=90 [sst2_pair]=90)
# dry run: the quality phase's own clock gets 45 s, enough for preparation, a few steps and the evaluation reserve
# of benchmarks/pretrain_quality.py; the phases that end by themselves get room for a busy machine's start-up
declare -A DRY_LIMITS=([throughput_small]=45 [quality]=75 [ner_pair]=70 [throughput_base]=40 [sst2_pair]=70)
QUALITY_STARTUP_S=30  # of the quality phase's limit: interpreter, imports and exit, outside its own clock

if [ "${1:-}" = "--limits" ]; then
  for phase in "${PHASES[@]}"; do echo "$phase ${GPU_LIMITS[$phase]}"; done
  exit 0
fi
DRY=0
if [ "${1:-}" = "--dry-run" ]; then DRY=1; shift; fi
DATA=${1:?usage: gpu_checks.sh [--dry-run] DATA_DIR [OUT_DIR]}
OUT_DIR=${2:-${OUT:?usage: gpu_checks.sh [--dry-run] DATA_DIR [OUT_DIR] (OUT_DIR defaults to \$OUT)}}
WHEELS=${GPU_CHECKS_WHEELS:-.whl}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
RAW=${GPU_CHECKS_RAW:-$WORK/raw}
export PYTHONUNBUFFERED=1 PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
mkdir -p "$OUT_DIR" "$RAW"
: >"$RAW/phases.txt"

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

check_limits() {  # LABEL LIMITS_ARRAY_NAME BUDGET_S: the phase limits must fit the budget, or nothing runs
  local -n limits=$2
  local sum=0 phase
  for phase in "${PHASES[@]}"; do sum=$((sum + limits[$phase])); done
  echo "$1: $(for phase in "${PHASES[@]}"; do printf '%s %s s, ' "$phase" "${limits[$phase]}"; done)sum $sum of $3 s"
  ((sum <= $3))
}

check_carry() {  # what travels to the GPU machine: DATA_DIR, the wheels and the tracked files, at most 64 MiB
  local data wheels=0 tree=0 total
  data=$(du -sbL "$DATA" | cut -f1)
  [ -d "$WHEELS" ] && wheels=$(du -sbL "$WHEELS" | cut -f1)
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    tree=$(git ls-files -z | du -cbL --files0-from=- 2>/dev/null | tail -1 | cut -f1)
  fi
  total=$((data + wheels + tree))
  echo "carry: $(mib $total) MiB of $CARRY_LIMIT_MIB" \
    "(data $(mib "$data"), wheels $(mib $wheels), tracked files $(mib "$tree"))"
  ((total <= CARRY_LIMIT_MIB * 1048576))
}

if ((DRY)); then
  declare -n LIMITS=DRY_LIMITS
  BUDGET_S=$DRY_TOTAL_S
else
  declare -n LIMITS=GPU_LIMITS
  BUDGET_S=$TOTAL_S
fi
# the GPU run's limits are checked in a dry run too, so a table that no longer fits is caught before GPU time
check_limits "gpu limits" GPU_LIMITS "$TOTAL_S" | tee -a "$RAW/phases.txt"
((PIPESTATUS[0] == 0)) || { echo "the GPU phase limits exceed $TOTAL_S s" >&2; exit 2; }
if ((DRY)); then
  check_limits "dry-run limits" DRY_LIMITS "$DRY_TOTAL_S" | tee -a "$RAW/phases.txt"
  ((PIPESTATUS[0] == 0)) || { echo "the dry-run phase limits exceed $DRY_TOTAL_S s" >&2; exit 2; }
fi
check_carry | tee -a "$RAW/phases.txt"
((PIPESTATUS[0] == 0)) || { echo "more than $CARRY_LIMIT_MIB MiB would travel: carry less" >&2; exit 2; }

# one learning rate per task, the same for both arms: 1e-3 for CoNLL-2003 (at 3e-4 both arms were still climbing
# after 4 epochs on the H200, benchmarks/RESULTS.md), 3e-4 for SST-2 (ELECTRA-Small's GLUE rate, Clark et al. 2020)
NER_LR=1e-3 SST2_LR=3e-4
if ((DRY)); then
  DEVICE=cpu SMALL=tiny BASE=tiny
  # the two arms of a pair run side by side: one thread each on CPU, as the benchmarks' docstrings run them (two
  # arms of two threads each on a busy 2-core machine ran out of their phase's time)
  ARM_ENV="OMP_NUM_THREADS=1"
  THROUGHPUT_SMALL="--batch-size 2 --seq-len 64 --vocab-size 2000 --warmup 1 --steps 2 --compile"
  THROUGHPUT_BASE="--batch-size 2 --seq-len 64 --vocab-size 2000 --warmup 1 --steps 1"
  QUALITY="--batch-size 8 --seq-len 64 --vocab-size 2000 --tokenizer-lines 300 --valid-blocks 16 --log-every 2"
  NER="--epochs 1 --batch-size 16 --max-seq-len 64"
  SST2="--epochs 1 --batch-size 16 --max-seq-len 32"
  # a few hundred lines of each file, whatever DATA_DIR holds
  mkdir -p "$WORK/data/corpus" "$WORK/data/conll2003" "$WORK/data/sst2"
  for name in sample wiki_en_train_00 wiki_en_valid; do
    zcat "$DATA/corpus/$name.txt.gz" | head -n 300 | gzip >"$WORK/data/corpus/$name.txt.gz"
  done
  zcat "$DATA/conll2003/train.txt.gz" | head -n 1000 | gzip >"$WORK/data/conll2003/train.txt.gz"
  for split in valid test; do
    zcat "$DATA/conll2003/$split.txt.gz" | head -n 400 | gzip >"$WORK/data/conll2003/$split.txt.gz"
  done
  if [ -d "$DATA/sst2" ]; then
    zcat "$DATA/sst2/train.tsv.gz" | head -n 300 | gzip >"$WORK/data/sst2/train.tsv.gz"
    zcat "$DATA/sst2/dev.tsv.gz" | head -n 100 | gzip >"$WORK/data/sst2/dev.tsv.gz"
  else
    rmdir "$WORK/data/sst2"
  fi
  DATA=$WORK/data
else
  DEVICE=cuda SMALL=small BASE=base ARM_ENV=
  THROUGHPUT_SMALL="--batch-size 128 --vocab-size 30522 --warmup 4 --steps 10 --compile"
  THROUGHPUT_BASE="--batch-size 256 --vocab-size 30522 --warmup 4 --steps 8 --compile"
  QUALITY="--batch-size 256 --vocab-size 30522 --warmup-fraction 0.1 --log-every 20 --tokenizer-lines 50000"
  NER="--epochs 3 --batch-size 32"
  SST2="--epochs 2 --patience 1 --batch-size 64 --max-seq-len 64"
fi
QUALITY_MINUTES=$(awk -v s="${LIMITS[quality]}" -v u=$QUALITY_STARTUP_S 'BEGIN { printf "%.2f", (s - u) / 60 }')
DEADLINE=$((SECONDS + BUDGET_S))

start_phase() {  # NAME: LIMIT becomes the phase's limit, or what is left before the deadline; fails if under 20 s
  local left=$((DEADLINE - SECONDS))
  PHASE=$1 PHASE_START=$SECONDS LIMIT=$((LIMITS[$1] < left ? LIMITS[$1] : left))
  if ((LIMIT < 20)); then
    echo "$PHASE: skipped, ${left} s left of ${BUDGET_S} s" | tee -a "$RAW/phases.txt"
    publish
    return 1
  fi
}
end_phase() {
  echo "$PHASE: exit $1 after $((SECONDS - PHASE_START)) s (limit $LIMIT s)" | tee -a "$RAW/phases.txt"
  publish
}
publish() {  # the table and the logs so far into OUT_DIR, each replaced whole: a call cut short keeps the last
  python3 benchmarks/gpu_summary.py "$RAW" >/dev/null
  cp "$RAW/summary.md" "$RAW/phases.txt" "$OUT_DIR/"
  tar -czf "$OUT_DIR/.logs.tar.gz.tmp" -C "$RAW" . && mv "$OUT_DIR/.logs.tar.gz.tmp" "$OUT_DIR/logs.tar.gz"
}

{
  ((DRY)) && echo "dry run on CPU" || nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
  # Dockerfile.gpu's runtime for the exported model (no Docker here, and its wheels are too large to carry): where
  # the machine has onnxruntime-gpu, CUDAExecutionProvider is among the providers
  python3 -c "import onnxruntime as ort; print('onnxruntime', ort.__version__, ort.get_available_providers())" 2>&1 | tail -1
} >"$RAW/environment.txt" 2>&1

throughput() {  # NAME PRESET ARGS: ours eager vs the naive baseline, then ours compiled, figures saved as they come
  local name=$1 preset=$2
  shift 2
  timeout "$LIMIT" python3 benchmarks/pretrain_throughput.py --preset "$preset" "$@" \
    --corpus "$DATA/corpus/sample.txt.gz" --results "$RAW/$name.json" >"$RAW/$name.txt" 2>&1
  end_phase $?
}

# NAME SCRIPT ARGS...: the pretrained and the random arm of a fine-tuning benchmark side by side, each with its own
# recipe (ELECTRA's layer-wise decay for the pretrained one, flat for random), one learning rate
run_arms() {
  local name=$1 script=$2 init pids=() first second
  shift 2
  for init in pretrained random; do
    env $ARM_ENV timeout "$LIMIT" python3 "$script" --init $init \
      --layer-lr-decay "$([ $init = pretrained ] && echo 0.8 || echo 1.0)" \
      --model-dir "$WORK/quality/pretrained" --out "$WORK/$name-$init" "$@" \
      --seeds 1 --device $DEVICE >"$RAW/${name}_$init.txt" 2>&1 &
    pids+=($!)
  done
  wait "${pids[0]}"; first=$?
  wait "${pids[1]}"; second=$?
  end_phase $((first > second ? first : second))
}

if start_phase throughput_small; then
  throughput throughput_small $SMALL $THROUGHPUT_SMALL
fi

# peak 2e-4 with 10% warmup kept the discriminator learning at batch 256, where 1e-3 collapsed it (RESULTS.md)
if start_phase quality; then
  timeout "$LIMIT" python3 benchmarks/pretrain_quality.py --preset $SMALL --minutes "$QUALITY_MINUTES" \
    --learning-rate 2e-4 $QUALITY \
    --corpus "$DATA"/corpus/wiki_en_train_0*.txt.gz --valid "$DATA/corpus/wiki_en_valid.txt.gz" \
    --out "$WORK/quality" >"$RAW/quality.txt" 2>&1
  status=$?
  cp "$WORK/quality/summary.json" "$RAW/quality_summary.json" 2>/dev/null
  cp "$WORK/quality/curve.jsonl" "$RAW/quality_curve.jsonl" 2>/dev/null
  end_phase $status
fi

if start_phase ner_pair; then
  run_arms ner benchmarks/ner_real_data.py --data "$DATA/conll2003" $NER --patience 2 --learning-rates $NER_LR
fi

if start_phase throughput_base; then
  throughput throughput_base $BASE $THROUGHPUT_BASE
fi

# SST-2: all of train, choices on a held-out slice of it, dev read once per model
if [ ! -d "$DATA/sst2" ]; then
  echo "sst2_pair: skipped, no $DATA/sst2" | tee -a "$RAW/phases.txt"
  publish
elif start_phase sst2_pair; then
  run_arms sst2 benchmarks/sst2_classification.py --data "$DATA/sst2" $SST2 --learning-rates $SST2_LR
fi

for f in throughput_small throughput_base; do
  [ -f "$RAW/$f.txt" ] && grep -E '^\||speedup|MFU|Error|error' "$RAW/$f.txt" | tail -8
done
[ -f "$RAW/quality.txt" ] && grep -E '^prepared|^budget|^warning|held-out|steps|Error' "$RAW/quality.txt" | tail -6
echo "phases:" && cat "$RAW/phases.txt"
echo "summary:" && cat "$OUT_DIR/summary.md"
