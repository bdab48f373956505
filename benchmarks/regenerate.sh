#!/usr/bin/env bash
# Regenerates what is under results/ with gpsr's own commands and benchmark scripts.
#
#   benchmarks/regenerate.sh            the committed figures, into results/ (hours on a
#                                       2-core CPU: proxy tables and trainings dominate)
#   benchmarks/regenerate.sh --quick    every step on tiny budgets, into a scratch folder
#                                       (default /tmp/gpsr-results-quick; never results/)
#   ... --out DIR                       write there instead
#   ... --fresh                         recompute the proxy table and the second-seed
#                                       trainings too (without it, those steps resume or
#                                       extend what OUT already holds)
#
# Every command run is logged, with the gpsr commit and the date, in OUT/PROVENANCE.md; the
# seeds are in the commands' options. Needs the shared data (../shared or $GPSR_SHARED), and
# gplearn for the gplearn comparison (pip install -e '.[bench]').
# Not regenerated here: gpsr/shipped/ (see gpsr/shipped/README.md for its commands), and the
# prose of minibench.md and spaces-params-check.md, whose tables come from raw/ below.
set -euo pipefail
cd "$(dirname "$0")/.."
ARGS="$*"

QUICK=0
FRESH=0
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --fresh) FRESH=1 ;;
        --out) OUT="$2"; shift ;;
        *) echo "usage: $0 [--quick] [--fresh] [--out DIR]" >&2; exit 2 ;;
    esac
    shift
done
NBSZ="${GPSR_SHARED:-../shared}/data/nas-bench-suite-zero"
PROBLEMS=NB101-CF10,NB201-CF10,NB301-CF10
MINI="minimicro:digits-class minimacro:digits-class"
MINI+=" mini201:digits-rotation minimicro:digits-rotation"

if [ "$QUICK" = 1 ]; then
    R="${OUT:-/tmp/gpsr-results-quick}"
    REPEATS=1; RUNS=2; SEARCH=(--population 20 --generations 3); SEEDS=1
    NB201_ARCHS=12; AGREE_ARCHS=2; SPEED_NETS=1; SPEED_REPEATS=1; PARAMS_LIMIT=(--limit 2)
    SECOND_ARCHS=10
    W="$R/work"; TRANSFER=(--seeds 2 --groups 1 --group-runs 2 --options baseline,log)
    PEERS=(--blocks 2); LOOKUP=(--seeds 1 --evaluations 200); LIVE=(--population 2 --sample-size 1 --evaluations 3)
    LIVE301=("${LIVE[@]}")
    MINIAS=(--seeds 1 --evaluations 6 --population 3 --sample-size 2 --k 1 --epochs 1)
    TRAIN=(--darts-epochs 1 --darts-layers 5 --nb201-epochs 1)
else
    R="${OUT:-results}"
    REPEATS=15; RUNS=31; SEARCH=(); SEEDS=10
    NB201_ARCHS=1000; AGREE_ARCHS=300; SPEED_NETS=10; SPEED_REPEATS=3; PARAMS_LIMIT=()
    SECOND_ARCHS=30
    W=runs; TRANSFER=(); PEERS=(); LOOKUP=(); LIVE=()
    LIVE301=(--population 4 --sample-size 2 --evaluations 8)
    MINIAS=(--problems "$(printf '%s,' \
        MINIMICRO-DIGITS-CLASS MINIMACRO-DIGITS-CLASS MINIMICRO-DIGITS-ROTATION \
        MINI201-DIGITS-ROTATION | sed 's/,$//')"); TRAIN=()
fi
if [ "$FRESH" = 1 ]; then
    rm -f "$R/proxies/nb201-proxies.csv" "$R"/minibench/*.csv
fi
mkdir -p "$R/raw" "$R/proxies" "$R/minibench"
LOG="$R/PROVENANCE.md"
COMMIT="$(git rev-parse --short HEAD)$(git status --porcelain -- gpsr kernels cli pyproject.toml \
    | grep -q . && echo -dirty || true)"
{
    echo "# How these results were made"
    echo
    echo "\`benchmarks/regenerate.sh $ARGS\` at gpsr commit" \
         "\`$COMMIT\`, started $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPU(s)."
    echo "Each command below ran in this order; its seeds are in its options."
    echo
} > "$LOG"

quoted() {  # the command as one could paste it
    local words=() word safe='^[A-Za-z0-9_./:,=+*>-]+$'
    for word in "$@"; do
        if [[ "$word" =~ $safe ]]; then words+=("$word"); else words+=("'$word'"); fi
    done
    printf '    %s\n' "${words[*]}"
}

step() {  # log a command, then run it
    quoted "$@" >> "$LOG"
    "$@"
}

# The engine's figures (as benchmarks/core.sh): throughput, 31 runs, the shipped run, gplearn.
uptime > "$R/core-load.txt"
step gpsr bench-throughput --data "$NBSZ" --problems "$PROBLEMS" --device cpu \
    --repeats "$REPEATS" --save "$R/throughput-cpu.json"
step gpsr bench-throughput --device cpu --repeats "$(( (REPEATS + 1) / 2 ))" \
    --save "$R/throughput-cpu-shipped.json"
rm -rf "$R/paper-31-runs" "$R/shipped-run"
step /usr/bin/time -f "%e s wall" -o "$R/paper-31-runs.time" \
    gpsr run --data "$NBSZ" --problems "$PROBLEMS" --runs "$RUNS" --jobs 2 --seed 0 \
    ${SEARCH[@]+"${SEARCH[@]}"} --out "$R/paper-31-runs"
step gpsr run ${SEARCH[@]+"${SEARCH[@]}"} --out "$R/shipped-run"
rm -rf "$R/paper-31-runs/runs" "$R/shipped-run/runs"  # checkpoints; result.json has them
step python benchmarks/gplearn_vs_gpsr.py --seeds "$SEEDS" --out "$R/gplearn-vs-gpsr"
uptime >> "$R/core-load.txt"

# Live proxies: against the logged values, their speed, and gpsr's own NB201 table.
step python benchmarks/proxy_agreement.py --archs "$AGREE_ARCHS" --seed 0 --workers 2 \
    --out "$R/proxy-agreement"
step python benchmarks/proxy_speed.py --nets "$SPEED_NETS" --repeats "$SPEED_REPEATS" \
    --threads 2 --seed 0 --out "$R/proxy-speed.json"
step gpsr proxies-table --space nb201 --archs "$NB201_ARCHS" --seed 0 --jobs 2 --resume \
    --out "$R/proxies/nb201-proxies.csv"
step python benchmarks/computed_nb201.py --runs 5 --table "$R/proxies/nb201-proxies.csv"

# Network builders against the benchmarks' params/FLOPs columns (table for
# spaces-params-check.md).
quoted python benchmarks/check_space_params.py ${PARAMS_LIMIT[@]+"${PARAMS_LIMIT[@]}"} \
    ">" "$R/raw/spaces-params-check.md" >> "$LOG"
python benchmarks/check_space_params.py ${PARAMS_LIMIT[@]+"${PARAMS_LIMIT[@]}"} \
    > "$R/raw/spaces-params-check.md"

# The mini benchmark's second training seed, and its figures (table for minibench.md).
for pair in $MINI; do
    space="${pair%%:*}"; task="${pair##*:}"
    step gpsr bench build --space "$space" --task "$task" --archs "$SECOND_ARCHS" --epochs 2 \
        --seed 0 --train-seed 1 --jobs 2 --resume --out "$R/minibench/$space-$task.csv"
done
quoted gpsr bench report gpsr/shipped/*.csv --second-seed "$R/minibench/*.csv" --json \
    ">" "$R/raw/minibench-report.json" >> "$LOG"
gpsr bench report gpsr/shipped/*.csv --second-seed "$R"/minibench/*.csv --json \
    > "$R/raw/minibench-report.json"

# Every command fed bad input (issue 11), transfer options (issue 13), the peers and the
# paper's tables (issue 13), architecture search and training (issue 12).
step python benchmarks/bad_inputs.py --out "$R/bad-inputs.md"
step python benchmarks/transfer.py --work "$W/transfer" --out "$R/transfer.json" \
    ${TRANSFER[@]+"${TRANSFER[@]}"}
step python benchmarks/paper_experiments.py --runs "$RUNS" --out "$R/peers" --work "$W/peers" \
    ${PEERS[@]+"${PEERS[@]}"}
step python benchmarks/archsearch_lookup.py --jobs 2 --out "$R/archsearch" \
    ${LOOKUP[@]+"${LOOKUP[@]}"}
step python benchmarks/archsearch_live.py --space nb201 --jobs 2 --out "$R/archsearch" \
    ${LIVE[@]+"${LIVE[@]}"}
step python benchmarks/archsearch_live.py --space nb301 --jobs 2 --out "$R/archsearch" \
    ${LIVE301[@]+"${LIVE301[@]}"}
step python benchmarks/archsearch_mini.py --work "$W/archsearch-mini" --jobs 2 \
    --out "$R/archsearch-mini" ${MINIAS[@]+"${MINIAS[@]}"}
step python benchmarks/train_cifar_sample.py --work "$W/train-cifar-sample" \
    --out "$R/train-cifar-sample" ${TRAIN[@]+"${TRAIN[@]}"}
# The report: figures and tables of the runs above, every method of the CIFAR-10 comparison
# beside them, and every metric on the other problems that have the paper metric's proxies
# (NASLib's early files; never mixed within a problem).
ALSO=()
for f in "$NBSZ"/extra/nb201-cifar100.naslib-early-*.csv "$NBSZ"/extra/tnb101-*.naslib-early-*.csv
do
    ALSO+=(--also "$f")
done
step gpsr report "$R/paper-31-runs" "$R/shipped-run" --out "$R/report" "${ALSO[@]}" \
    --methods "$R/peers/compare-cifar10.json"

echo "finished $(date -u '+%Y-%m-%d %H:%M UTC')" >> "$LOG"
echo "regenerated $R (commands in $LOG)"
