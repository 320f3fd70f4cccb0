/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhu-probe: a vhost-user net back-end that only watches the handshake.
 *
 * Built on the public API alone (vhu/vhu.h), it serves one net-type device
 * with vhu_dev_poll() and prints one line per event on stdout, flushed at
 * once, for the interop scripts to assert on:
 *
 *   OFFERED features=0x.. protocol=0x..         (set-up; not events)
 *   LISTENING <path> | CONNECTING <path>
 *   CONNECTED | DISCONNECTED
 *   REQ <NAME> <rc>                           every front-end request
 *   FEATURES 0x..
 *   STATUS 0x..
 *   QUEUE <i> STARTED|STOPPED|ENABLED|DISABLED|BROKEN|KICKED
 *   READY | STOPPED
 *
 * On SIGTERM/SIGINT, at --timeout, or --ready-exit seconds after READY it
 * prints the final state and exits 0:
 *
 *   STATE connected=<0|1> features=0x.. protocol=0x.. regions=<n> status=0x..
 *   QSTATE <i> size=<n> started=<0|1> enabled=<0|1> packed=<0|1> kick=<0|1> call=<0|1>
 *   EXIT <reason>
 *
 * (one QSTATE per queue that has a size; the events of the device's
 * teardown come between the state and EXIT).  It exits non-zero only when its
 * own set-up fails or the library reports a local error from vhu_dev_poll().
 * Log lines of the library go to stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vhu/vhu.h>

/* Virtio net feature bits the probe claims (virtio spec 5.1.3). */
#define PROBE_NET_F_MTU 3
#define PROBE_NET_F_MRG_RXBUF 15
#define PROBE_NET_F_MQ 22
#define PROBE_BIT(n) (1ULL << (n))

#define PROBE_POLL_MS 100

struct probe {
	const char *socket;
	bool client;
	unsigned int queues;
	double timeout_s;    /* 0: none */
	double ready_exit_s; /* <0: none */
	int verbose;
	uint64_t features_off; /* transport_features_off */
	uint64_t protocol_off; /* protocol_features_off */

	bool ready;
	double ready_at;
};

static volatile sig_atomic_t probe_signal;

static void probe_on_signal(int sig)
{
	probe_signal = sig;
}

static double probe_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void probe_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void probe_out(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

/* --- callbacks ------------------------------------------------------------ */

static void probe_connected(struct vhu_dev *dev, void *opaque)
{
	probe_out("CONNECTED");
}

static void probe_disconnected(struct vhu_dev *dev, void *opaque)
{
	probe_out("DISCONNECTED");
}

static void probe_features_set(struct vhu_dev *dev, void *opaque,
			       uint64_t features)
{
	probe_out("FEATURES 0x%" PRIx64, features);
}

static void probe_device_ready(struct vhu_dev *dev, void *opaque)
{
	struct probe *p = opaque;

	p->ready = true;
	p->ready_at = probe_now();
	probe_out("READY");
}

static void probe_device_stopped(struct vhu_dev *dev, void *opaque)
{
	struct probe *p = opaque;

	p->ready = false;
	probe_out("STOPPED");
}

static const char *probe_queue_event_name(enum vhu_queue_event ev)
{
	switch (ev) {
	case VHU_QUEUE_STARTED:
		return "STARTED";
	case VHU_QUEUE_STOPPED:
		return "STOPPED";
	case VHU_QUEUE_ENABLED:
		return "ENABLED";
	case VHU_QUEUE_DISABLED:
		return "DISABLED";
	case VHU_QUEUE_BROKEN:
		return "BROKEN";
	case VHU_QUEUE_KICKED:
		return "KICKED";
	default: /* events added after this program was written */
		break;
	}
	return "UNKNOWN";
}

static void probe_queue_event(struct vhu_dev *dev, void *opaque, uint16_t queue,
			      enum vhu_queue_event ev)
{
	probe_out("QUEUE %u %s", (unsigned int)queue, probe_queue_event_name(ev));
}

static void probe_status_set(struct vhu_dev *dev, void *opaque, uint8_t status)
{
	probe_out("STATUS 0x%02x", (unsigned int)status);
}

static void probe_request_done(struct vhu_dev *dev, void *opaque,
			       uint32_t request, int result)
{
	probe_out("REQ %s %d", vhu_request_name(request), result);
}

static void probe_log(void *opaque, enum vhu_log_level level,
		      const char *dev_name, const char *msg)
{
	static const char *const names[] = { "ERR", "WARN", "INFO", "DEBUG" };
	const char *lvl = (unsigned int)level < 4 ? names[level] : "?";

	fprintf(stderr, "vhu-probe: [%s] %s: %s\n", lvl, dev_name, msg);
}

/* --- final state ---------------------------------------------------------- */

static void probe_print_state(const struct vhu_dev *dev)
{
	uint16_t n = vhu_dev_num_queues(dev);

	probe_out("STATE connected=%d features=0x%" PRIx64 " protocol=0x%" PRIx64
		  " regions=%" PRIu32 " status=0x%02x",
		  vhu_dev_is_connected(dev) ? 1 : 0, vhu_dev_features(dev),
		  vhu_dev_protocol_features(dev), vhu_dev_mem_regions(dev),
		  (unsigned int)vhu_dev_status(dev));
	for (uint16_t i = 0; i < n; i++) {
		struct vhu_queue_info qi;
		int rc = vhu_dev_queue_info(dev, i, &qi);

		if (rc < 0) {
			fprintf(stderr, "vhu-probe: queue_info(%u): %s\n",
				(unsigned int)i, strerror(-rc));
			continue;
		}
		if (qi.size == 0)
			continue;
		probe_out("QSTATE %u size=%" PRIu32 " started=%d enabled=%d packed=%d"
			  " kick=%d call=%d",
			  (unsigned int)i, qi.size, qi.started ? 1 : 0,
			  qi.enabled ? 1 : 0, qi.packed ? 1 : 0,
			  qi.kick_fd >= 0 ? 1 : 0, qi.call_fd >= 0 ? 1 : 0);
	}
}

/* --- command line --------------------------------------------------------- */

static void probe_usage(FILE *f)
{
	fprintf(f,
		"usage: vhu-probe --socket PATH [--client] [--queues N]\n"
		"                 [--timeout SECONDS] [--ready-exit SECONDS]\n"
		"                 [--features-off MASK] [--protocol-off MASK] [--verbose]\n"
		"  --socket PATH        Unix socket (listen on it; connect with --client)\n"
		"  --client             connect to a front-end serving PATH, reconnecting\n"
		"  --queues N           virtqueues, 2..1024, even (default 2)\n"
		"  --timeout S          print the state and exit after S seconds\n"
		"  --ready-exit S       ... S seconds after the device became ready\n"
		"  --features-off MASK  transport feature bits to withhold\n"
		"  --protocol-off MASK  protocol feature bits to withhold\n"
		"  --verbose, -v        library log at INFO (twice: DEBUG)\n");
}

static int probe_parse_seconds(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < 0 || v > 1e6)
		return -1;
	*out = v;
	return 0;
}

static int probe_parse_mask(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end)
		return -1;
	*out = v;
	return 0;
}

static int probe_parse_args(struct probe *p, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "client", no_argument, NULL, 'c' },
		{ "queues", required_argument, NULL, 'q' },
		{ "timeout", required_argument, NULL, 't' },
		{ "ready-exit", required_argument, NULL, 'r' },
		{ "features-off", required_argument, NULL, 'F' },
		{ "protocol-off", required_argument, NULL, 'P' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "s:cq:t:r:vh", longopts, NULL)) != -1) {
		char *end;
		unsigned long v;

		switch (c) {
		case 's':
			p->socket = optarg;
			break;
		case 'c':
			p->client = true;
			break;
		case 'q':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || v < 2 || v > 1024 ||
			    v % 2) {
				fprintf(stderr, "vhu-probe: bad --queues '%s'\n", optarg);
				return -1;
			}
			p->queues = (unsigned int)v;
			break;
		case 't':
			if (probe_parse_seconds(optarg, &p->timeout_s) < 0) {
				fprintf(stderr, "vhu-probe: bad --timeout '%s'\n", optarg);
				return -1;
			}
			break;
		case 'r':
			if (probe_parse_seconds(optarg, &p->ready_exit_s) < 0) {
				fprintf(stderr, "vhu-probe: bad --ready-exit '%s'\n", optarg);
				return -1;
			}
			break;
		case 'F':
		case 'P':
			if (probe_parse_mask(optarg, c == 'F' ? &p->features_off :
						  &p->protocol_off) < 0) {
				fprintf(stderr, "vhu-probe: bad mask '%s'\n", optarg);
				return -1;
			}
			break;
		case 'v':
			p->verbose++;
			break;
		case 'h':
			probe_usage(stdout);
			exit(0);
		default:
			probe_usage(stderr);
			return -1;
		}
	}
	if (optind != argc || !p->socket) {
		probe_usage(stderr);
		return -1;
	}
	return 0;
}

static int probe_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = probe_on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a signal ends the poll at once. */
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
		return -1;
	sa.sa_handler = SIG_IGN;
	/* A front-end that goes away must not kill us through a write. */
	if (sigaction(SIGPIPE, &sa, NULL) < 0)
		return -1;
	return 0;
}

/* --- main ------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	struct probe p = { .queues = 2, .ready_exit_s = -1 };
	struct vhu_dev_ops ops = {
		.sz = sizeof(ops),
		.connected = probe_connected,
		.disconnected = probe_disconnected,
		.features_set = probe_features_set,
		.device_ready = probe_device_ready,
		.device_stopped = probe_device_stopped,
		.queue_event = probe_queue_event,
		.status_set = probe_status_set,
		.request_done = probe_request_done,
	};
	struct vhu_dev_opts opts;
	struct vhu_dev *dev;
	const char *reason = NULL;
	double deadline;
	int status = 0;
	int rc;

	if (probe_parse_args(&p, argc, argv) < 0)
		return 2;
	if (probe_signals() < 0) {
		perror("vhu-probe: sigaction");
		return 1;
	}

	memset(&opts, 0, sizeof(opts));
	opts.sz = sizeof(opts);
	opts.name = "vhu-probe";
	opts.device_features = PROBE_BIT(PROBE_NET_F_MRG_RXBUF);
	if (p.queues > 2)
		opts.device_features |= PROBE_BIT(PROBE_NET_F_MQ);
	/* PROBE_NET_F_MTU stays off: the probe has no MTU to report. */
	opts.transport_features_off = p.features_off;
	opts.protocol_features_off = p.protocol_off;
	opts.num_queues = (uint16_t)p.queues;
	opts.queue_pairs = true;
	opts.min_ready_queues = 2;
	opts.ops = &ops;
	opts.opaque = &p;
	opts.log = probe_log;
	opts.log_level = p.verbose >= 2 ? VHU_LOG_DEBUG :
			 p.verbose == 1 ? VHU_LOG_INFO : VHU_LOG_WARN;

	dev = vhu_dev_new(&opts);
	if (!dev) {
		fprintf(stderr, "vhu-probe: vhu_dev_new: %s\n", strerror(errno));
		return 1;
	}
	probe_out("OFFERED features=0x%" PRIx64 " protocol=0x%" PRIx64,
		  vhu_dev_offered_features(dev),
		  vhu_dev_offered_protocol_features(dev));
	if (p.client) {
		/* Before the call: the connection may be made inside it. */
		probe_out("CONNECTING %s", p.socket);
		rc = vhu_dev_connect(dev, p.socket);
	} else {
		rc = vhu_dev_listen(dev, p.socket);
		if (rc == 0)
			probe_out("LISTENING %s", p.socket);
	}
	if (rc < 0) {
		fprintf(stderr, "vhu-probe: %s %s: %s\n",
			p.client ? "connect" : "listen", p.socket, strerror(-rc));
		vhu_dev_free(dev);
		return 1;
	}

	deadline = p.timeout_s > 0 ? probe_now() + p.timeout_s : 0;
	while (!reason) {
		double now;

		rc = vhu_dev_poll(dev, PROBE_POLL_MS);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN) {
			fprintf(stderr, "vhu-probe: vhu_dev_poll: %s\n", strerror(-rc));
			reason = "poll-error";
			status = 1;
			break;
		}
		now = probe_now();
		if (probe_signal)
			reason = probe_signal == SIGINT ? "SIGINT" : "SIGTERM";
		else if (deadline > 0 && now >= deadline)
			reason = "timeout";
		else if (p.ready && p.ready_exit_s >= 0 &&
			 now >= p.ready_at + p.ready_exit_s)
			reason = "ready-exit";
	}

	probe_print_state(dev);
	/* Freeing a connected device stops its queues and disconnects: those
	 * events are printed too, before the last line. */
	vhu_dev_free(dev);
	probe_out("EXIT %s", reason);
	return status;
}
