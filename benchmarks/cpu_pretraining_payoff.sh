#!/usr/bin/env bash
# Does an hour of 2 CPU cores of pretraining pay off on CoNLL-2003, and does replaced-token detection beat MLM there?
# (issue 13, item 5, the CPU line). Four arms, each fine-tuned with its own learning-rate grid, the rate chosen on
# valid with seed 1, then seeds 2 and 3 at that rate:
#   random     the tiny shape and tokenizer with random weights (flat learning rate, as it tunes best);
#   electra    ELECTRA pretraining (generator + discriminator, RTD) at the reference's sampling temperature 1;
#   electra-t2 the same with the generator's logits divided by 2 before sampling (less plausible replacements);
#   mlm        the discriminator's shape trained by MLM alone (pretrain.objective mlm).
# The two ELECTRA variants are one choice, made on validation F1 like any other; test is printed for every arm.
# The three pretraining runs share one cased WordPiece vocabulary and run side by side on the 2 cores for a fixed
# step count each (on a shared machine a wall budget would measure the neighbours); MLM's step is cheaper, so it
# gets MLM_STEPS, about the same wall time. Each prints its training wall time. Then the fine-tunings run two at
# a time.
# Usage: benchmarks/cpu_pretraining_payoff.sh DATA_DIR OUT_DIR [ELECTRA_STEPS [MLM_STEPS]]
#   DATA_DIR holds corpus/ (wiki_en_train_0*.txt.gz, wiki_en_valid.txt.gz) and conll2003/ ({train,valid,test}.txt.gz).
# Results: OUT_DIR/<arm>/summary.json (pretraining, held-out figures) and OUT_DIR/ner-<arm>/summary.json
# (fine-tuning); the last line of each OUT_DIR/ner-<arm>.log is the arm's test F1, mean ± std over the seeds.
set -euo pipefail
DATA=${1:?usage: cpu_pretraining_payoff.sh DATA_DIR OUT_DIR [ELECTRA_STEPS [MLM_STEPS]]}
OUT=${2:?usage: cpu_pretraining_payoff.sh DATA_DIR OUT_DIR [ELECTRA_STEPS [MLM_STEPS]]}
ELECTRA_STEPS=${3:-5000}
MLM_STEPS=${4:-6300}
VOCAB=${VOCAB:-8000}
TOKENIZER_LINES=${TOKENIZER_LINES:-100000}
VALID_BLOCKS=${VALID_BLOCKS:-512}
LEARNING_RATE=${LEARNING_RATE:-1e-3}
RANDOM_LRS=${RANDOM_LRS:-5e-4 1e-3 2e-3}
PRETRAINED_LRS=${PRETRAINED_LRS:-1e-3 2e-3 4e-3}
NER_EPOCHS=${NER_EPOCHS:-5}
export PYTHONUNBUFFERED=1 PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
export TOKENIZERS_PARALLELISM=false
mkdir -p "$OUT"
CORPUS=("$DATA"/corpus/wiki_en_train_0*.txt.gz)

pretrain() {  # NAME STEPS [extra pretrain_quality args]
  local name=$1 steps=$2
  shift 2
  python benchmarks/pretrain_quality.py --corpus "${CORPUS[@]}" --valid "$DATA/corpus/wiki_en_valid.txt.gz" \
    --preset tiny --steps "$steps" --batch-size 32 --learning-rate "$LEARNING_RATE" --vocab-size "$VOCAB" \
    --tokenizer-lines "$TOKENIZER_LINES" --valid-blocks "$VALID_BLOCKS" --log-every 100 --out "$OUT/$name" "$@" \
    >"$OUT/$name.log" 2>&1
}

finetune() {  # ARM INIT MODEL_DIR LAYER_LR_DECAY LEARNING_RATES
  python benchmarks/ner_real_data.py --init "$2" --model-dir "$3" --data "$DATA/conll2003" --out "$OUT/ner-$1" \
    --layer-lr-decay "$4" --learning-rates $5 --seeds 1 2 3 --epochs "$NER_EPOCHS" --patience 2 --batch-size 32 \
    --device cpu \
    >"$OUT/ner-$1.log" 2>&1
}

# One vocabulary for every arm: the first ELECTRA run trains it, the others wait for it.
pretrain electra "$ELECTRA_STEPS" &
pids=($!)
until [ -f "$OUT/electra/tokenizer/tokenizer.json" ]; do
  kill -0 "${pids[0]}" 2>/dev/null || { tail -n 5 "$OUT/electra.log"; exit 1; }
  sleep 5
done
pretrain electra-t2 "$ELECTRA_STEPS" --set sampling_temperature=2.0 --tokenizer "$OUT/electra/tokenizer" &
pids+=($!)
pretrain mlm "$MLM_STEPS" --set objective=mlm --tokenizer "$OUT/electra/tokenizer" &
pids+=($!)
wait "${pids[@]}"

finetune random random "$OUT/electra/pretrained" 1.0 "$RANDOM_LRS" &
finetune electra pretrained "$OUT/electra/pretrained" 0.8 "$PRETRAINED_LRS" &
wait -n
finetune electra-t2 pretrained "$OUT/electra-t2/pretrained" 0.8 "$PRETRAINED_LRS" &
wait -n
finetune mlm pretrained "$OUT/mlm/pretrained" 0.8 "$PRETRAINED_LRS"
wait
for arm in random electra electra-t2 mlm; do echo "$arm: $(tail -n 1 "$OUT/ner-$arm.log")"; done
