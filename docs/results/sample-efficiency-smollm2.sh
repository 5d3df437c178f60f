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
common=(--data.limit 50 --scoring.max_new_tokens 10 --seed 0)
for encoding in def+pos2 none; do
  heedful eval --data.tasks "$tasks" --prompts.instructions "superni:$encoding" "${common[@]}" --out "$out/base/$encoding"
done
for budget in 10 50 100; do
  for encoding in def+pos2 none; do
    for setting in stl mtl; do
      heedful train --data.tasks "$tasks" --prompts.instructions "superni:$encoding" --data.setting "$setting" \
        --data.budget "$budget" --method.name lora --loop.learning_rate 5e-4 --loop.batch_size 4 --loop.epochs 2 \
        --seed 0 --eval.limit 50 --eval.max_new_tokens 10 --out "$out/$setting-$budget-$encoding"
    done
  done
done
