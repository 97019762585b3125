#!/usr/bin/env bash
# `make slurm-test`: the SLURM profile against a real one-node SLURM started here (Debian, root).
#
#   bash tests/slurm/run.sh                          # default: with accounting (slurmdbd + MariaDB), the
#                                                    # plugin's default `sacct` status check
#   SLURM_TEST_ACCOUNTING=0 bash tests/slurm/run.sh  # no slurmdbd: `--slurm-status-command squeue`
#
# 1. installs slurm-wlm and munge (+ slurmdbd, mariadb-server with accounting) with apt if missing;
# 2. writes slurm.conf (+ slurmdbd.conf, gres.conf) into a temp dir of its own (SLURM_CONF points there;
#    /etc/slurm is never touched), starts munged (unless one already answers), MariaDB + slurmdbd, slurmctld
#    and a configless slurmd (it links its config copy at /run/slurm/conf: removed, or the previous one put
#    back, on exit), and waits for the node to be idle;
# 3. copies the repository (tracked + untracked-not-ignored files) twice and builds the same small target
#    set (tests/slurm/config.yaml: TinyStories, one d32 x 1-layer model) once through
#    `snakemake --profile profiles/slurm --workflow-profile tests/slurm/profile` and once locally;
# 4. checks that every job went through sbatch and completed in SLURM, with the resources and the cluster
#    settings (SLURM_PARTITION, SLURM_ACCOUNT, ...) the profile derives, and that both runs' outputs are
#    identical (tests/slurm/compare.py);
# 5. on exit (also on failure or Ctrl-C) cancels its jobs and stops the daemons it started, by PID.
#
# Env: SLURM_TEST_ACCOUNTING  1 (default) | 0, see above
#      SLURM_TEST_GPU         1 (default): one fake GPU on the node, and the SLURM run's GPU rules ask for it
#                             (tests/slurm/gpu.yaml) | 0
#      SLURM_TEST_TIMEOUT     seconds per workflow run (default 1200)
#      SLURM_TEST_KEEP=1      keep the temp dir ($TMPDIR or /tmp); it is always kept after a failure
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ACCOUNTING=${SLURM_TEST_ACCOUNTING:-1}
GPU=${SLURM_TEST_GPU:-1}
RUN_TIMEOUT=${SLURM_TEST_TIMEOUT:-1200}
KEEP=${SLURM_TEST_KEEP:-0}
CLUSTER=snaketest
PARTITION="test"    # not the default partition: only SLURM_PARTITION (profiles/slurm) sends jobs there
FEATURE="testfeature" # the node's feature, asked for through SLURM_CONSTRAINT (with accounting)
DBD_PORT=6819
DB_PORT=13306
TARGETS=(
  results/tinystories/eval/w32_l1_s0.csv   # corpus -> tokenizer -> encode x2 -> train -> eval
  results/tinystories/eval/reference.csv   # CPU-only evaluation (no model)
  results/tinystories/samples.csv          # CPU-only aggregation of the model's samples
)

log() { printf '[slurm-test %(%H:%M:%S)T] %s\n' -1 "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts munged, slurmctld and slurmd)"
command -v apt-get >/dev/null || die "needs a Debian/Ubuntu machine with apt-get"
[ -x "$REPO/.venv/bin/snakemake" ] || die "no $REPO/.venv/bin/snakemake: run \`make setup\` first"
case $ACCOUNTING in 0|1) ;; *) die "SLURM_TEST_ACCOUNTING must be 0 or 1, not '$ACCOUNTING'" ;; esac
case $GPU in 0|1) ;; *) die "SLURM_TEST_GPU must be 0 or 1, not '$GPU'" ;; esac

T_START=$SECONDS

# ---------------------------------------------------------------------------------------------- packages
APT_SECONDS=0
apt_install() {  # packages...: install the missing ones, quietly; adds the time taken to APT_SECONDS
  local p missing=() t0=$SECONDS
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then log "packages present: $*"; return 0; fi
  log "installing ${missing[*]} (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } \
    || die "apt-get install ${missing[*]} failed"
  log "installed ${missing[*]} in $((SECONDS - t0)) s"
  APT_SECONDS=$((APT_SECONDS + SECONDS - t0))
}
apt_install slurm-wlm munge
[ "$ACCOUNTING" = 1 ] && apt_install slurmdbd mariadb-server
for d in slurmctld slurmd; do
  pgrep -x "$d" >/dev/null && die "a $d is already running on this machine; this test starts its own one-node SLURM, stop that one first"
done
if [ "$ACCOUNTING" = 1 ]; then
  pgrep -x slurmdbd >/dev/null && die "a slurmdbd is already running on this machine; stop it first (or SLURM_TEST_ACCOUNTING=0)"
fi

# ---------------------------------------------------------------------------------------------- cleanup
T=$(mktemp -d "${TMPDIR:-/tmp}/slurm-test.XXXXXX")
chmod 0755 "$T"   # the MariaDB data dir below is used by user mysql
mkdir -p "$T"/{etc,state,spool,run,log}
PIDS=()           # "name:pid" of every daemon started here, in start order
LOCAL_PGID=""
CLUSTER_UP=0
MADE_RUN_SLURM=0
OK=0

stop_pid() {  # name pid: SIGTERM, wait up to 20 s, then SIGKILL
  local name=$1 pid=$2 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then log "$name ($pid) still running: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$? i
  set +e
  trap - EXIT INT TERM
  if [ -n "$LOCAL_PGID" ] && kill -0 "$LOCAL_PGID" 2>/dev/null; then
    log "stopping the local snakemake run (process group $LOCAL_PGID)"
    kill -TERM -- "-$LOCAL_PGID" 2>/dev/null
  fi
  if [ "$CLUSTER_UP" = 1 ]; then  # this slurmctld only knows this test's jobs
    # cancel them and wait for slurmd's job steps to end: stopping the daemons leaves running jobs running
    if [ -n "$(squeue -h -o %i 2>/dev/null)$(scontrol listpids 2>/dev/null | tail -n +2)" ]; then
      log "cancelling remaining SLURM jobs"
      scancel --user=root 2>/dev/null
      for i in $(seq 60); do
        [ -z "$(squeue -h -o %i 2>/dev/null)$(scontrol listpids 2>/dev/null | tail -n +2)" ] && break
        sleep 1
      done
      [ "$i" = 60 ] && log "WARNING: job processes still running: $(scontrol listpids 2>&1 | tail -n +2 | tr '\n' ' ')"
    fi
  fi
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    stop_pid "${PIDS[i]%%:*}" "${PIDS[i]#*:}"
  done
  [ ${#PIDS[@]} -gt 0 ] && log "stopped: ${PIDS[*]}"
  # slurmd's link to its config cache outlives it
  case $(readlink /run/slurm/conf 2>/dev/null) in "$T"/*) rm -f /run/slurm/conf ;; esac
  if [ -e "$T/run/slurm-conf.orig" ] || [ -L "$T/run/slurm-conf.orig" ]; then
    mv "$T/run/slurm-conf.orig" /run/slurm/conf && log "restored /run/slurm/conf"
  fi
  [ "$MADE_RUN_SLURM" = 1 ] && rmdir /run/slurm 2>/dev/null
  if [ "$OK" = 1 ] && [ "$KEEP" != 1 ]; then
    rm -rf "$T"
  else
    log "kept $T (daemon logs in $T/log, workflow copies in $T/wf-slurm and $T/wf-local)"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_logs() {
  local f
  for f in "$T"/log/* "$T"/mysql/error.log; do
    case $f in */snakemake-*) continue ;; esac   # printed where they fail
    [ -s "$f" ] || continue
    echo "----- $f (last 30 lines)" >&2
    tail -n 30 "$f" >&2
  done
}
fail() { log "ERROR: $*" >&2; show_logs; exit 1; }

wait_for() {  # seconds what command...: poll every 0.5 s
  local secs=$1 what=$2 i
  shift 2
  for i in $(seq $((secs * 2))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  fail "timeout after ${secs} s waiting for $what"
}

# ---------------------------------------------------------------------------------------------- daemons
# Each daemon runs in a session of its own (setsid execs in place, so $! is its PID): a Ctrl-C, which goes
# to this script's process group, must not stop slurmctld before snakemake and cleanup cancel the jobs.
T_CLUSTER=$SECONDS
munge_ok() { munge -n | unmunge; }
if munge_ok >/dev/null 2>&1; then
  log "munged already running: using it"
else
  if [ ! -s /etc/munge/munge.key ]; then  # Debian's munge package normally creates it
    log "creating /etc/munge/munge.key"
    install -d -o munge -g munge -m 0700 /etc/munge
    mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
      || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
  fi
  install -d -o munge -g munge -m 0755 /run/munge
  # --force: a stale socket of a munged that is gone (none answered above) does not stop it
  setsid setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground --force \
    >"$T/log/munged.log" 2>&1 &
  PIDS+=("munged:$!")
  wait_for 20 munged munge_ok
fi

export SLURM_CONF=$T/etc/slurm.conf
NODE=$(hostname -s)
NCPU=$(nproc)
MEM_MB=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
MARGIN=$((MEM_MB / 10 > 512 ? MEM_MB / 10 : 512))  # for the OS and the daemons
REAL_MEM=$((MEM_MB - MARGIN))
[ "$REAL_MEM" -ge 1500 ] || die "only ${MEM_MB} MB of memory; the test jobs ask 1000 MB each"

if [ "$ACCOUNTING" = 1 ]; then
  ACCT_CONF="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT"
else
  ACCT_CONF="AccountingStorageType=accounting_storage/none"
fi
GRES_CONF=""
NODE_GRES=""
if [ "$GPU" = 1 ]; then  # one fake GPU (a gpu GRES without File= counts 0 in slurmd 22.05; /dev/null does)
  GRES_CONF="GresTypes=gpu"
  NODE_GRES="Gres=gpu:1"
  echo "NodeName=$NODE Name=gpu File=/dev/null" >"$T/etc/gres.conf"
fi
cat >"$SLURM_CONF" <<EOF
# one-node test cluster of tests/slurm/run.sh
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/run/slurmctld.pid
SlurmdPidFile=$T/run/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
$ACCT_CONF
JobAcctGatherType=jobacct_gather/none
$GRES_CONF
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
# slurmd fetches this file from slurmctld and links its copy at /run/slurm/conf, where srun inside a job
# finds it (the jobstep plugin drops SLURM_CONF from the job step's environment)
SlurmctldParameters=enable_configless
# finished jobs stay visible to squeue this long (the squeue status path needs >= 3 x the first status
# check interval)
MinJobAge=600
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$NCPU RealMemory=$REAL_MEM $NODE_GRES Features=$FEATURE State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=$PARTITION Nodes=ALL Default=NO MaxTime=INFINITE State=UP
EOF

if [ "$ACCOUNTING" = 1 ]; then
  DB=$T/mysql
  DB_SOCK=$DB/mysqld.sock
  DB_PASS=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  install -d -o mysql -g mysql -m 0750 "$DB"
  mariadb-install-db --no-defaults --user=mysql --datadir="$DB" --auth-root-authentication-method=socket \
    --skip-test-db >"$T/log/mariadb-install.log" 2>&1 || fail "mariadb-install-db failed"
  setsid mariadbd --no-defaults --user=mysql --datadir="$DB" --socket="$DB_SOCK" --port=$DB_PORT \
    --bind-address=127.0.0.1 --pid-file="$DB/mariadbd.pid" --log-error="$DB/error.log" --skip-log-bin \
    --innodb-use-native-aio=0 --innodb-buffer-pool-size=64M >"$T/log/mariadbd.out" 2>&1 &
  PIDS+=("mariadbd:$!")
  wait_for 60 MariaDB mariadb-admin --no-defaults --socket="$DB_SOCK" -u root ping
  mariadb --no-defaults --socket="$DB_SOCK" -u root -e \
    "CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
     GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" || fail "could not create the MariaDB user slurm"
  # slurmdbd reads slurmdbd.conf next to $SLURM_CONF; it must be private to SlurmUser (root)
  (umask 077; cat >"$T/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=$NODE
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
LogFile=$T/log/slurmdbd.log
PidFile=$T/run/slurmdbd.pid
EOF
  )
  setsid slurmdbd -D >"$T/log/slurmdbd.out" 2>&1 &
  PIDS+=("slurmdbd:$!")
  wait_for 60 slurmdbd sacctmgr -n list cluster
  sacctmgr -i add cluster "$CLUSTER" >/dev/null || fail "sacctmgr add cluster $CLUSTER failed"
fi

setsid slurmctld -D -i -f "$SLURM_CONF" >"$T/log/slurmctld.out" 2>&1 &
PIDS+=("slurmctld:$!")
CLUSTER_UP=1
wait_for 30 slurmctld scontrol ping
# configless, as on many clusters: srun inside a job reads /run/slurm/conf (see slurm.conf above)
if [ -e /run/slurm/conf ] || [ -L /run/slurm/conf ]; then
  mv /run/slurm/conf "$T/run/slurm-conf.orig"   # put back on exit
fi
[ -d /run/slurm ] || { mkdir -p /run/slurm; MADE_RUN_SLURM=1; }
env -u SLURM_CONF setsid slurmd -D --conf-server 127.0.0.1:6817 >"$T/log/slurmd.out" 2>&1 &
PIDS+=("slurmd:$!")
node_idle() { [ "$(sinfo -h -N -n "$NODE" -o %T | sort -u)" = idle ]; }
wait_for 60 "node $NODE to be idle in sinfo" node_idle
CLUSTER_SECONDS=$((SECONDS - T_CLUSTER))
log "one-node SLURM up in ${CLUSTER_SECONDS} s: $(sinfo -h -p "$PARTITION" -o '%n %T %c CPUs %m MB gres=%G features=%f'), accounting=$ACCOUNTING"
if [ "$ACCOUNTING" = 0 ]; then
  # Why the test passes --slurm-status-command squeue here: the plugin's default is sacct (installed with
  # slurm-client), which without slurmdbd fails on every call. After 5 failed attempts in a status cycle the
  # plugin (2.8.0) reports the jobs neither finished nor running, they drop out of Snakemake's active list,
  # and Snakemake waits for them forever ("No active jobs; skipping status query"; SIGTERM does not end it).
  log "sacct without slurmdbd says: $(sacct -X -n 2>&1 | head -n 1)"
fi

# ---------------------------------------------------------------------------------------------- workflow
export PATH=$REPO/.venv/bin:$PATH  # the repository's venv, shared by both copies (rules call `python -m`)
A=$T/wf-slurm
B=$T/wf-local
mkdir -p "$A"
(cd "$REPO" && git ls-files -co --exclude-standard -z \
  | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | tar --null -T - -cf -) | tar -C "$A" -xf -
cp -a "$A" "$B"
(cd "$A" && python -c "import experiments, sys; sys.exit(not experiments.__file__.startswith('$A/'))") \
  || fail "python -m experiments in the copy does not import the copy's package"

# targets first: --configfile takes several values and would swallow them
SNAKE_SLURM=(snakemake "${TARGETS[@]}" --profile profiles/slurm --workflow-profile tests/slurm/profile
             --configfile tests/slurm/config.yaml --verbose)
[ "$GPU" = 1 ] && SNAKE_SLURM+=(--configfile tests/slurm/config.yaml tests/slurm/gpu.yaml)  # the last wins
[ "$ACCOUNTING" = 0 ] && SNAKE_SLURM+=(--slurm-status-command squeue)
SNAKE_LOCAL=(snakemake "${TARGETS[@]}" --cores 2 --configfile tests/slurm/config.yaml)

# A retry: the first submission of rule ts_eval_reference runs `exit 3` instead of its job (an sbatch shim,
# first in PATH for the SLURM run only). The job fails in SLURM; profiles/slurm's `retries: 1` resubmits
# it as attempt 2, which must ask for twice the memory and runtime (workflow/rules/common.smk).
FAIL_RULE=ts_eval_reference
mkdir -p "$T/bin"
cat >"$T/bin/sbatch" <<EOF
#!/bin/bash
args=()
for a in "\$@"; do
  if [[ \$a == --wrap=*"--attempt 1 "* && " \$* " == *" --comment rule_$FAIL_RULE "* && ! -e $T/run/failed-once ]]; then
    touch $T/run/failed-once
    a="--wrap=exit 3"
  fi
  args+=("\$a")
done
exec $(command -v sbatch) "\${args[@]}"
EOF
chmod +x "$T/bin/sbatch"

# The cluster settings profiles/slurm reads from the environment. With accounting: all four (root's
# account and the QOS "normal" exist once the cluster is registered); without: only the partition, and
# the profile must then pass no -A / -C / --qos.
if [ "$ACCOUNTING" = 1 ]; then
  SLURM_ENV=("SLURM_PARTITION=$PARTITION" SLURM_ACCOUNT=root "SLURM_CONSTRAINT=$FEATURE" SLURM_QOS=normal)
else
  SLURM_ENV=(-u SLURM_ACCOUNT -u SLURM_CONSTRAINT -u SLURM_QOS "SLURM_PARTITION=$PARTITION")
fi
SLURM_ENV+=("PATH=$T/bin:$PATH")

T_WF=$SECONDS
T_WF_EPOCH=$(date +%s)
log "local run (background): ${SNAKE_LOCAL[*]}"
# its own session (setsid execs in place: $! is also the process group id, which cleanup can stop whole);
# it writes its end time for the report
(cd "$B" && exec env LOCAL_END="$T/run/local.end" setsid bash -c \
  'timeout --foreground -k 60 "$@"; rc=$?; date +%s >"$LOCAL_END"; exit $rc' _ "$RUN_TIMEOUT" "${SNAKE_LOCAL[@]}" \
  >"$T/log/snakemake-local.log" 2>&1) &
LOCAL_PGID=$!
log "SLURM run: env ${SLURM_ENV[*]} ${SNAKE_SLURM[*]}"
rc=0
(cd "$A" && env "${SLURM_ENV[@]}" timeout --foreground -k 60 "$RUN_TIMEOUT" "${SNAKE_SLURM[@]}" >"$T/log/snakemake-slurm.log" 2>&1) || rc=$?
SLURM_RUN_SECONDS=$((SECONDS - T_WF))
if [ $rc -ne 0 ]; then
  grep -v DEBUG "$T/log/snakemake-slurm.log" | tail -n 40 >&2
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && fail "the SLURM run did not finish in ${RUN_TIMEOUT} s"
  fail "the SLURM run failed (exit $rc); full log: $T/log/snakemake-slurm.log"
fi
log "SLURM run done in ${SLURM_RUN_SECONDS} s"
rc=0
wait "$LOCAL_PGID" || rc=$?
LOCAL_PGID=""
LOCAL_RUN_SECONDS=$(($(cat "$T/run/local.end" 2>/dev/null || date +%s) - T_WF_EPOCH))
[ $rc -eq 0 ] || { tail -n 40 "$T/log/snakemake-local.log" >&2; fail "the local run failed (exit $rc)"; }
log "local run done in ${LOCAL_RUN_SECONDS} s (side by side with the SLURM run)"

# ---------------------------------------------------------------------------------------------- checks
SLOG=$T/log/snakemake-slurm.log
N_JOBS=$(awk '/^Job stats:/ {s = 1} s && $1 == "total" {print $2; exit}' "$SLOG")
[ -n "$N_JOBS" ] && [ "$N_JOBS" -ge 7 ] || fail "could not read the job count from $SLOG (got '${N_JOBS}')"
N_LOCAL=$(grep -c '^localrule ' "$SLOG" || true)
# Snakemake job ids submitted with sbatch: one line per job, or one line per array of jobs
SUBMITTED=$(
  { sed -n 's/.*Job \([0-9]*\) has been submitted with SLURM jobid.*/\1/p' "$SLOG"
    sed -n 's/.*Submitted array job with Snakemake IDs \([0-9,]*\) and SLURM job ID.*/\1/p' "$SLOG" | tr , '\n'
  } | sort -un | wc -l)
N_SBATCH=$(grep -cE 'has been submitted with SLURM jobid|Submitted array job with Snakemake IDs' "$SLOG" || true)
N_SLURM_LOGS=$(find "$A/.snakemake/slurm_logs" -name '*.log' | wc -l)
STATUS_SACCT=$(grep -c 'Status query timing (cycle): command=sacct' "$SLOG" || true)
STATUS_SQUEUE=$(grep -c 'Status query timing (cycle): command=squeue' "$SLOG" || true)
# what slurmctld (and slurmdbd) know: this cluster ran only this test's jobs
SQUEUE_DONE=$(squeue -h --states=all -o '%i %T %P' | awk -v p="$PARTITION" '$2 == "COMPLETED" && $3 == p' | wc -l)
SQUEUE_ALL=$(squeue -h --states=all -o %i | wc -l)
log "jobs: $N_JOBS in the DAG, $N_LOCAL run locally, $SUBMITTED submitted with $N_SBATCH sbatch call(s)," \
    "$N_SLURM_LOGS SLURM job logs; squeue: $SQUEUE_DONE of $SQUEUE_ALL COMPLETED in partition $PARTITION;" \
    "status queries: $STATUS_SACCT with sacct, $STATUS_SQUEUE with squeue"
[ "$N_LOCAL" = 0 ] || fail "$N_LOCAL job(s) ran on the submit host instead of through sbatch"
[ "$SUBMITTED" = "$N_JOBS" ] || fail "$SUBMITTED of $N_JOBS jobs were submitted with sbatch"
# + 1: the failed first attempt of $FAIL_RULE
[ -e "$T/run/failed-once" ] || fail "the sbatch shim did not make $FAIL_RULE fail once"
[ "$N_SLURM_LOGS" = $((N_JOBS + 1)) ] || fail "$N_SLURM_LOGS SLURM logs for $N_JOBS jobs + 1 retry in $A/.snakemake/slurm_logs"
[ "$SQUEUE_ALL" = $((N_JOBS + 1)) ] && [ "$SQUEUE_DONE" = "$N_JOBS" ] \
  || fail "squeue: $SQUEUE_DONE of $SQUEUE_ALL SLURM jobs COMPLETED in partition $PARTITION, expected $N_JOBS of $((N_JOBS + 1))"
if [ "$ACCOUNTING" = 1 ]; then
  [ "$STATUS_SACCT" -gt 0 ] && [ "$STATUS_SQUEUE" = 0 ] || fail "expected the default sacct status path"
  sacct_done() {
    sacct -X -n -P -S "$(date -d '-1 day' +%Y-%m-%dT%H:%M)" -o State >"$T/log/sacct-states.txt"
    [ "$(grep -c '^COMPLETED$' "$T/log/sacct-states.txt")" = "$N_JOBS" ] \
      && [ "$(grep -c '^FAILED$' "$T/log/sacct-states.txt")" = 1 ]
  }
  wait_for 30 "sacct (slurmdbd) to list $N_JOBS COMPLETED jobs and 1 FAILED" sacct_done
  log "sacct (slurmdbd): $N_JOBS jobs COMPLETED, 1 FAILED (the first attempt of $FAIL_RULE)"
else
  [ "$STATUS_SQUEUE" -gt 0 ] && [ "$STATUS_SACCT" = 0 ] || fail "expected the squeue status path"
fi

# resources as sbatch got them: GPU rules (training, model evaluation) with --gpus=1 and gpu_mem_mb
# (tests/slurm/gpu.yaml) when SLURM_TEST_GPU=1, every other job without a GPU and with compute.mem_mb
# (an array job asks a few MB more: the plugin's "memory fudge" for the array's encoded payload); memory
# and runtime (compute.runtime_min) times the attempt: a rule's n-th submission is its n-th attempt
sed -n 's/.*sbatch call: sbatch .*--comment \(rule_[^ ]*\) \(.*\) --wrap=.*/\1 \2/p' "$SLOG" \
  | sed 's/ -D [^ ]*//' | tr -s ' ' >"$T/log/sbatch-calls.txt"
log "sbatch resource arguments per submission:"
sed 's/^/    /' "$T/log/sbatch-calls.txt"
[ "$(wc -l <"$T/log/sbatch-calls.txt")" = "$N_SBATCH" ] || fail "could not read all $N_SBATCH sbatch calls from $SLOG"
read -r CFG_MEM CFG_GPU_MEM CFG_RUNTIME < <(python -c 'import sys, yaml
c, g = (yaml.safe_load(open(f))["compute"] for f in sys.argv[1:])
print(c["mem_mb"], g["gpu_mem_mb"], c["runtime_min"])' "$A/tests/slurm/config.yaml" "$A/tests/slurm/gpu.yaml")
declare -A ATTEMPT=()
while read -r rule args; do
  attempt=$((${ATTEMPT[$rule]:-0} + 1))
  ATTEMPT[$rule]=$attempt
  case $rule in rule_ts_train*|rule_ts_eval_wildcards*) want_gpu=$GPU; mem=$([ "$GPU" = 1 ] && echo "$CFG_GPU_MEM" || echo "$CFG_MEM") ;;
                *) want_gpu=0; mem=$CFG_MEM ;; esac
  mem=$((mem * attempt))
  got=$(sed -n 's/.*--mem \([0-9]*\).*/\1/p' <<<"$args")
  slack=0; [[ $args == *--array=* ]] && slack=16
  [ -n "$got" ] && [ "$got" -ge "$mem" ] && [ "$got" -le $((mem + slack)) ] || fail "$rule: expected --mem $mem in: $args"
  [[ " $args " == *" -t $((CFG_RUNTIME * attempt)) "* ]] || fail "$rule: expected -t $((CFG_RUNTIME * attempt)) in: $args"
  if [ "$want_gpu" = 1 ]; then [[ $args == *--gpus=1* ]] || fail "$rule: expected --gpus=1 in: $args"
  else [[ $args != *--gpus* ]] || fail "$rule: unexpected GPU request in: $args"; fi
  [[ " $args " == *" -p $PARTITION "* ]] || fail "$rule: expected -p $PARTITION (SLURM_PARTITION) in: $args"
  if [ "$ACCOUNTING" = 1 ]; then
    [[ " $args " == *" -A root "* && " $args " == *" -C $FEATURE "* && " $args " == *" --qos=normal "* ]] \
      || fail "$rule: expected -A root, -C $FEATURE, --qos=normal (SLURM_ACCOUNT, _CONSTRAINT, _QOS) in: $args"
  else
    [[ " $args " != *" -A "* && " $args " != *" -C "* && " $args " != *--qos* ]] \
      || fail "$rule: no -A, -C, --qos expected (their variables are unset) in: $args"
  fi
done <"$T/log/sbatch-calls.txt"
[ "${ATTEMPT[rule_$FAIL_RULE]:-0}" = 2 ] || fail "$FAIL_RULE was submitted ${ATTEMPT[rule_$FAIL_RULE]:-0} times, expected 2"

log "comparing outputs (results/, resources/) of the SLURM and the local run"
python "$REPO/tests/slurm/compare.py" "$A" "$B" results resources || fail "outputs differ"

OK=1
log "PASSED. apt install ${APT_SECONDS} s; cluster start ${CLUSTER_SECONDS} s; SLURM run ${SLURM_RUN_SECONDS} s" \
    "(local run ${LOCAL_RUN_SECONDS} s);" \
    "total $((SECONDS - T_START)) s"
