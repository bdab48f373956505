#!/usr/bin/env bash
# The engine's figures (issue 2), side by side in one sitting on this machine:
# throughput against numpy+scipy, 31 runs with --jobs 2, gplearn vs gpsr over 10 seeds,
# and a default run on the shipped benchmark. Writes results/*.
set -euo pipefail
cd "$(dirname "$0")/.."
NBSZ="${GPSR_SHARED:-../shared}/data/nas-bench-suite-zero"
PROBLEMS=NB101-CF10,NB201-CF10,NB301-CF10
uptime | tee results/core-load.txt
gpsr bench-throughput --data "$NBSZ" --problems "$PROBLEMS" --device cpu --repeats 15 \
    --save results/throughput-cpu.json
gpsr bench-throughput --device cpu --repeats 7 --save results/throughput-cpu-shipped.json
rm -rf results/paper-31-runs
/usr/bin/time -f "%e s wall" -o results/paper-31-runs.time \
    gpsr run --data "$NBSZ" --problems "$PROBLEMS" --runs 31 --jobs 2 --seed 0 \
    --out results/paper-31-runs
rm -rf results/paper-31-runs/runs  # per-generation checkpoints: large, and result.json has them
rm -rf results/shipped-run
gpsr run --out results/shipped-run
rm -rf results/shipped-run/runs
python benchmarks/gplearn_vs_gpsr.py --seeds 10 --out results/gplearn-vs-gpsr
uptime | tee -a results/core-load.txt
