#!/usr/bin/env bash
# A real single-node SLURM cluster on localhost for the tests: munged (as the munge user),
# slurmctld and slurmd, with state, spool and logs under one temporary folder. No systemd needed.
#   scripts/slurm_local.sh start DIR   starts it; prints the SLURM_CONF to export
#   scripts/slurm_local.sh stop DIR    stops only the daemons it started (pid files in DIR)
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?a folder for the cluster state}

stop() {
  for name in slurmd slurmctld munged; do
    if [ -f "$dir/$name.pid" ]; then
      kill "$(cat "$dir/$name.pid")" 2>/dev/null || true
      rm -f "$dir/$name.pid"
    fi
  done
  if [ -f "$dir/munge_dir" ]; then
    rm -rf "$(cat "$dir/munge_dir")"
    rm -f "$dir/munge_dir"
  fi
}

if [ "$cmd" = stop ]; then stop; exit 0; fi
[ "$cmd" = start ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
for b in munged slurmctld slurmd sbatch; do
  command -v "$b" > /dev/null || { echo "slurm_local: $b not installed (scripts/setup.sh --tests installs it)" >&2; exit 1; }
done
mkdir -p "$dir"/{state,spool,log}
# munged runs as the munge user, which may not reach $dir (pytest's folders are 0700): its files
# live in a folder of their own.
munge=$(mktemp -d /tmp/zp-munge.XXXXXX)
echo "$munge" > "$dir/munge_dir"
chmod 711 "$munge"
host=$(hostname -s)
conf="$dir/slurm.conf"

# munge: a key of our own, the daemon as the munge user, its socket in its folder.
chown munge:munge "$munge"
dd if=/dev/urandom bs=1 count=1024 of="$munge/munge.key" status=none
chown munge:munge "$munge/munge.key"
chmod 400 "$munge/munge.key"
mkdir -p /run/munge && chown munge:munge /run/munge
runuser -u munge -- munged --key-file="$munge/munge.key" --socket="$munge/munge.socket" \
  --pid-file="$munge/munged.pid" --log-file="$munge/munged.log" --seed-file="$munge/seed" --force
cp "$munge/munged.pid" "$dir/munged.pid"

cpus=$(slurmd -C | sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' | head -1)
cores=$(slurmd -C | sed -n 's/.*CoresPerSocket=\([0-9]*\).*/\1/p' | head -1)
sockets=$(slurmd -C | sed -n 's/.*SocketsPerBoard=\([0-9]*\).*/\1/p' | head -1)
threads=$(slurmd -C | sed -n 's/.*ThreadsPerCore=\([0-9]*\).*/\1/p' | head -1)
mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -1)
cat > "$conf" <<CONF
ClusterName=zptest
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=$((6817 + RANDOM % 500))
SlurmdPort=$((7400 + RANDOM % 500))
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
JobAcctGatherType=jobacct_gather/none
MinJobAge=300
MaxArraySize=${ZP_SLURM_MAX_ARRAY_SIZE:-1001}
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus Sockets=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$conf"
slurmctld -f "$conf"
slurmd -f "$conf"
for _ in $(seq 1 100); do
  if sinfo -h -o "%T" 2>/dev/null | grep -qE "idle|mixed|alloc"; then
    echo "export SLURM_CONF=$conf"
    exit 0
  fi
  sleep 0.2
done
echo "slurm_local: the node did not come up; logs in $dir/log" >&2
tail -5 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
stop
exit 1
