#!/usr/bin/env bash
# A private single-node SLURM cluster on 127.0.0.1 for CI: munged, slurmctld, slurmd started by hand
# (no systemd), tracked by PID files, with fake GPUs (gres.conf File= distinct character devices).
#
#   .ci/slurm/cluster.sh install   # apt-get the Debian packages (slurmctld slurmd slurm-client munge)
#   .ci/slurm/cluster.sh start     # write configs under $IGA_SLURM_STATE, start the daemons, wait for an idle node
#   .ci/slurm/cluster.sh env       # print `export SLURM_CONF=…` for clients (sbatch, squeue, snakemake)
#   .ci/slurm/cluster.sh status    # sinfo + squeue
#   .ci/slurm/cluster.sh stop      # stop the daemons this script started, by PID (never by name)
#
# Everything is private, so it cannot meet another cluster on the same machine: its own state folder,
# its own munge key and socket, its own ports (IGA_SLURM_PORT, IGA_SLURM_PORT+1) and cluster name.
# One exception: while it runs, /etc/slurm/slurm.conf and gres.conf are symlinks to its config,
# because snakemake's slurm-jobstep plugin drops every SLURM_* variable (SLURM_CONF too) before the
# `srun` inside each job, and srun then only looks at /etc/slurm. `start` refuses to replace a
# slurm.conf that is not its own symlink; `stop` removes the symlinks.
# Environment: IGA_SLURM_STATE (default /tmp/iga-slurm-ci), IGA_SLURM_PORT (default 16817),
# IGA_SLURM_FAKE_GPUS (default 2, at most 6).
set -euo pipefail
# the daemons (slurmd, slurmctld, munged) live in sbin, which a minimal or non-login PATH lacks
export PATH="$PATH:/usr/sbin:/sbin"

STATE=${IGA_SLURM_STATE:-/tmp/iga-slurm-ci}
PORT=${IGA_SLURM_PORT:-16817}
NGPU=${IGA_SLURM_FAKE_GPUS:-2}
CONF=$STATE/etc/slurm.conf
FAKE_DEVICES=(/dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty)

log() { echo "[slurm-ci] $*" >&2; }

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null; then
        log "packages already installed ($(slurmctld -V))"
        return
    fi
    log "installing slurmctld slurmd slurm-client munge (apt)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
}

write_config() {
    local host cpus sockets cores threads mem
    host=$(hostname -s)
    # the CPU layout slurmd detects; RealMemory = total MiB - 1024
    read -r cpus sockets cores threads mem < <(slurmd -C | awk '
        /^NodeName/ {for (i = 1; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]}
                     print v["CPUs"], v["SocketsPerBoard"], v["CoresPerSocket"], v["ThreadsPerCore"], v["RealMemory"]}')
    mem=$((mem - 1024))
    if (( NGPU > ${#FAKE_DEVICES[@]} )); then
        log "IGA_SLURM_FAKE_GPUS=$NGPU: at most ${#FAKE_DEVICES[@]} fake GPUs"; exit 2
    fi
    rm -rf "$STATE"/{ctld,spool,log}  # every start is a fresh cluster: no jobs of earlier runs
    mkdir -p "$STATE"/{etc,ctld,spool,log,munge}
    chmod 755 "$STATE"
    cat > "$CONF" <<CONF
# written by .ci/slurm/cluster.sh: a private loopback cluster for CI
ClusterName=igaci
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$STATE/munge/munge.socket
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
MinJobAge=3600
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus SocketsPerBoard=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$mem Gres=gpu:$NGPU State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$host Default=NO MaxTime=INFINITE State=UP
CONF
    : > "$STATE/etc/gres.conf"
    for ((i = 0; i < NGPU; i++)); do  # one distinct, existing character device per fake GPU
        echo "NodeName=$host Name=gpu File=${FAKE_DEVICES[$i]}" >> "$STATE/etc/gres.conf"
    done
    : > "$STATE/etc/plugstack.conf"
    # a private munge key (readable by the munge user only)
    if [[ ! -s $STATE/munge/munge.key ]]; then
        dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1024 count=1 status=none
    fi
    chown -R munge:munge "$STATE/munge"
    chmod 700 "$STATE/munge"
    chmod 400 "$STATE/munge/munge.key"
}

ETC_LINKS=(/etc/slurm/slurm.conf /etc/slurm/gres.conf)

link_etc() {  # /etc/slurm/{slurm,gres}.conf -> ours (see the header)
    mkdir -p /etc/slurm
    for f in "${ETC_LINKS[@]}"; do
        if [[ -e $f || -L $f ]] && [[ $(readlink "$f" || true) != "$STATE/etc/$(basename "$f")" ]]; then
            log "$f exists and is not this cluster's symlink: refusing to replace it"
            log "(stop the cluster it belongs to, or move it away, then rerun)"
            return 1
        fi
    done
    for f in "${ETC_LINKS[@]}"; do ln -sfn "$STATE/etc/$(basename "$f")" "$f"; done
}

unlink_etc() {
    for f in "${ETC_LINKS[@]}"; do
        if [[ -L $f && $(readlink "$f") == "$STATE/etc/$(basename "$f")" ]]; then rm -f "$f"; fi
    done
}

pid_alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local t=$1 what=$2; shift 2
    for ((i = 0; i < t * 4; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.25
    done
    log "timed out after ${t}s waiting for $what"
    return 1
}

start() {
    install_packages
    if pid_alive "$STATE/slurmctld.pid" || pid_alive "$STATE/slurmd.pid" || pid_alive "$STATE/munge/munged.pid"; then
        log "a cluster from $STATE is still running; stopping it first"
        stop
    fi
    write_config
    link_etc
    export SLURM_CONF=$CONF
    log "starting munged (private socket $STATE/munge/munge.socket)"
    runuser -u munge -- /usr/sbin/munged --socket="$STATE/munge/munge.socket" \
        --key-file="$STATE/munge/munge.key" --pid-file="$STATE/munge/munged.pid" \
        --log-file="$STATE/munge/munged.log" --seed-file="$STATE/munge/munged.seed" --force
    wait_for 10 munged test -S "$STATE/munge/munge.socket"
    log "starting slurmctld (port $PORT)"
    /usr/sbin/slurmctld -f "$CONF" -c
    wait_for 20 slurmctld scontrol ping
    log "starting slurmd (port $((PORT + 1)), $NGPU fake GPUs)"
    /usr/sbin/slurmd -f "$CONF"
    if ! wait_for 40 "an idle node" bash -c "sinfo -h -p cpu -o %t | grep -qx idle"; then
        sinfo -N -l >&2 || true
        tail -n 30 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
        return 1
    fi
    log "cluster up: $(sinfo -h -o '%P %t %N %G' | tr '\n' ';')"
}

stop_one() {  # stop_one NAME PIDFILE: TERM by PID, then KILL after 10 s
    local name=$1 pidfile=$2 pid
    [[ -s $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        log "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 40; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        if kill -0 "$pid" 2>/dev/null; then
            log "$name (pid $pid) ignored TERM; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$pidfile"
}

stop() {
    if [[ -f $CONF ]] && pid_alive "$STATE/slurmctld.pid"; then
        # cancel what is left so no job step outlives the cluster
        SLURM_CONF=$CONF timeout 10 scancel --quiet --user "$(id -un)" 2>/dev/null || true
    fi
    stop_one slurmd "$STATE/slurmd.pid"
    stop_one slurmctld "$STATE/slurmctld.pid"
    stop_one munged "$STATE/munge/munged.pid"
    unlink_etc
}

case "${1:-}" in
    install) install_packages ;;
    start) start ;;
    stop) stop ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    status) export SLURM_CONF=$CONF; sinfo -N -o '%N %P %t %c %m %G'; squeue ;;
    *) echo "usage: $0 install|start|stop|env|status" >&2; exit 2 ;;
esac
