/* The step shim (step.h): one poll() loop over the command's stdout and
 * stderr pipes, its stdin pipe, the store's notifications for the input
 * being followed, and a signalfd for SIGCHLD and the signals passed on. */
#include "step.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "exitcode.h"
#include "store.h"

extern char **environ;

#define IOBUF (256 * 1024)
#define DRAIN_S 5.0	/* after the shell exits: most seconds to wait for its pipes' end */

struct step {
	const struct pl_step *o;
	struct pl_art *s;
	struct pl_art_writer *out, *log;
	char name[1100], outkey[1200], logkey[1200];
	pid_t pid;
	int exited, wstatus, outfd, errfd, infd, sfd;
	/* standard input: inputs[cur] from off of generation gen */
	size_t cur;
	int followed, have_gen, waiting;
	uint64_t gen;
	int64_t off;
	char *ibuf;
	size_t bpos, blen;
	/* output counts */
	long long bytes, lines;
	char last;
	/* the shim's own failure: the status to exit with, and why */
	int fatal;
	int lost;		/* the store failed, or a newer attempt replaced ours */
	char *err;
	size_t errn;
	double killat, drain_until;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The shim fails with code: the command is stopped (SIGTERM, then SIGKILL
 * after the grace) and the step exits with code. The first reason wins. */
static void stop(struct step *st, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void stop(struct step *st, int code, const char *fmt, ...)
{
	va_list ap;

	if (st->fatal)
		return;
	st->fatal = code;
	va_start(ap, fmt);
	vsnprintf(st->err, st->errn, fmt, ap);
	va_end(ap);
	if (!st->exited) {
		kill(-st->pid, SIGTERM);
		st->killat = now() + (st->o->kill_grace > 0 ? st->o->kill_grace : 10);
	}
}

static int store_code(int rc)
{
	return rc == PL_ART_REPLACED ? PL_EX_TEMPFAIL : PL_EX_UNAVAILABLE;
}

/* Writing the output or the log failed: nothing more goes to the store. */
static void lost(struct step *st, int rc, const char *what, const char *key)
{
	stop(st, store_code(rc), "%s '%s': %s", what, key, pl_art_errstr(st->s));
	st->lost = 1;
}

static void close_in(struct step *st)
{
	if (st->infd >= 0)
		close(st->infd);
	st->infd = -1;
	st->waiting = 0;
	if (st->followed && st->cur < st->o->ninputs)
		pl_art_unfollow(st->s, st->o->inputs[st->cur].key);
	st->followed = 0;
}

/* The generation of the input being read changed. */
static int replaced(struct step *st, const struct pl_step_input *in)
{
	if (st->off > in->off) {
		stop(st, PL_EX_TEMPFAIL, "input '%s' was replaced after %lld bytes of it were read "
		     "(its writer was retried)", in->key, (long long)(st->off - in->off));
		close_in(st);
		return -1;
	}
	st->have_gen = 0;	/* nothing read yet: follow the new one */
	return 0;
}

/* Done with the current input: on to the next. */
static void next_input(struct step *st)
{
	pl_art_unfollow(st->s, st->o->inputs[st->cur].key);
	st->followed = 0;
	st->have_gen = 0;
	st->cur++;
}

/* Move standard input along: write what is buffered, read more from the
 * store. Sets st->waiting when only a change in the store can help. */
static void pump(struct step *st)
{
	const struct pl_step *o = st->o;
	struct pl_art_info in;
	const struct pl_step_input *src;

	st->waiting = 0;
	while (st->infd >= 0) {
		if (st->bpos < st->blen) {
			ssize_t k = write(st->infd, st->ibuf + st->bpos, st->blen - st->bpos);
			if (k > 0) {
				st->bpos += (size_t)k;
				continue;
			}
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0 && errno == EAGAIN)
				return;	/* poll for POLLOUT */
			close_in(st);	/* EPIPE: the command reads no more */
			return;
		}
		if (st->cur == o->ninputs) {
			close_in(st);	/* end of input */
			return;
		}
		src = &o->inputs[st->cur];
		const char *key = src->key;
		int64_t end = src->len >= 0 ? src->off + src->len : INT64_MAX;
		int rc;
		if (!st->followed) {
			if ((rc = pl_art_follow(st->s, key)) < 0) {
				stop(st, store_code(rc), "%s", pl_art_errstr(st->s));
				close_in(st);
				return;
			}
			st->followed = 1;
		}
		if (!st->have_gen) {
			rc = pl_art_stat(st->s, key, &in);
			if (rc == PL_ART_MISSING) {
				st->waiting = 1;	/* its writer has not started yet */
				return;
			}
			if (rc < 0) {
				stop(st, store_code(rc), "input '%s': %s", key, pl_art_errstr(st->s));
				close_in(st);
				return;
			}
			st->gen = in.gen;
			st->have_gen = 1;
			st->off = src->off;
		}
		if (st->off >= end) {
			next_input(st);	/* the whole range went */
			continue;
		}
		ssize_t k = pl_art_read(st->s, key, st->gen, st->off, st->ibuf,
					end - st->off < IOBUF ? (size_t)(end - st->off) : IOBUF);
		if (k > 0) {
			st->bpos = 0;
			st->blen = (size_t)k;
			st->off += k;
			continue;
		}
		if (k == PL_ART_REPLACED) {
			if (replaced(st, src) < 0)
				return;
			continue;
		}
		if (k < 0) {
			stop(st, store_code((int)k), "input '%s': %s", key, pl_art_errstr(st->s));
			close_in(st);
			return;
		}
		/* nothing more yet: finished, or still being written? */
		rc = pl_art_stat(st->s, key, &in);
		if (rc < 0) {
			stop(st, store_code(rc), "input '%s': %s", key, pl_art_errstr(st->s));
			close_in(st);
			return;
		}
		if (in.gen != st->gen) {
			if (replaced(st, src) < 0)
				return;
			continue;
		}
		if (in.size > st->off)
			continue;	/* it grew in between */
		if (!in.done) {
			st->waiting = 1;
			return;
		}
		if (in.status != 0) {
			/* the command must not succeed on part of an input */
			stop(st, PL_EX_TEMPFAIL, "input '%s' failed (its writer ended with status %d)",
			     key, in.status);
			close_in(st);
			return;
		}
		if (end != INT64_MAX && st->off < end) {
			stop(st, PL_EX_TEMPFAIL, "input '%s' ended at byte %lld, before its range did "
			     "(at %lld)", key, (long long)in.size, (long long)end);
			close_in(st);
			return;
		}
		next_input(st);
	}
}

static void count(struct step *st, const char *p, size_t n)
{
	for (const char *q = p; (q = memchr(q, '\n', n - (size_t)(q - p))); q++)
		st->lines++;
	st->bytes += (long long)n;
	if (n)
		st->last = p[n - 1];
}

/* Read what one of the command's pipes has. Returns 0, or -1 at its end. */
static int drain_pipe(struct step *st, int fd, int is_out, char *buf)
{
	for (int i = 0; i < 8; i++) {	/* a bounded amount, then the others get a turn */
		ssize_t k = read(fd, buf, IOBUF);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN)
			return 0;
		if (k <= 0)
			return -1;
		if (is_out) {
			count(st, buf, (size_t)k);
			int rc = st->lost ? 0 : pl_art_append(st->out, buf, (size_t)k);
			if (rc < 0)
				lost(st, rc, "output", st->outkey);
		} else {
			if (st->o->log_fd >= 0) {
				/* best effort: a closed stderr must not stop the step */
				const char *p = buf;
				size_t left = (size_t)k;
				while (left) {
					ssize_t w = write(st->o->log_fd, p, left);
					if (w < 0 && errno == EINTR)
						continue;
					if (w <= 0)
						break;
					p += w;
					left -= (size_t)w;
				}
			}
			int rc = st->lost ? 0 : pl_art_append(st->log, buf, (size_t)k);
			if (rc < 0)
				lost(st, rc, "log", st->logkey);
		}
	}
	return 0;
}

/* Reap the command (and, as PID 1, every orphan); note its status. */
static void reap(struct step *st)
{
	int ws;
	pid_t p, which = getpid() == 1 ? -1 : st->pid;

	while ((p = waitpid(which, &ws, WNOHANG)) > 0)
		if (p == st->pid && !st->exited) {
			st->exited = 1;
			st->wstatus = ws;
			/* what it left behind in its group ends with it */
			kill(-st->pid, SIGKILL);
			if (st->infd >= 0)
				close_in(st);
			st->drain_until = now() + DRAIN_S;
		}
}

static int spawn(struct step *st, int in, int out, int err)
{
	posix_spawnattr_t at;
	posix_spawn_file_actions_t fa;
	sigset_t none, dfl;
	char *argv[] = { "sh", "-c", (char *)st->o->cmd, NULL };
	int rc;

	posix_spawnattr_init(&at);
	posix_spawn_file_actions_init(&fa);
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGHUP);
	sigaddset(&dfl, SIGCHLD);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
				 POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dfl);
	if (in >= 0)
		posix_spawn_file_actions_adddup2(&fa, in, 0);
	else
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out, 1);
	posix_spawn_file_actions_adddup2(&fa, err, 2);
	rc = posix_spawn(&st->pid, "/bin/sh", &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	return rc;
}

static void set_value(struct step *st, const char *field, long long v)
{
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%lld", v);
	int rc = pl_art_set(st->s, st->name, field, buf, (size_t)n);
	if (rc < 0)
		lost(st, rc, "values of", st->name);
}

/* Record how the attempt ended. Returns the status to exit with. */
static int record(struct step *st)
{
	int code = WIFSIGNALED(st->wstatus) ? 128 + WTERMSIG(st->wstatus) :
		WEXITSTATUS(st->wstatus);
	int rc;

	if (st->lost)
		return st->fatal;	/* the store is lost, or this attempt no longer counts */
	if (st->fatal)
		code = st->fatal;
	/* done first: a writer replaced meanwhile must not record values */
	rc = pl_art_finish(st->out, code);
	st->out = NULL;
	if (rc < 0) {
		lost(st, rc, "output", st->outkey);
		return st->fatal;
	}
	set_value(st, "exit", code);
	set_value(st, "attempt", st->o->attempt);
	set_value(st, "bytes", st->bytes);
	set_value(st, "lines", st->lines + (st->bytes > 0 && st->last != '\n'));
	if (WIFSIGNALED(st->wstatus))
		set_value(st, "signal", WTERMSIG(st->wstatus));
	if (st->fatal && !st->lost &&
	    (rc = pl_art_set(st->s, st->name, "reason", st->err, strlen(st->err))) < 0) {
		/* the first reason stays in err, the step fails as the store did */
		st->fatal = store_code(rc);
		st->lost = 1;
	}
	if (st->lost)
		return st->fatal;
	rc = pl_art_finish(st->log, code);
	st->log = NULL;
	if (rc < 0)
		lost(st, rc, "log", st->logkey);
	return st->fatal ? st->fatal : code;
}

static void loop(struct step *st)
{
	char *buf = pl_xmalloc(IOBUF);
	struct pollfd pf[5];

	for (;;) {
		if (st->infd >= 0 && !st->fatal)
			pump(st);
		if (st->exited && st->outfd < 0 && st->errfd < 0)
			break;
		int n = 0, ix_out = -1, ix_err = -1, ix_in = -1, ix_store = -1, timeout = -1;
		double t = now();
		pf[n].fd = st->sfd;
		pf[n++].events = POLLIN;
		if (st->outfd >= 0) {
			pf[ix_out = n].fd = st->outfd;
			pf[n++].events = POLLIN;
		}
		if (st->errfd >= 0) {
			pf[ix_err = n].fd = st->errfd;
			pf[n++].events = POLLIN;
		}
		if (st->infd >= 0 && st->bpos < st->blen) {
			pf[ix_in = n].fd = st->infd;
			pf[n++].events = POLLOUT;
		}
		if (st->infd >= 0 && st->followed) {
			/* notifications are read as they come, even while the
			 * command is slow to take its input: unread, they would pile
			 * up in the server until it dropped the subscription */
			int hint = -1;
			int fd = pl_art_fd(st->s, &hint);
			if (st->waiting)
				timeout = hint;
			if (fd >= 0) {
				pf[ix_store = n].fd = fd;
				pf[n++].events = POLLIN;
			}
		}
		double until = st->exited ? st->drain_until : st->killat ? st->killat : 0;
		if (until) {
			int ms = until > t ? (int)ceil((until - t) * 1000) : 0;
			if (timeout < 0 || ms < timeout)
				timeout = ms;
		}
		for (int i = 0; i < n; i++)
			pf[i].revents = 0;
		if (poll(pf, (nfds_t)n, timeout) < 0 && errno != EINTR)
			break;
		if (pf[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(st->sfd, &si, sizeof si) == sizeof si)
				if (si.ssi_signo != SIGCHLD && !st->exited)
					kill(-st->pid, (int)si.ssi_signo);
		}
		reap(st);
		if (ix_out >= 0 && pf[ix_out].revents && drain_pipe(st, st->outfd, 1, buf) < 0) {
			close(st->outfd);
			st->outfd = -1;
		}
		if (ix_err >= 0 && pf[ix_err].revents && drain_pipe(st, st->errfd, 0, buf) < 0) {
			close(st->errfd);
			st->errfd = -1;
		}
		if (ix_in >= 0 && (pf[ix_in].revents & (POLLERR | POLLHUP)) && st->infd >= 0)
			close_in(st);	/* the command closed its stdin */
		if ((ix_store >= 0 && pf[ix_store].revents) || (st->infd >= 0 && st->waiting))
			pl_art_drain(st->s);
		t = now();
		if (st->exited && t >= st->drain_until) {
			/* something that left the group holds the pipes: stop waiting */
			if (st->outfd >= 0)
				close(st->outfd);
			if (st->errfd >= 0)
				close(st->errfd);
			st->outfd = st->errfd = -1;
		}
		if (!st->exited && st->killat && t >= st->killat) {
			kill(-st->pid, SIGKILL);
			st->killat = 0;
		}
	}
	free(buf);
}

int pl_step_run(const struct pl_step *o, char *err, size_t errn)
{
	struct step st = { .o = o, .outfd = -1, .errfd = -1, .infd = -1, .sfd = -1,
			   .err = err, .errn = errn };
	struct pl_art_opts so = { .spec = o->store, .run = o->run, .timeout_ms = o->timeout_ms };
	sigset_t block, old;
	struct sigaction ign = { .sa_handler = SIG_IGN }, oldpipe;
	int op[2] = { -1, -1 }, ep[2] = { -1, -1 }, ip[2] = { -1, -1 }, status, code;

	err[0] = '\0';
	if (o->child >= 0)
		snprintf(st.name, sizeof st.name, "%s/%ld", o->task, o->child);
	else
		snprintf(st.name, sizeof st.name, "%s", o->task);
	snprintf(st.outkey, sizeof st.outkey, "%s.out", st.name);
	snprintf(st.logkey, sizeof st.logkey, "%s.log", st.name);
	if (!(st.s = pl_art_open(&so, err, errn, &status)))
		return status;
	if (!(st.out = pl_art_writer(st.s, st.outkey, o->attempt)) ||
	    !(st.log = pl_art_writer(st.s, st.logkey, o->attempt))) {
		snprintf(err, errn, "%s", pl_art_errstr(st.s));
		code = strstr(err, "bad key") ? PL_EX_USAGE : PL_EX_UNAVAILABLE;
		goto out;
	}
	if (pipe2(op, O_CLOEXEC) < 0 || pipe2(ep, O_CLOEXEC) < 0 ||
	    (o->ninputs && pipe2(ip, O_CLOEXEC) < 0)) {
		snprintf(err, errn, "pipe: %s", strerror(errno));
		code = PL_EX_SOFTWARE;
		goto out;
	}
	/* bigger pipes: fewer, larger appends (best effort) */
	fcntl(op[1], F_SETPIPE_SZ, IOBUF);
	fcntl(op[0], F_SETFL, O_NONBLOCK);
	fcntl(ep[0], F_SETFL, O_NONBLOCK);
	if (ip[1] >= 0)
		fcntl(ip[1], F_SETFL, O_NONBLOCK);

	sigemptyset(&block);
	sigaddset(&block, SIGCHLD);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, &old);
	sigaction(SIGPIPE, &ign, &oldpipe);
	if ((st.sfd = signalfd(-1, &block, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		snprintf(err, errn, "signalfd: %s", strerror(errno));
		code = PL_EX_SOFTWARE;
		goto restore;
	}
	int e = spawn(&st, ip[0], op[1], ep[1]);
	if (e) {
		snprintf(err, errn, "cannot run /bin/sh: %s", strerror(e));
		code = PL_EX_SOFTWARE;
		goto restore;
	}
	close(op[1]);
	close(ep[1]);
	op[1] = ep[1] = -1;
	if (ip[0] >= 0)
		close(ip[0]);
	ip[0] = -1;
	st.outfd = op[0];
	st.errfd = ep[0];
	st.infd = ip[1];
	op[0] = ep[0] = ip[1] = -1;
	if (o->ninputs)
		st.ibuf = pl_xmalloc(IOBUF);
	loop(&st);
	code = record(&st);
restore:
	if (st.sfd >= 0)
		close(st.sfd);
	sigaction(SIGPIPE, &oldpipe, NULL);
	sigprocmask(SIG_SETMASK, &old, NULL);
out:
	for (int i = 0; i < 2; i++) {
		if (op[i] >= 0)
			close(op[i]);
		if (ep[i] >= 0)
			close(ep[i]);
		if (ip[i] >= 0)
			close(ip[i]);
	}
	if (st.outfd >= 0)
		close(st.outfd);
	if (st.errfd >= 0)
		close(st.errfd);
	if (st.infd >= 0)
		close(st.infd);
	/* readers must not wait for an attempt that will write no more */
	if (st.out && !st.lost)
		pl_art_finish(st.out, code);
	else
		pl_art_abandon(st.out);
	if (st.log && !st.lost)
		pl_art_finish(st.log, code);
	else
		pl_art_abandon(st.log);
	free(st.ibuf);
	pl_art_close(st.s);
	return code;
}
