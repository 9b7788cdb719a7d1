// C side of the binding; see shim.h.

#include <mpi.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shim.h"

// Communicator table. Slot 0 is MPI_COMM_WORLD, slot 1 MPI_COMM_SELF; a free
// slot holds MPI_COMM_NULL. Guarded by mu because goroutines on any thread
// create and free communicators (MPI_THREAD_MULTIPLE).
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static MPI_Comm *tab;
static int tab_len, tab_cap;

static MPI_Comm comm_get(int h) {
	MPI_Comm c = MPI_COMM_NULL;
	pthread_mutex_lock(&mu);
	if (h >= 0 && h < tab_len) c = tab[h];
	pthread_mutex_unlock(&mu);
	return c;
}

// comm_put stores c and returns its slot, or -1 when out of memory.
static int comm_put(MPI_Comm c) {
	int h = -1;
	pthread_mutex_lock(&mu);
	for (int i = 2; i < tab_len; i++) {
		if (tab[i] == MPI_COMM_NULL) { h = i; break; }
	}
	if (h < 0) {
		if (tab_len == tab_cap) {
			int ncap = tab_cap ? 2 * tab_cap : 16;
			MPI_Comm *n = realloc(tab, (size_t)ncap * sizeof *n);
			if (n == NULL) goto out;
			tab = n;
			tab_cap = ncap;
		}
		h = tab_len++;
	}
	tab[h] = c;
out:
	pthread_mutex_unlock(&mu);
	return h;
}

static void comm_clear(int h) {
	pthread_mutex_lock(&mu);
	if (h >= 2 && h < tab_len) tab[h] = MPI_COMM_NULL;
	pthread_mutex_unlock(&mu);
}

static MPI_Datatype dtype(int dt) {
	switch (dt) {
	case CK_INT64: return MPI_INT64_T;
	case CK_DOUBLE: return MPI_DOUBLE;
	default: return MPI_BYTE;
	}
}

static MPI_Op op(int o) {
	switch (o) {
	case CK_MAX: return MPI_MAX;
	case CK_MIN: return MPI_MIN;
	default: return MPI_SUM;
	}
}

static int rank_in(int r) {
	if (r == CK_ANY_SOURCE) return MPI_ANY_SOURCE;
	if (r == CK_PROC_NULL) return MPI_PROC_NULL;
	return r;
}

static int rank_out(int r) {
	if (r == MPI_ANY_SOURCE) return CK_ANY_SOURCE;
	if (r == MPI_PROC_NULL) return CK_PROC_NULL;
	return r;
}

static int tag_in(int t) { return t == CK_ANY_TAG ? MPI_ANY_TAG : t; }

static void status_out(MPI_Status *st, MPI_Datatype t, int *osrc, int *otag, int *ocount) {
	int n = 0;
	*osrc = rank_out(st->MPI_SOURCE);
	*otag = st->MPI_TAG == MPI_ANY_TAG ? CK_ANY_TAG : st->MPI_TAG;
	if (MPI_Get_count(st, t, &n) != MPI_SUCCESS || n == MPI_UNDEFINED) n = 0;
	*ocount = n;
}

// adopt registers a communicator made by MPI: errors return, slot stored.
static int adopt(MPI_Comm c, int *out) {
	*out = -1;
	if (c == MPI_COMM_NULL) return MPI_SUCCESS;
	int rc = MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN);
	if (rc != MPI_SUCCESS) {
		MPI_Comm_free(&c);
		return rc;
	}
	int h = comm_put(c);
	if (h < 0) {
		MPI_Comm_free(&c);
		return MPI_ERR_NO_MEM;
	}
	*out = h;
	return MPI_SUCCESS;
}

int ck_init(int *provided) {
	int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, provided);
	if (rc != MPI_SUCCESS) return rc;
	MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
	MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN);
	pthread_mutex_lock(&mu);
	if (tab_cap < 16) {
		MPI_Comm *n = realloc(tab, 16 * sizeof *n);
		if (n == NULL) {
			pthread_mutex_unlock(&mu);
			return MPI_ERR_NO_MEM;
		}
		tab = n;
		tab_cap = 16;
	}
	tab[CK_WORLD] = MPI_COMM_WORLD;
	tab[CK_SELF] = MPI_COMM_SELF;
	tab_len = 2;
	pthread_mutex_unlock(&mu);
	return MPI_SUCCESS;
}

int ck_finalize(void) { return MPI_Finalize(); }
int ck_initialized(int *flag) { return MPI_Initialized(flag); }
int ck_finalized(int *flag) { return MPI_Finalized(flag); }
int ck_thread_multiple(void) { return MPI_THREAD_MULTIPLE; }
int ck_success(void) { return MPI_SUCCESS; }
int ck_err_comm(void) { return MPI_ERR_COMM; }
int ck_err_truncate(void) { return MPI_ERR_TRUNCATE; }
int ck_err_count(void) { return MPI_ERR_COUNT; }
int ck_max_error_string(void) { return MPI_MAX_ERROR_STRING; }

void ck_error_string(int code, char *buf, int *len) {
	*len = 0;
	if (MPI_Error_string(code, buf, len) != MPI_SUCCESS) *len = 0;
}

int ck_error_class(int code) {
	int cls = 0;
	if (MPI_Error_class(code, &cls) != MPI_SUCCESS) return code;
	return cls;
}

int ck_comm_rank(int h, int *rank) {
	MPI_Comm c = comm_get(h);
	if (c == MPI_COMM_NULL) return MPI_ERR_COMM;
	return MPI_Comm_rank(c, rank);
}

int ck_comm_size(int h, int *size) {
	MPI_Comm c = comm_get(h);
	if (c == MPI_COMM_NULL) return MPI_ERR_COMM;
	return MPI_Comm_size(c, size);
}

int ck_comm_split(int h, int color, int key, int *out) {
	MPI_Comm c = comm_get(h), n = MPI_COMM_NULL;
	*out = -1;
	if (c == MPI_COMM_NULL) return MPI_ERR_COMM;
	int rc = MPI_Comm_split(c, color == CK_UNDEFINED ? MPI_UNDEFINED : color, key, &n);
	if (rc != MPI_SUCCESS) return rc;
	return adopt(n, out);
}

int ck_comm_split_shared(int h, int key, int *out) {
	MPI_Comm c = comm_get(h), n = MPI_COMM_NULL;
	*out = -1;
	if (c == MPI_COMM_NULL) return MPI_ERR_COMM;
	int rc = MPI_Comm_split_type(c, MPI_COMM_TYPE_SHARED, key, MPI_INFO_NULL, &n);
	if (rc != MPI_SUCCESS) return rc;
	return adopt(n, out);
}

int ck_comm_dup(int h, int *out) {
	MPI_Comm c = comm_get(h), n = MPI_COMM_NULL;
	*out = -1;
	if (c == MPI_COMM_NULL) return MPI_ERR_COMM;
	int rc = MPI_Comm_dup(c, &n);
	if (rc != MPI_SUCCESS) return rc;
	return adopt(n, out);
}

int ck_comm_free(int h) {
	if (h < 2) return MPI_ERR_COMM;
	MPI_Comm c = comm_get(h);
	if (c == MPI_COMM_NULL) return MPI_ERR_COMM;
	comm_clear(h);
	return MPI_Comm_free(&c);
}

int ck_abort(int h, int code) {
	MPI_Comm c = comm_get(h);
	if (c == MPI_COMM_NULL) c = MPI_COMM_WORLD;
	return MPI_Abort(c, code);
}

#define COMM_OR_FAIL(c, h)                         \
	MPI_Comm c = comm_get(h);                  \
	if (c == MPI_COMM_NULL) return MPI_ERR_COMM

int ck_barrier(int h) {
	COMM_OR_FAIL(c, h);
	return MPI_Barrier(c);
}

int ck_bcast(int h, void *buf, int count, int dt, int root) {
	COMM_OR_FAIL(c, h);
	return MPI_Bcast(buf, count, dtype(dt), root, c);
}

int ck_allreduce(int h, const void *send, void *recv, int count, int dt, int o) {
	COMM_OR_FAIL(c, h);
	return MPI_Allreduce(send == NULL ? MPI_IN_PLACE : send, recv, count, dtype(dt), op(o), c);
}

// wait_idle completes req without spinning for long: it tests in a tight
// loop for about 20 microseconds (a peer that is already there answers at
// once), then sleeps between tests, doubling the pause up to max_us. A rank
// that waits long for a slow peer then leaves the core to the processes
// doing the work instead of polling shared memory.
static int wait_idle(MPI_Request *req, int max_us) {
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	long pause_ns = 10000;
	for (;;) {
		int done = 0;
		int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
		if (rc != MPI_SUCCESS || done) return rc;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long spun = (now.tv_sec - t0.tv_sec) * 1000000000L + (now.tv_nsec - t0.tv_nsec);
		if (spun < 20000) continue;
		struct timespec d = {0, pause_ns};
		nanosleep(&d, NULL);
		pause_ns *= 2;
		if (pause_ns > (long)max_us * 1000) pause_ns = (long)max_us * 1000;
	}
}

int ck_barrier_idle(int h, int max_us) {
	COMM_OR_FAIL(c, h);
	MPI_Request req;
	int rc = MPI_Ibarrier(c, &req);
	return rc != MPI_SUCCESS ? rc : wait_idle(&req, max_us);
}

int ck_bcast_idle(int h, void *buf, int count, int dt, int root, int max_us) {
	COMM_OR_FAIL(c, h);
	MPI_Request req;
	int rc = MPI_Ibcast(buf, count, dtype(dt), root, c, &req);
	return rc != MPI_SUCCESS ? rc : wait_idle(&req, max_us);
}

int ck_allreduce_idle(int h, const void *send, void *recv, int count, int dt, int o, int max_us) {
	COMM_OR_FAIL(c, h);
	MPI_Request req;
	int rc = MPI_Iallreduce(send == NULL ? MPI_IN_PLACE : send, recv, count, dtype(dt), op(o), c, &req);
	return rc != MPI_SUCCESS ? rc : wait_idle(&req, max_us);
}

int ck_allgather(int h, const void *send, int count, void *recv, int dt) {
	COMM_OR_FAIL(c, h);
	return MPI_Allgather(send, count, dtype(dt), recv, count, dtype(dt), c);
}

int ck_gather(int h, const void *send, int count, void *recv, int dt, int root) {
	COMM_OR_FAIL(c, h);
	return MPI_Gather(send, count, dtype(dt), recv, count, dtype(dt), root, c);
}

int ck_gatherv(int h, const void *send, int scount, void *recv, const int *counts,
               const int *displs, int dt, int root) {
	COMM_OR_FAIL(c, h);
	return MPI_Gatherv(send, scount, dtype(dt), recv, counts, displs, dtype(dt), root, c);
}

int ck_scatterv(int h, const void *send, const int *counts, const int *displs, void *recv,
                int rcount, int dt, int root) {
	COMM_OR_FAIL(c, h);
	return MPI_Scatterv(send, counts, displs, dtype(dt), recv, rcount, dtype(dt), root, c);
}

int ck_send(int h, const void *buf, int count, int dt, int dest, int tag) {
	COMM_OR_FAIL(c, h);
	return MPI_Send(buf, count, dtype(dt), rank_in(dest), tag, c);
}

int ck_recv(int h, void *buf, int count, int dt, int src, int tag, int *osrc, int *otag,
            int *ocount) {
	MPI_Status st;
	COMM_OR_FAIL(c, h);
	memset(&st, 0, sizeof st);
	int rc = MPI_Recv(buf, count, dtype(dt), rank_in(src), tag_in(tag), c, &st);
	status_out(&st, dtype(dt), osrc, otag, ocount);
	return rc;
}

// ck_sendrecv is MPI_Sendrecv built from MPI_Isend, MPI_Recv and MPI_Wait:
// OpenMPI 4.1's MPI_Sendrecv (irecv, send, wait) does not report a
// truncated receive when a rank exchanges with itself, MPI_Recv does.
int ck_sendrecv(int h, const void *sbuf, int scount, int dest, int stag, void *rbuf, int rcount,
                int src, int rtag, int dt, int *osrc, int *otag, int *ocount) {
	MPI_Status st;
	MPI_Request req;
	COMM_OR_FAIL(c, h);
	memset(&st, 0, sizeof st);
	int rc = MPI_Isend(sbuf, scount, dtype(dt), rank_in(dest), stag, c, &req);
	if (rc != MPI_SUCCESS) return rc;
	int rrc = MPI_Recv(rbuf, rcount, dtype(dt), rank_in(src), tag_in(rtag), c, &st);
	status_out(&st, dtype(dt), osrc, otag, ocount);
	rc = MPI_Wait(&req, MPI_STATUS_IGNORE);
	return rrc != MPI_SUCCESS ? rrc : rc;
}
