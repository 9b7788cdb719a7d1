// C side of the binding. Communicators live in a table owned by shim.c and
// are named by their slot number, so Go never holds an MPI handle (OpenMPI's
// handles are pointers, MPICH's are ints). Every function returns an MPI
// error code (MPI_SUCCESS = 0) unless noted.

#ifndef CKPTIO_MPI_SHIM_H
#define CKPTIO_MPI_SHIM_H

#include <stdint.h>

// Datatype codes.
enum { CK_BYTE = 0, CK_INT64 = 1, CK_DOUBLE = 2 };

// Reduction codes.
enum { CK_SUM = 0, CK_MAX = 1, CK_MIN = 2 };

// Rank and tag wildcards as seen from Go; mapped to the library's values.
enum { CK_ANY_SOURCE = -1, CK_PROC_NULL = -2, CK_ANY_TAG = -1, CK_UNDEFINED = -1 };

// Slots of the predefined communicators.
enum { CK_WORLD = 0, CK_SELF = 1 };

int ck_init(int *provided);
int ck_finalize(void);
int ck_initialized(int *flag);
int ck_finalized(int *flag);
int ck_thread_multiple(void); // the value of MPI_THREAD_MULTIPLE
int ck_success(void);
int ck_err_comm(void);
int ck_err_truncate(void);
int ck_err_count(void);
void ck_error_string(int code, char *buf, int *len); // buf holds >= ck_max_error_string() bytes
int ck_max_error_string(void);
int ck_error_class(int code);

int ck_comm_rank(int h, int *rank);
int ck_comm_size(int h, int *size);
int ck_comm_split(int h, int color, int key, int *out); // *out = -1 for no communicator
int ck_comm_split_shared(int h, int key, int *out);
int ck_comm_dup(int h, int *out);
int ck_comm_free(int h);
int ck_abort(int h, int code);

int ck_barrier(int h);
int ck_bcast(int h, void *buf, int count, int dt, int root);
int ck_allreduce(int h, const void *send, void *recv, int count, int dt, int op); // send NULL: in place
// The _idle variants run the nonblocking collective and wait for it by
// testing, then sleeping up to max_us microseconds between tests. They
// match only each other: every rank must use the same variant.
int ck_barrier_idle(int h, int max_us);
int ck_bcast_idle(int h, void *buf, int count, int dt, int root, int max_us);
int ck_allreduce_idle(int h, const void *send, void *recv, int count, int dt, int o, int max_us);
int ck_allgather(int h, const void *send, int count, void *recv, int dt);
int ck_gather(int h, const void *send, int count, void *recv, int dt, int root);
int ck_gatherv(int h, const void *send, int scount, void *recv, const int *counts,
               const int *displs, int dt, int root);
int ck_scatterv(int h, const void *send, const int *counts, const int *displs, void *recv,
                int rcount, int dt, int root);

int ck_send(int h, const void *buf, int count, int dt, int dest, int tag);
int ck_recv(int h, void *buf, int count, int dt, int src, int tag, int *osrc, int *otag,
            int *ocount);
int ck_sendrecv(int h, const void *sbuf, int scount, int dest, int stag, void *rbuf, int rcount,
                int src, int rtag, int dt, int *osrc, int *otag, int *ocount);

#endif
