#!/usr/bin/env bash
# Gupta 2023 in small: SmolLM2-135M-Instruct fine-tuned (LoRA) on 3 SuperNI classification
# tasks at budgets 10/50/100 per task, single-task and multi-task, with (def+pos2) and
# without (none) instructions; plus the untuned model. Results: docs/results/sample-efficiency-smollm2.md
#   usage: bash docs/results/sample-efficiency-smollm2.sh SUPERNI_DIR [OUT]
set -euo pipefail
superni=${1:?usage: $0 SUPERNI_DIR [OUT]}
out=${2:-runs/sample-efficiency}
here=$(cd "$(dirname "$0")" && pwd)
tasks="superni:$superni@$here/sample-efficiency-smollm2-tasks.txt"
common=(--limit 50 --max-new-tokens 10 --seed 0)
for encoding in def+pos2 none; do
  heedful eval --tasks "$tasks" --instructions "superni:$encoding" "${common[@]}" --out "$out/base/$encoding"
done
for budget in 10 50 100; do
  for encoding in def+pos2 none; do
    for setting in stl mtl; do
      heedful train --tasks "$tasks" --encoding "$encoding" --setting "$setting" --budget "$budget" \
        --method lora --learning-rate 5e-4 --batch-size 4 --epochs 2 --seed 0 \
        --eval-limit 50 --eval-max-new-tokens 10 --out "$out/$setting-$budget-$encoding"
    done
  done
done
