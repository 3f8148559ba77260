#!/usr/bin/env bash
# Every question's quick profile into ./mlruns, one child per core at once (--workers auto: one
# torch thread each; the quick models are too small to use two threads well), then the
# README's FAQ block. Interrupted, it continues where it stopped.
#   experiments/run_all_quick.sh                 # every question
#   experiments/run_all_quick.sh gru_vs_lstm     # some
set -euo pipefail
cd "$(dirname "$0")/.."
grubench="${GRUBENCH:-.venv/bin/grubench}"
questions=("$@")
if [ ${#questions[@]} -eq 0 ]; then
  questions=(custom_vs_torch gru_vs_lstm optimizer activation initialization vanishing_gradients
             batch_size regularization classic_two_layer min_rnns what_matters)
fi
for question in "${questions[@]}"; do
  start=$(date +%s)
  "$grubench" run "experiments/$question.py" --workers auto | tail -n 1
  echo "$question: $(( $(date +%s) - start )) s"
done
# the README's order: the questions people ask first, then the checks of the models themselves
"$grubench" readme experiments/{gru_vs_lstm,min_rnns,initialization,activation,optimizer,batch_size,regularization,vanishing_gradients,custom_vs_torch,classic_two_layer,what_matters}.py
