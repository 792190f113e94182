#!/usr/bin/env bash
# Reproduces the categorical-VAE row of Jang, Gu & Poole (2017), Table 1, on binarized MNIST:
# trains every estimator (Gumbel-Softmax, ST Gumbel-Softmax, Gumbel-Rao) for every seed with
# one thread per run, estimates each run's test bounds with 1000 discrete codes per image, and
# writes the report (reproduction.md, reproduction_curves.svg) into the runs folder. With
# --publish it also replaces docs/reproduction.md and docs/reproduction_curves.svg, which it
# does only for the complete table of the documented protocol (every row, at least three seeds,
# 70 epochs, 1000 codes per image).
#
#   bash scripts/reproduce_table.sh --publish            # the whole table: 3 rows x 3 seeds
#   bash scripts/reproduce_table.sh --rows soft --seeds 1  # one row, one seed
#
# Options: --rows a,b (soft, st, gumbel-rao), --seeds 1,2,3, --epochs E, --eval-samples M
# (codes per test image for the bounds, 1000), --jobs J (runs at once, each on one thread),
# --runs DIR (run folders; default out/reproduction). Finished runs (a bounds.json) are kept,
# unfinished ones resume from their checkpoint; --fresh starts over; --publish (see above).
set -euo pipefail
cd "$(dirname "$0")/.."

rows=soft,st,gumbel-rao
seeds=1,2,3
epochs=70
eval_samples=1000
jobs=1
runs=out/reproduction
fresh=0
publish=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) rows=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --eval-samples) eval_samples=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --fresh) fresh=1; shift ;;
    --publish) publish=1; shift ;;
    *) echo "reproduce_table.sh: unknown option '$1' (see the comment at the top)" >&2; exit 2 ;;
  esac
done
for row in ${rows//,/ }; do
  case "$row" in soft|st|gumbel-rao) ;;
    *) echo "reproduce_table.sh: --rows: '$row' is not one of soft, st, gumbel-rao" >&2; exit 2 ;;
  esac
done
case "$jobs" in ''|*[!0-9]*|0) echo "reproduce_table.sh: --jobs must be a positive integer" >&2; exit 2 ;; esac
if [ "$publish" = 1 ]; then
  seed_count=$(echo "${seeds//,/ }" | wc -w)
  for row in soft st gumbel-rao; do
    case ",$rows," in *",$row,"*) ;; *) missing_row=$row ;; esac
  done
  if [ -n "${missing_row:-}" ] || [ "$seed_count" -lt 3 ] || [ "$epochs" != 70 ] ||
     [ "$eval_samples" != 1000 ]; then
    echo "reproduce_table.sh: --publish needs the complete table of the documented protocol" \
         "(rows soft,st,gumbel-rao, at least 3 seeds, --epochs 70, --eval-samples 1000); got" \
         "--rows $rows --seeds $seeds --epochs $epochs --eval-samples $eval_samples" >&2
    exit 2
  fi
fi

bash scripts/install-deps.sh --main
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DGUMBEL_BUILD_TESTS=OFF >/dev/null
cmake --build build -j "$(nproc)" --target vae_mnist vae_report
bash examples/vae_mnist/fetch_mnist.sh data/mnist
# The commit the programs were built from (a change made while the runs go does not reach them).
built_from=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then built_from="$built_from+local-changes"; fi

# The paper's setup (Jang et al. 2017, section 4.2 and appendix): 784-512-256-(20 x 10) encoder
# with ReLU and linear logits, mirrored decoder, Bernoulli likelihood on binarized pixels,
# uniform prior, relaxed samples in training, tau = max(0.5, exp(-r t)) updated every 1000
# steps. Our choices where the paper leaves them open are in examples/vae_mnist/reproduction.md.
common=(--data-dir data/mnist --latents 20 --classes 10 --binarize dynamic --encoder linear
        --schedule exponential --tau0 1 --tau-min 0.5 --anneal-rate 1e-4 --anneal-every 1000
        --lr 1e-3 --batch-size 100 --epochs "$epochs" --threads 1 --quiet
        --final-bound --eval-samples "$eval_samples"
        --blocks 1)  # one block per step: the runs of docs/reproduction.md, bit for bit

run_one() {  # row seed
  local row=$1 seed=$2 dir="$runs/$1_seed$2"
  if [ "$fresh" = 0 ] && [ -f "$dir/bounds.json" ]; then
    echo "== $row seed $seed: done before, kept"; return 0
  fi
  local extra=(--estimator "$row")
  if [ "$row" = gumbel-rao ]; then extra+=(--rao-samples 10); fi
  local resume=(--resume)
  if [ "$fresh" = 1 ]; then resume=(--overwrite); fi
  mkdir -p "$dir"
  echo "$built_from" >"$dir/commit"
  echo "== $row seed $seed: training ($dir/log.txt)"
  local start end
  start=$(date +%s.%N)
  ./build/examples/vae_mnist/vae_mnist "${common[@]}" "${extra[@]}" --seed "$seed" \
      --output-dir "$dir" "${resume[@]}" >"$dir/log.txt" 2>&1
  end=$(date +%s.%N)
  # Wall time of this invocation (a resumed run counts only its last part).
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f\n", b - a }' >"$dir/wall_seconds"
  tail -n 1 "$dir/log.txt"
}

pids=()
for seed in ${seeds//,/ }; do
  for row in ${rows//,/ }; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 5; done
    run_one "$row" "$seed" &
    pids+=($!)
  done
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
if [ "$status" != 0 ]; then echo "reproduce_table.sh: a run failed (see its log.txt)" >&2; exit 1; fi

command="bash scripts/reproduce_table.sh --rows $rows --seeds $seeds --epochs $epochs --eval-samples $eval_samples --jobs $jobs"
# The report goes into the runs folder; the tracked page only with --publish (checked above).
./build/examples/vae_mnist/vae_report --runs "$runs" --markdown "$runs/reproduction.md" \
    --svg "$runs/reproduction_curves.svg" --commit "$built_from" \
    --date "$(date -u +%Y-%m-%d)" --command "$command" \
    --machine "$(nproc) cores of $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')" \
    --notes examples/vae_mnist/reproduction.md
echo "== report: $runs/reproduction.md, $runs/reproduction_curves.svg"
if [ "$publish" = 1 ]; then
  # The page links its chart by file name, so the two copies keep working side by side.
  cp "$runs/reproduction.md" docs/reproduction.md
  cp "$runs/reproduction_curves.svg" docs/reproduction_curves.svg
  echo "== published: docs/reproduction.md, docs/reproduction_curves.svg"
fi
