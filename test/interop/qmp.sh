# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=bash
#
# QMP and live-migration helpers shared by qemu-migrate.sh and qemu-blk.sh
# (sourced after common.sh, not run).  QEMU N has its QMP socket at
# $dir/qmp-N.sock (-qmp unix:$dir/qmp-N.sock,server=on,wait=off) and, as a
# migration destination, listens on $dir/mig-N.sock (-incoming
# unix:$dir/mig-N.sock).  The caller provides:
#   dir        the case's directory (sockets, qmp-log, socat.err)
#   work       the run's directory (the FIFOs of a QMP session)
#   qpid       an associative array: QEMU N's pid in qpid[N]
#   downtime_ms  migrate's downtime-limit
# and case_error (common.sh).  Needs socat.
# shellcheck disable=SC2154 # dir, work, qpid and downtime_ms are the caller's

# --- QMP -------------------------------------------------------------------------

# qmp N CMD...: one QMP session with QEMU N: qmp_capabilities, then each CMD
# (a JSON object on one line); prints each CMD's reply line (events are
# skipped).  Returns 1 when the session breaks or a reply takes over 60 s.
qmp() {
	local sock=$dir/qmp-$1.sock fifo=$work/qmp.$BASHPID cmd line rc=0 r w pid
	shift
	rm -f "$fifo.in" "$fifo.out"
	mkfifo "$fifo.in" "$fifo.out" || return 1
	timeout 90 socat - "UNIX-CONNECT:$sock" <"$fifo.in" >"$fifo.out" 2>>"$dir/socat.err" &
	pid=$!
	exec {w}<>"$fifo.in" {r}<>"$fifo.out"
	if ! read -r -t 10 -u "$r" line || [[ $line != *'"QMP"'* ]]; then
		echo "qmp $sock: no greeting" >>"$dir/socat.err"
		rc=1
	fi
	for cmd in '{"execute": "qmp_capabilities"}' "$@"; do
		((rc == 0)) || break
		echo "$cmd" >>"$dir/qmp-log"
		printf '%s\n' "$cmd" >&"$w"
		while :; do
			if ! read -r -t 60 -u "$r" line; then
				rc=1
				break
			fi
			case $line in
			'{"return"'* | '{"error"'*) break ;;
			esac
		done
		((rc == 0)) || break
		echo "  -> $line" >>"$dir/qmp-log"
		[[ $cmd == *'"qmp_capabilities"'* ]] || printf '%s\n' "$line"
	done
	exec {w}>&- {r}<&-
	stop_pid "$pid" TERM 2 || true
	rm -f "$fifo.in" "$fifo.out"
	return "$rc"
}

# jnum JSON KEY / jstr JSON KEY: the first "KEY": number / "KEY": "string".
jnum() {
	grep -oE "\"$2\": [0-9]+" <<<"$1" | head -n 1 | cut -d' ' -f2
}
jstr() {
	grep -oE "\"$2\": \"[^\"]*\"" <<<"$1" | head -n 1 | cut -d'"' -f4
}

# run_state N: QEMU N's run state (query-status), or empty.
run_state() {
	jstr "$(qmp "$1" '{"execute": "query-status"}')" status
}

# qmp_ok N CMD: CMD must return without error.
qmp_ok() {
	local reply
	reply=$(qmp "$1" "$2") || {
		case_error "QEMU $1: no QMP reply to $2"
		return 1
	}
	[[ $reply == '{"return"'* ]] || {
		case_error "QEMU $1: $2 -> $reply"
		return 1
	}
}

# wait_exit PID SECONDS: wait for PID to exit by itself, then SIGTERM and
# SIGKILL; returns its status (stop_pid).
wait_exit() {
	local pid=$1 end=$((SECONDS + $2))
	while alive "$pid" && ((SECONDS < end)); do
		sleep 0.2
	done
	stop_pid "$pid" TERM 5
}

# quit_qemu N: ask QEMU N to quit (QMP), wait for it; returns its exit
# status.
quit_qemu() {
	local n=$1
	alive "${qpid[$n]}" && qmp "$n" '{"execute": "quit"}' >/dev/null
	wait_exit "${qpid[$n]}" 10
}

# --- migration -------------------------------------------------------------------

# migrate FROM TO MIBPS: start migrating guest FROM to QEMU TO (listening on
# DIR/mig-TO.sock) at MIBPS MiB/s.
migrate() {
	local from=$1 to=$2 mibps=$3
	wait_for_socket "$dir/mig-$to.sock" 20 "${qpid[$to]}" || {
		case_error "QEMU $to is not listening for the migration"
		return 1
	}
	echo "  migrate $from -> $to at $mibps MiB/s (downtime-limit $downtime_ms ms)"
	qmp_ok "$from" "{\"execute\": \"migrate-set-parameters\", \"arguments\": {\"max-bandwidth\": $((mibps << 20)), \"downtime-limit\": $downtime_ms}}" &&
		qmp_ok "$from" "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"unix:$dir/mig-$to.sock\"}}"
}

# migrate_wait FROM SECONDS [UNTIL_MIB]: poll query-migrate on FROM until the
# migration is over (completed, failed, cancelled) or, with UNTIL_MIB, until
# that much RAM was sent.  The last reply is in $mig_reply, its status in
# $mig_status.
migrate_wait() {
	local from=$1 end=$((SECONDS + $2)) until=${3:-} sent
	mig_status=
	while ((SECONDS < end)); do
		mig_reply=$(qmp "$from" '{"execute": "query-migrate"}') || break
		mig_status=$(jstr "$mig_reply" status)
		case $mig_status in
		completed | failed | cancelled) return 0 ;;
		esac
		if [[ -n $until ]]; then
			sent=$(jnum "$mig_reply" transferred)
			((${sent:-0} >= until << 20)) && return 0
		fi
		sleep 0.5
	done
	return 1
}

# migrate_completed FROM TO LABEL TIMEOUT: wait for the migration FROM ->
# TO; a case error (naming it LABEL) unless it completed in TIMEOUT s.
migrate_completed() {
	local from=$1 to=$2 label=$3
	if ! migrate_wait "$from" "$4"; then
		case_error "$label did not end in $4 s (status '${mig_status:-?}')"
		return 1
	fi
	if [[ $mig_status != completed ]]; then
		case_error "$label: $mig_status: $mig_reply"
		return 1
	fi
}

# mig_figures: one line of figures from $mig_reply (downtime once completed).
mig_figures() {
	local r=$mig_reply sent down
	sent=$(jnum "$r" transferred)
	down=$(jnum "$r" downtime)
	printf 'total %s ms (setup %s ms)%s, dirty-sync-count %s, RAM sent %s MiB (%s pages, %s zero pages)' \
		"$(jnum "$r" total-time)" "$(jnum "$r" setup-time)" "${down:+, downtime $down ms}" \
		"$(jnum "$r" dirty-sync-count)" "$((${sent:-0} >> 20))" \
		"$(jnum "$r" normal)" "$(jnum "$r" duplicate)"
}
