#!/usr/bin/env bash
# A throw-away one-node SLURM cluster on this machine, for testing workflow/profiles/slurm.
#
#   workflow/scripts/slurm_cluster.sh up [DIR]   install the packages if missing (root only), write the
#                                                configuration into DIR (a new directory; default: mktemp),
#                                                start munged, slurmctld and slurmd, wait until the node is
#                                                idle; prints `export` lines for the clients (SLURM_CONF,
#                                                PATH with DIR/bin first, MEREC_SLURM_DIR):
#                                                  eval "$(workflow/scripts/slurm_cluster.sh up)"
#   workflow/scripts/slurm_cluster.sh down DIR   cancel the cluster's jobs, stop exactly the daemons that
#                                                `up DIR` started (by their recorded PIDs), remove DIR
#
# Clients (sinfo, sbatch, snakemake's slurm executor) find the cluster through SLURM_CONF, or through the
# wrappers in DIR/bin that set it (srun inside jobs needs those). Nothing under /etc is written and the
# daemons use their own munge key, socket and ports, so an existing SLURM or munge installation is left
# alone. One node (this host, 127.0.0.1) in two partitions, `cpu` (default) and `gpu`, with a fake GPU
# (`Gres=gpu:1`, device file /dev/null): jobs can request --gpus=1 on a machine without one. No cgroups
# (proctrack/linuxproc, task/none), no accounting database: job states come from squeue and scontrol,
# which keep finished jobs for an hour; DIR/log/jobcomp.log records every finished job.
# DIR must be reachable by the munge user (e.g. under /tmp, not inside a private 0700 directory).
# Exit status 77 from `up`: SLURM cannot be provided here (not root and not installed, or apt failed).
set -Eeuo pipefail

PACKAGES=(slurmctld slurmd slurm-client munge)
SKIP=77
MARKER=.merec-slurm-cluster  # `down` removes only directories that `up` marked

log() { echo "slurm_cluster: $*" >&2; }

have_binaries() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null
}

install_packages() {
    have_binaries && return 0
    if [ "$(id -u)" != 0 ]; then
        log "slurmctld/slurmd/munge are not installed and installing them needs root"
        exit $SKIP
    fi
    if ! command -v apt-get >/dev/null; then
        log "slurmctld/slurmd/munge are not installed and there is no apt-get"
        exit $SKIP
    fi
    log "installing ${PACKAGES[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    # the package scripts must not start system-wide daemons: deny that unless a policy already exists
    local policy=/usr/sbin/policy-rc.d added_policy=0
    if [ ! -e $policy ]; then
        printf '#!/bin/sh\nexit 101\n' >$policy && chmod 755 $policy && added_policy=1
    fi
    local apt=(apt-get install -y -q --no-install-recommends "${PACKAGES[@]}")
    if ! "${apt[@]}" >/dev/null 2>&1; then
        apt-get update -q >/dev/null 2>&1 || true
        if ! "${apt[@]}" >&2; then
            [ $added_policy = 1 ] && rm -f $policy
            log "apt-get install ${PACKAGES[*]} failed"
            exit $SKIP
        fi
    fi
    [ $added_policy = 1 ] && rm -f $policy
    have_binaries || { log "packages installed but binaries missing"; exit $SKIP; }
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start NAME CMD...: run CMD in the foreground of its own session, detached from our stdio; record its PID
start() {
    local name=$1
    shift
    setsid "$@" </dev/null >>"$dir/log/$name.out" 2>&1 &
    echo "$name $!" >>"$dir/pids"
}

wait_for() {
    local what=$1 seconds=$2
    shift 2
    for _ in $(seq $((seconds * 5))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    log "timed out after ${seconds}s waiting for $what; logs in $dir/log"
    tail -n 20 "$dir"/log/* >&2 || true
    return 1
}

node_idle() { [ "$(sinfo -h -N -n "$node" -o %t | sort -u)" = idle ]; }

up() {
    install_packages
    if [ "$(id -u)" != 0 ]; then
        log "starting slurmd needs root"
        exit $SKIP
    fi
    dir=${1:-$(mktemp -d /tmp/merec-slurm.XXXXXX)}
    if [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
        log "$dir exists and is not empty"
        exit 2
    fi
    mkdir -p "$dir"/{state,spool,log,munge}
    touch "$dir/$MARKER"
    dir=$(cd "$dir" && pwd)
    chmod 755 "$dir"  # munged runs as the munge user and must reach its own subdirectory
    if ! setpriv --reuid=munge --regid=munge --clear-groups test -x "$dir"; then
        log "$dir is not reachable by the munge user: use a directory under /tmp"
        rm -rf "$dir"
        exit 2
    fi
    trap 'log "start failed, stopping what was started"; down "$dir"' ERR

    # munge: own key, socket, pid and log under DIR, running as the munge user
    # (the key's directory is private; the socket's must be reachable by every user)
    mkdir -p "$dir/munge-key"
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile="$dir/munge-key/munge.key" >/dev/null 2>&1
    else
        head -c 1024 /dev/urandom >"$dir/munge-key/munge.key"
        chmod 600 "$dir/munge-key/munge.key"
    fi
    chown -R munge:munge "$dir/munge" "$dir/munge-key"
    chmod 700 "$dir/munge-key"
    chmod 755 "$dir/munge"
    local socket=$dir/munge/munge.socket
    start munged setpriv --reuid=munge --regid=munge --init-groups munged --foreground --socket="$socket" \
        --key-file="$dir/munge-key/munge.key" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed"
    wait_for munged 15 bash -c "munge -n --socket='$socket' | unmunge --socket='$socket'"

    node=$(hostname -s)
    # the node advertises at least 2 CPUs and 64 GB (config_overrides: not checked against the hardware,
    # nothing is enforced without cgroups) so that the profile's requests fit on any test machine
    local cpus memory
    cpus=$(nproc)
    [ "$cpus" -ge 2 ] || cpus=2
    memory=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
    [ "${memory:-0}" -ge 65536 ] || memory=65536
    cat >"$dir/slurm.conf" <<EOF
# one-node test cluster written by workflow/scripts/slurm_cluster.sh
ClusterName=merec-test
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.log
MpiDefault=none
MailProg=/bin/true
PropagateResourceLimits=NONE
ReturnToService=2
MinJobAge=3600
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes=$node Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$node MaxTime=INFINITE State=UP
EOF
    cat >"$dir/gres.conf" <<EOF
# a fake GPU: Slurm schedules it, nothing uses the device file
AutoDetect=off
NodeName=$node Name=gpu File=/dev/null
EOF
    cat >"$dir/cgroup.conf" <<EOF
# no cgroup enforcement (containers): proctrack/linuxproc and task/none do not load a cgroup plugin
ConstrainCores=no
ConstrainDevices=no
ConstrainRAMSpace=no
EOF
    export SLURM_CONF=$dir/slurm.conf
    # client commands that find this cluster without SLURM_CONF: the slurm executor's job step drops
    # SLURM_* variables (SLURM_CONF included) before calling srun; real clusters use /etc/slurm instead
    mkdir -p "$dir/bin"
    local tool
    for tool in srun sbatch squeue sinfo scontrol scancel sacct sacctmgr sshare; do
        command -v "$tool" >/dev/null || continue
        printf '#!/bin/sh\nSLURM_CONF=%s exec %s "$@"\n' "$SLURM_CONF" "$(command -v "$tool")" >"$dir/bin/$tool"
        chmod 755 "$dir/bin/$tool"
    done
    start slurmctld slurmctld -D -i -f "$SLURM_CONF"
    wait_for slurmctld 30 scontrol ping
    start slurmd slurmd -D -N "$node" -f "$SLURM_CONF"
    wait_for "node $node to be idle" 60 node_idle
    trap - ERR
    log "cluster up: $(sinfo -h -o '%P %a %D %t %G' | tr '\n' ';')"
    echo "export SLURM_CONF=$SLURM_CONF"
    echo "export PATH=$dir/bin:\$PATH"
    echo "export MEREC_SLURM_DIR=$dir"
}

# is PID still the process we started as NAME? (guards against a reused PID)
ours() {
    local pid=$1 name=$2
    [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$name"
}

down() {
    local dir=$1
    if [ ! -f "$dir/$MARKER" ]; then
        # an empty directory (`up` stopped before writing anything) goes; anything else is not ours
        [ ! -d "$dir" ] || rmdir "$dir" 2>/dev/null || { log "$dir was not set up by this script: left alone"; return 1; }
        return 0
    fi
    if [ -f "$dir/slurm.conf" ]; then
        export SLURM_CONF=$dir/slurm.conf
        if scontrol ping >/dev/null 2>&1; then
            scancel --user "$(id -un)" >/dev/null 2>&1 || true
            for _ in $(seq 50); do
                [ -z "$(squeue -h -t PD,R,CG 2>/dev/null)" ] && break
                sleep 0.2
            done
        fi
    fi
    local name pid
    # reverse order of starting: slurmd, slurmctld, munged
    [ -f "$dir/pids" ] && tac "$dir/pids" | while read -r name pid; do
        ours "$pid" "$name" || continue
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            ours "$pid" "$name" || break
            sleep 0.2
        done
        if ours "$pid" "$name"; then
            log "$name ($pid) did not stop: killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$dir"
    log "cluster in $dir stopped and removed"
}

case "${1:-}" in
    up) shift; up "$@" ;;
    down) [ $# = 2 ] || { echo "usage: $0 down DIR" >&2; exit 2; }; down "$2" ;;
    install) install_packages ;;
    *) echo "usage: $0 up [DIR] | down DIR | install" >&2; exit 2 ;;
esac
