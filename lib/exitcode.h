/* The exit statuses every plumb program uses; docs/plumb.7 lists the same table. */
#ifndef PL_EXITCODE_H
#define PL_EXITCODE_H

enum {
	PL_EX_OK = 0,		/* success */
	PL_EX_CHECK = 1,	/* the check the program performs failed (gate, regression, canary) */
	PL_EX_USAGE = 2,	/* usage or configuration error */
	PL_EX_DATAERR = 65,	/* malformed input data */
	PL_EX_UNAVAILABLE = 69,	/* a service was unavailable and retries were exhausted */
	PL_EX_SOFTWARE = 70,	/* internal error, or output could not be written */
	PL_EX_TEMPFAIL = 75,	/* temporary failure: running again later may succeed */
	PL_EX_SIGNAL = 128	/* 128+n: killed by signal n */
};

#endif
