#!/usr/bin/env bash
# Stop the test cluster that tests/slurm/start-cluster.sh started in DIR: cancel its jobs, then stop
# slurmd, slurmctld and munged by the PIDs recorded in DIR/run (SIGTERM, then SIGKILL after 10 s).
# Only processes whose command line still names the daemon are signalled (PIDs get reused).
set -uo pipefail

DIR=${1:?usage: stop-cluster.sh DIR}
[ -d "$DIR" ] || exit 0
DIR=$(cd "$DIR" && pwd)

# cancel whatever still runs (a Snakemake run that was interrupted) and give slurmd up to 15 s to end
# the jobs' processes, so that none outlives the cluster
if [ -x "$DIR/bin/scancel" ] && [ -f "$DIR/run/slurmctld.pid" ]; then
    timeout 10 "$DIR/bin/scancel" --full --user=root >/dev/null 2>&1 || true
    for _ in $(seq 30); do
        active=$(timeout 10 "$DIR/bin/squeue" --noheader --states=RUNNING,COMPLETING,PENDING 2>/dev/null | wc -l)
        [ "${active:-0}" -eq 0 ] && break
        sleep 0.5
    done
fi

is_daemon() {  # PID NAME: is PID alive and running NAME?
    [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q -- "$2"
}

for daemon in slurmd slurmctld munged; do
    pidfile="$DIR/run/$daemon.pid"
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if [[ "$pid" =~ ^[0-9]+$ ]] && is_daemon "$pid" "$daemon"; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 100); do is_daemon "$pid" "$daemon" || break; sleep 0.1; done
        if is_daemon "$pid" "$daemon"; then
            echo "stop-cluster.sh: $daemon ($pid) ignored SIGTERM; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null
        fi
    fi
    rm -f "$pidfile"
done
exit 0
