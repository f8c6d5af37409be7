/* The local executor: each attempt is a process group of its own, started
 * with vfork and exec, and reaped through a signalfd for SIGCHLD, so the
 * scheduler's poll wakes the moment a child ends. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "executor.h"

extern char **environ;

struct slot {
	pid_t pid;		/* 0: empty */
	void *token;
};

struct local {
	struct pl_executor x;
	int sfd;		/* signalfd for SIGCHLD */
	struct slot *tab;	/* open addressing on pid, linear probing */
	size_t cap, n;
};

static size_t hash_pid(pid_t pid, size_t cap)
{
	return ((uint32_t)pid * 2654435761u) & (cap - 1);
}

static void tab_put(struct local *l, pid_t pid, void *token);

static void tab_grow(struct local *l)
{
	struct slot *old = l->tab;
	size_t oldcap = l->cap;

	l->cap = l->cap ? l->cap * 2 : 64;
	l->tab = calloc(l->cap, sizeof *l->tab);
	if (!l->tab)
		abort();
	l->n = 0;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].pid)
			tab_put(l, old[i].pid, old[i].token);
	free(old);
}

static void tab_put(struct local *l, pid_t pid, void *token)
{
	if (2 * (l->n + 1) > l->cap)
		tab_grow(l);
	size_t i = hash_pid(pid, l->cap);
	while (l->tab[i].pid)
		i = (i + 1) & (l->cap - 1);
	l->tab[i].pid = pid;
	l->tab[i].token = token;
	l->n++;
}

static struct slot *tab_find(struct local *l, pid_t pid)
{
	if (!l->cap)
		return NULL;
	for (size_t i = hash_pid(pid, l->cap); l->tab[i].pid; i = (i + 1) & (l->cap - 1))
		if (l->tab[i].pid == pid)
			return &l->tab[i];
	return NULL;
}

/* Remove s, moving later entries of its probe run back (no tombstones). */
static void tab_del(struct local *l, struct slot *s)
{
	size_t i = s - l->tab, j = i;

	l->tab[i].pid = 0;
	l->n--;
	for (;;) {
		j = (j + 1) & (l->cap - 1);
		if (!l->tab[j].pid)
			return;
		size_t h = hash_pid(l->tab[j].pid, l->cap);
		/* j's entry may move to i if its home h is not in (i, j] */
		if ((i <= j) ? (i < h && h <= j) : (i < h || h <= j))
			continue;
		l->tab[i] = l->tab[j];
		l->tab[j].pid = 0;
		i = j;
	}
}

/* A command free of shell syntax runs without a shell: one exec and a shell
 * start-up less a task, most of a short task's cost (make does the same).
 * Words are then split at blanks into argv. */
static int plain_command(const char *cmd)
{
	static const char *const shell_words[] = { ".", ":", "break", "case", "cd", "continue",
		"eval", "exec", "exit", "export", "for", "if", "read", "readonly", "return", "set",
		"shift", "times", "trap", "ulimit", "umask", "unset", "wait", "while", "until",
		"alias", "command", "getopts", "hash", "local", "type", NULL };
	const char *p = cmd, *w;
	size_t n;

	while (*p == ' ' || *p == '\t')
		p++;
	if (!*p)
		return 0;
	for (const char *q = p; *q; q++)
		if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
		      strchr(" \t_./,:+@%-", *q)))
			return 0;
	for (w = p; *w && *w != ' ' && *w != '\t'; w++)
		;
	n = w - p;
	for (size_t i = 0; shell_words[i]; i++)
		if (strlen(shell_words[i]) == n && memcmp(shell_words[i], p, n) == 0)
			return 0;
	return 1;
}

/* vfork and exec: the child shares our memory until it execs, so it makes
 * system calls only. A function of its own, so that no caller's variable
 * lives across vfork. */
static __attribute__((noinline)) pid_t spawn(char **argv, char **envp, int shell, int in, int ofd,
					     int lfd)
{
	pid_t pid = vfork();

	if (pid != 0)
		return pid;
	sigset_t none;
	setpgid(0, 0);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);	/* dagrun killed: resume runs it again */
	if (dup2(in, 0) < 0 || dup2(ofd, 1) < 0 || dup2(lfd, 2) < 0)
		_exit(126);
	if (shell)
		execve("/bin/sh", argv, envp);
	else
		execvpe(argv[0], argv, envp);
	int e = errno;
	const char *m = strerror(e);
	(void)!write(2, "dagrun: cannot run '", 20);
	(void)!write(2, argv[0], strlen(argv[0]));
	(void)!write(2, "': ", 3);
	(void)!write(2, m, strlen(m));
	(void)!write(2, "\n", 1);
	_exit(e == ENOENT ? 127 : 126);
}

static int local_start(struct pl_executor *x, const struct pl_xspec *s, long *id, char *err,
		       size_t n)
{
	struct local *l = (struct local *)x;
	size_t nenv = 0, nextra = 0, nargs = 0;
	char **envp = NULL, **argv = NULL, *words = NULL;
	int ofd = -1, lfd = -1, in = s->in_fd, rc = -1, shell = 0;
	pid_t pid;

	/* everything the child needs is built before vfork: it may only exec */
	while (environ[nenv])
		nenv++;
	while (s->env && s->env[nextra])
		nextra++;
	envp = pl_xmalloc((nenv + nextra + 1) * sizeof *envp);
	size_t k = 0;
	for (size_t i = 0; i < nenv; i++) {
		const char *eq = strchr(environ[i], '=');
		size_t kl = eq ? (size_t)(eq - environ[i]) + 1 : strlen(environ[i]);
		int overridden = 0;
		for (size_t j = 0; j < nextra && !overridden; j++)
			overridden = strncmp(s->env[j], environ[i], kl) == 0;
		if (!overridden)
			envp[k++] = environ[i];
	}
	for (size_t j = 0; j < nextra; j++)
		envp[k++] = (char *)s->env[j];
	envp[k] = NULL;
	if (plain_command(s->cmd)) {
		words = pl_xstrdup(s->cmd);
		argv = pl_xmalloc((strlen(words) / 2 + 2) * sizeof *argv);
		for (char *t = strtok(words, " \t"); t; t = strtok(NULL, " \t"))
			argv[nargs++] = t;
		argv[nargs] = NULL;
	} else {
		shell = 1;
		argv = pl_xmalloc(4 * sizeof *argv);
		argv[0] = "sh";
		argv[1] = "-c";
		argv[2] = (char *)s->cmd;
		argv[3] = NULL;
	}
	if ((ofd = open(s->out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		snprintf(err, n, "cannot create '%s': %s", s->out_path, strerror(errno));
		goto out;
	}
	if ((lfd = open(s->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0) {
		snprintf(err, n, "cannot create '%s': %s", s->log_path, strerror(errno));
		goto out;
	}
	if (in < 0 && (in = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, n, "cannot open '/dev/null': %s", strerror(errno));
		goto out;
	}
	if ((pid = spawn(argv, envp, shell, in, ofd, lfd)) < 0) {
		snprintf(err, n, "cannot start '%s': %s", s->name, strerror(errno));
		goto out;
	}
	setpgid(pid, pid);	/* also here: whichever runs first */
	tab_put(l, pid, s->token);
	*id = pid;
	rc = 0;
out:
	if (in >= 0)
		close(in);
	if (ofd >= 0)
		close(ofd);
	if (lfd >= 0)
		close(lfd);
	free(envp);
	free(argv);
	free(words);
	return rc;
}

static void local_signal(struct pl_executor *x, long id, int sig)
{
	struct local *l = (struct local *)x;

	if (tab_find(l, (pid_t)id))	/* never a group that is not ours */
		kill(-(pid_t)id, sig);
}

static int local_fds(struct pl_executor *x, struct pollfd *p, int max, int *timeout_ms)
{
	struct local *l = (struct local *)x;

	if (max < 1)
		return 0;
	p[0].fd = l->sfd;
	p[0].events = POLLIN;
	p[0].revents = 0;
	return 1;
}

static int local_reap(struct pl_executor *x, struct pl_xdone *d, int max)
{
	struct local *l = (struct local *)x;
	struct signalfd_siginfo si[16];
	int k = 0, st;
	pid_t pid;

	/* drain the signalfd: several exits may have merged into one signal */
	while (read(l->sfd, si, sizeof si) > 0)
		;
	while (k < max && (pid = waitpid(-1, &st, WNOHANG)) > 0) {
		struct slot *s = tab_find(l, pid);
		if (!s)
			continue;	/* not ours: a grandchild adopted by a subreaper */
		d[k].token = s->token;
		d[k].signaled = WIFSIGNALED(st);
		d[k].code = WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
		d[k].reason[0] = '\0';
		tab_del(l, s);
		k++;
	}
	return k;
}

static void local_free(struct pl_executor *x)
{
	struct local *l = (struct local *)x;

	for (size_t i = 0; i < l->cap; i++)
		if (l->tab[i].pid)
			kill(-l->tab[i].pid, SIGKILL);
	if (l->sfd >= 0)
		close(l->sfd);
	free(l->tab);
	free(l);
}

struct pl_executor *pl_exec_local_new(char *err, size_t n)
{
	struct local *l = calloc(1, sizeof *l);
	sigset_t set;

	if (!l)
		abort();
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	if ((l->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		snprintf(err, n, "signalfd: %s", strerror(errno));
		free(l);
		return NULL;
	}
	l->x.name = "local";
	l->x.start = local_start;
	l->x.signal = local_signal;
	l->x.fds = local_fds;
	l->x.reap = local_reap;
	l->x.free = local_free;
	l->x.end_orphans = 1;
	return &l->x;
}
